"""The PEP 517 build backend of clipkit's Python package, standard library only, so that
`pip install .` needs no network (pyproject.toml: requires = [], backend-path = this folder).

build_wheel runs the project's CMake build of the extension module (target _clipkit, which also
copies python/clipkit/*.py beside it) and zips BUILD/python/clipkit into a wheel. BUILD is
$CLIPKIT_BUILD_DIR, else build/ when scripts/build.sh has configured it (nothing is rebuilt that is
up to date; ccache is used when CMAKE_CXX_COMPILER_LAUNCHER says so), else build-python/ (configured
here without tests and benchmarks).
"""
import base64
import hashlib
import importlib.machinery
import io
import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

NAME = "clipkit"
VERSION = "0.1.0"
ROOT = Path(__file__).resolve().parents[2]
SUMMARY = "CLIP models (Hugging Face checkpoints) embedded, searched and trained in C++, numpy in and out"


def _build_dir():
    env = os.environ.get("CLIPKIT_BUILD_DIR")
    if env:
        return Path(env).resolve()
    if (ROOT / "build" / "CMakeCache.txt").exists():
        return ROOT / "build"
    return ROOT / "build-python"


def _run(cmd):
    print("clipkit build:", " ".join(str(c) for c in cmd), file=sys.stderr, flush=True)
    subprocess.run([str(c) for c in cmd], check=True, stdout=sys.stderr)


def _compile():
    build = _build_dir()
    if not (build / "CMakeCache.txt").exists():
        _run(["cmake", "-S", ROOT, "-B", build, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release", "-DCLIPKIT_TESTS=OFF",
              "-DCLIPKIT_BENCH=OFF", f"-DPython3_EXECUTABLE={sys.executable}"])
    jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL") or str(os.cpu_count() or 1)
    _run(["cmake", "--build", build, "--target", "_clipkit", "-j", jobs])
    pkg = build / "python" / NAME
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    if not (pkg / f"_clipkit{suffix}").exists():
        found = sorted(p.name for p in pkg.glob("_clipkit*"))
        raise RuntimeError(f"{pkg}: no _clipkit{suffix} for this Python ({sys.executable}); the build made {found}. "
                           f"Set CLIPKIT_BUILD_DIR to a fresh folder to build for this interpreter.")
    return pkg


def _tag():
    impl = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    abi = impl + getattr(sys, "abiflags", "")
    plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return f"{impl}-{abi}-{plat}"


def _metadata():
    readme = ROOT / "docs" / "python.md"
    text = (f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\nSummary: {SUMMARY}\n"
            "Requires-Python: >=3.9\nRequires-Dist: numpy\nDescription-Content-Type: text/markdown\n\n")
    if readme.exists():
        text += readme.read_text(encoding="utf-8")
    return text


def _wheel_file():
    return f"Wheel-Version: 1.0\nGenerator: clipkit_build {VERSION}\nRoot-Is-Purelib: false\nTag: {_tag()}\n"


def _dist_info():
    return f"{NAME}-{VERSION}.dist-info"


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    d = Path(metadata_directory) / _dist_info()
    d.mkdir(parents=True, exist_ok=True)
    (d / "METADATA").write_text(_metadata(), encoding="utf-8")
    (d / "WHEEL").write_text(_wheel_file(), encoding="utf-8")
    return d.name


def _record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    pkg = _compile()
    files = []  # (name in the wheel, bytes)
    for p in sorted(pkg.iterdir()):
        if p.suffix == ".py" or (p.name.startswith("_clipkit") and p.suffix == ".so"):
            files.append((f"{NAME}/{p.name}", p.read_bytes()))
    info = _dist_info()
    files.append((f"{info}/METADATA", _metadata().encode()))
    files.append((f"{info}/WHEEL", _wheel_file().encode()))
    record = [_record_line(n, d) for n, d in files] + [f"{info}/RECORD,,"]
    files.append((f"{info}/RECORD", ("\n".join(record) + "\n").encode()))
    name = f"{NAME}-{VERSION}-{_tag()}.whl"
    out = Path(wheel_directory) / name
    tmp = out.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for n, d in files:
            zi = zipfile.ZipInfo(n, date_time=(2020, 1, 1, 0, 0, 0))
            zi.external_attr = (0o755 if n.endswith(".so") else 0o644) << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, d)
    os.replace(tmp, out)
    return name


def build_sdist(sdist_directory, config_settings=None):
    """The tracked source tree (git ls-files), as NAME-VERSION.tar.gz."""
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], check=True, capture_output=True).stdout
    base = f"{NAME}-{VERSION}"
    name = f"{base}.tar.gz"
    with tarfile.open(Path(sdist_directory) / name, "w:gz") as t:
        for rel in sorted(f for f in listed.decode().split("\0") if f):
            if (ROOT / rel).is_file():
                t.add(ROOT / rel, arcname=f"{base}/{rel}", recursive=False)
        pkg_info = _metadata().encode()
        ti = tarfile.TarInfo(f"{base}/PKG-INFO")
        ti.size = len(pkg_info)
        t.addfile(ti, io.BytesIO(pkg_info))
    return name
