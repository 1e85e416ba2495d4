#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (fuzz/seeds/<dir>/) from tests/data: small real files
(configs, tokenizer files, images, COCO/CSV/JSONL tables) and small well-formed .npy/.safetensors/
HTTP requests built here. Run from the repository root: python3 fuzz/make_seeds.py"""
import base64
import json
import os
import shutil
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")
SEEDS = os.path.join(ROOT, "fuzz", "seeds")


def put(folder, name, data):
    d = os.path.join(SEEDS, folder)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def read(rel):
    with open(os.path.join(DATA, rel), "rb") as f:
        return f.read()


def npy(dtype, shape, payload, version=1):
    h = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (dtype, shape)
    pre = 12 if version > 1 else 10
    h += " " * ((64 - (pre + len(h) + 1) % 64) % 64) + "\n"
    n = struct.pack("<I", len(h)) if version > 1 else struct.pack("<H", len(h))
    return b"\x93NUMPY" + bytes([version, 0]) + n + h.encode() + payload


def safetensors(tensors, metadata=None):
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, shape, payload) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


def main():
    shutil.rmtree(SEEDS, ignore_errors=True)
    # json: the small JSON files of the tiny checkpoints and datasets, and escapes/deep-ish values
    for rel in ["models/tiny-clip/config.json", "models/tiny-clip/preprocessor_config.json",
                "models/tiny-clip/tokenizer_config.json", "models/tiny-clip-roberta/config.json",
                "models/tiny-clip-roberta/special_tokens_map.json", "datasets/coco-tiny/bad/caption_null.json"]:
        put("json", rel.replace("/", "_"), read(rel))
    put("json", "escapes.json", '{"path": "caf\\udce9 \\ud83d\\ude00 \\u0000", "a": [1, -2.5e-3, true, null, {}]}')
    put("json", "nested.json", "[" * 120 + "]" * 120)
    # model_config: configs and preprocessor configs
    for rel in ["models/tiny-clip/config.json", "models/tiny-clip-roberta/config.json",
                "models/tiny-clip/preprocessor_config.json", "models/tiny-clip-roberta/preprocessor_config.json"]:
        put("model_config", rel.replace("/", "_"), read(rel))
    put("model_config", "no_crop.json", '{"size": {"shortest_edge": 16}, "do_center_crop": false, "image_std": [0.5, 0.5, 0.5]}')
    # safetensors / npy: small valid files of each dtype
    put("safetensors", "small.safetensors", safetensors(
        {"a.weight": ("F32", [2, 3], struct.pack("<6f", *range(6))), "b": ("BF16", [2], b"\x80\x3f\x00\x40"),
         "c": ("I64", [1], struct.pack("<q", 7)), "d": ("U8", [3], b"xyz")}, {"format": "pt"}))
    put("safetensors", "empty.safetensors", safetensors({}))
    put("npy", "f4.npy", npy("<f4", "(2, 3)", struct.pack("<6f", *range(6))))
    put("npy", "i8.npy", npy("<i8", "(2,)", struct.pack("<2q", 1, -1)))
    put("npy", "u1_v2.npy", npy("|u1", "(1, 3, 2, 2)", bytes(range(12)), version=2))
    put("npy", "f2_0d.npy", npy("<f2", "()", b"\x00\x3c"))
    # tokenizer: first byte picks the file (0 tokenizer.json, 1 vocab.json, 2 merges.txt, 3 tokenizer_config.json)
    tok = {"added_tokens": [{"id": 5, "content": "<|endoftext|>", "special": True}],
           "normalizer": {"type": "Lowercase"},
           "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False},
           "post_processor": {"type": "RobertaProcessing", "sep": ["</s>", 10], "cls": ["<s>", 9]},
           "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "abc": 4, "<|endoftext|>": 5},
                     "merges": ["a b", ["ab", "c"]], "end_of_word_suffix": "</w>"}}
    put("tokenizer", "tokenizer_json", b"\x00" + json.dumps(tok).encode())
    put("tokenizer", "vocab_json", b"\x01" + b'{"a": 0, "b": 1, "ab": 2, "<s>": 3, "</s>": 4, "<pad>": 5, "<unk>": 6}')
    put("tokenizer", "merges_txt", b"\x02" + read("models/tiny-clip/merges.txt")[:600])
    put("tokenizer", "tokenizer_config", b"\x03" + read("models/tiny-clip-roberta/tokenizer_config.json"))
    # image: the small real images of every format (one folder: each image target adds its signature)
    for rel in ["images/tiny_1x1.png", "images/wide_1000x10.png", "images/tall_10x1000.png", "images/small_37x23.png",
                "images/extra/rle4.bmp", "images/extra/rle8.bmp", "images/extra/bilevel1.bmp", "images/extra/palette8.bmp",
                "images/extra/lossy.webp", "images/extra/lossy_alpha.webp", "images/extra/sub444.jpg",
                "images/extra/sub422.jpg", "images/extra/interlaced.gif", "images/extra/palette.gif",
                "images/extra/gray1.png", "images/extra/palette4_short.png"]:
        put("image", os.path.basename(rel), read(rel))
    put("image", "truncated_head.png", read("images/bad/truncated.png")[:700])
    # datasets: first byte picks the kind (0 COCO json, 1 csv, 2 tsv, 3 jsonl, 4 json array)
    for rel in ["caption_not_string.json", "caption_null.json", "empty_annotations.json", "annotation_missing_image.json"]:
        put("datasets", "coco_" + rel, b"\x00" + read("datasets/coco-tiny/bad/" + rel))
    put("datasets", "table.csv", b'\x01image_path,caption,image_id\na.jpg,"a cat, on a mat",1\nb.jpg,"two ""dogs""",2\n')
    put("datasets", "table.tsv", b"\x02image_path\tcaption\na.jpg\ta cat\n")
    put("datasets", "table.jsonl", b'\x03{"image_path": "a.jpg", "caption": "a cat"}\n{"image_path": "b.jpg", "caption": 3}\n')
    put("datasets", "table.json", b'\x04[{"image_path": "a.jpg", "caption": "x", "width": 640}]')
    # http: requests of every shape the server takes (API key "k" as in fuzz_http.cpp)
    png = base64.b64encode(read("images/tiny_1x1.png")).decode()

    def req(method, path, body=b"", headers=()):
        h = [f"{method} {path} HTTP/1.1", "Host: fuzz", "Authorization: Bearer k", *headers]
        if method == "POST":
            h.append("Content-Length: %d" % len(body))
        return ("\r\n".join(h) + "\r\n\r\n").encode() + body

    j = ("Content-Type: application/json",)
    put("http", "healthz", req("GET", "/healthz") + req("GET", "/metrics"))
    put("http", "search_text", req("POST", "/v1/search", b'{"text": "a cat", "k": 3, "filter": {"split": "val"}}', j))
    put("http", "search_id", req("POST", "/v1/search", b'{"image_id": 1}', j))
    put("http", "embed_text", req("POST", "/v1/embed/text", b'{"texts": ["a", "b c"]}', j))
    put("http", "embed_image", req("POST", "/v1/embed/image", ('{"image_base64": "%s"}' % png).encode(), j))
    put("http", "compare", req("POST", "/v1/compare", ('{"image_base64": "%s", "prompts": ["x", "y"]}' % png).encode(), j))
    put("http", "classify", req("POST", "/v1/classify", b'{"image_id": 2, "labels": ["a", "b"], "multi_label": true, '
                                                        b'"thresholds": {"a": 0.5}, "templates": ["a {}"]}', j))
    put("http", "retrieve", req("POST", "/v1/retrieve", b'{"text": "x", "k": 2, "filters": ["width>=10"]}', j))
    put("http", "dedup", req("POST", "/v1/dedup", b'{"threshold": 0.9}', j))
    put("http", "image", req("GET", "/v1/images/3"))
    b = "fuzzb"
    form = (f"--{b}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"x.png\"\r\n\r\n").encode() + \
        read("images/tiny_1x1.png") + (f"\r\n--{b}\r\nContent-Disposition: form-data; name=\"labels\"\r\n\r\ncat,dog\r\n--{b}--\r\n").encode()
    put("http", "multipart", req("POST", "/v1/classify", form, (f"Content-Type: multipart/form-data; boundary={b}",)))
    chunked = b"POST /v1/search HTTP/1.1\r\nHost: fuzz\r\nAuthorization: Bearer k\r\nContent-Type: application/json\r\n" \
              b"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"tex\r\n9\r\nt\": \"a\"}\r\n0\r\n\r\n"
    put("http", "chunked", chunked)
    put("http", "video", req("POST", "/v1/video", b'{"video_base64": "AAAA", "labels": ["a"]}', j))


if __name__ == "__main__":
    main()
