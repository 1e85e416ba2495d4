"""safetensors read and written with numpy alone (Debian has no python3-safetensors)."""
import json
import os
import struct

import numpy as np


_ST_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
    "BOOL": np.bool_,
}


def read_safetensors(path):
    """Returns ({name: np.ndarray}, metadata). BF16 tensors are widened to float32."""
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise ValueError(f"{path}: too short for a safetensors file")
        (header_len,) = struct.unpack("<Q", raw)
        header = json.loads(f.read(header_len))
    data_start = 8 + header_len
    blob = np.memmap(path, dtype=np.uint8, mode="r")
    out = {}
    meta = header.pop("__metadata__", {}) or {}
    for name, info in header.items():
        dt = info["dtype"]
        if dt not in _ST_DTYPES:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {dt}")
        begin, end = info["data_offsets"]
        arr = np.frombuffer(blob[data_start + begin:data_start + end], dtype=_ST_DTYPES[dt])
        arr = arr.reshape(info["shape"])
        if dt == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[name] = arr
    return out, meta


def write_safetensors(path, tensors, metadata=None):
    """Writes {name: np.ndarray} (float32/float64/int64/int32/uint8) in sorted key order."""
    names = {np.dtype(v).name: k for k, v in _ST_DTYPES.items() if k != "BF16"}
    header, offset, arrays = {}, 0, []
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        header[name] = {"dtype": names[a.dtype.name], "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
        arrays.append(a)
    hbytes = json.dumps(header, separators=(",", ":")).encode()
    hbytes += b" " * (-len(hbytes) % 8)  # keep the data 8-byte aligned, as the reference writer does
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hbytes)))
        f.write(hbytes)
        for a in arrays:
            f.write(a.tobytes())
    os.replace(tmp, path)
