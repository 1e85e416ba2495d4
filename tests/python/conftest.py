"""Shared by the pytest suite of the Python package (run by ctest: test python_api, with PYTHONPATH
on the build's python/ folder and CLIPKIT_BINARY naming the CLI the results are compared with)."""
import gzip
import json
import os
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

DATA = Path(os.environ.get("CLIPKIT_TEST_DATA", Path(__file__).resolve().parents[1] / "data"))
TINY = DATA / "models" / "tiny-clip"
DUAL = DATA / "models" / "tiny-clip-roberta"
IMAGES = DATA / "images"
COCO = DATA / "datasets" / "coco-tiny"
# readable images of several formats and sizes, and one corrupt file
PATHS = [str(IMAGES / n) for n in ("astronaut.png", "chelsea.jpg", "coffee.png", "palette.png", "rocket.jpg",
                                   "small_37x23.png", "gray_L.jpg", "lossless.webp")]
BAD = str(IMAGES / "bad" / sorted(os.listdir(IMAGES / "bad"))[0])


def cli(*args, check=True):
    """Runs the clipkit CLI; returns the completed process (stdout as text)."""
    exe = os.environ.get("CLIPKIT_BINARY")
    if not exe:
        pytest.skip("CLIPKIT_BINARY is not set (ctest sets it)")
    r = subprocess.run([exe, *[str(a) for a in args]], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"clipkit {' '.join(map(str, args))} exited {r.returncode}:\n{r.stderr}")
    return r


def read_safetensors_gz(path):
    """{name: array} of a gzipped .safetensors file (the tests/data references)."""
    raw = gzip.decompress(Path(path).read_bytes())
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    dtypes = {"F32": np.float32, "U8": np.uint8, "I64": np.int64, "F64": np.float64, "I32": np.int32}
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + b:8 + n + e], dtype=dtypes[t["dtype"]]).reshape(t["shape"])
    return out


@pytest.fixture(scope="session")
def clipkit():
    import clipkit as ck
    return ck


@pytest.fixture(scope="session")
def tiny(clipkit):
    return clipkit.load(TINY, threads=2)


@pytest.fixture(scope="session")
def dual(clipkit):
    return clipkit.load(DUAL, threads=2)
