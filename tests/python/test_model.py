"""clipkit.load / Model: embeddings bit-identical with the CLI's, ids and pixels equal to the
tests/data references, the errors Python users expect, threads and the GIL."""
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest

from conftest import BAD, COCO, DATA, DUAL, IMAGES, PATHS, TINY, cli, read_safetensors_gz


def cli_embed(tmp_path, model, *inputs):
    out = tmp_path / "cli.npy"
    cli("embed", "--model", model, *inputs, "--out", out, "--threads", 2)
    return np.load(out)


def test_load_describes_the_checkpoint(tiny):
    config = json.loads((TINY / "config.json").read_text())
    assert tiny.config == config
    assert tiny.embed_dim == config["projection_dim"] == 48
    assert tiny.image_size == config["vision_config"]["image_size"]
    assert tiny.precision == "fp32"
    assert "CLIPModel" in repr(tiny)


@pytest.mark.parametrize("normalize", [True, False])
def test_embed_images_equals_the_cli(tiny, tmp_path, normalize):
    x = tiny.embed_images(PATHS, batch_size=3, normalize=normalize)
    flags = ["--images", *PATHS, "--batch-size", 3] + ([] if normalize else ["--no-normalize"])
    ref = cli_embed(tmp_path, TINY, *flags)
    assert x.dtype == np.float32 and x.shape == (len(PATHS), 48)
    assert np.array_equal(x, ref)  # bit-identical


def test_embed_texts_equals_the_cli(dual, tmp_path):
    texts = ["a photo of a cat", "two dogs playing in the snow", "", "ünïcödé and emoji 🐈"]
    x = dual.embed_texts(texts)
    ref = cli_embed(tmp_path, DUAL, *sum((["--text", t] for t in texts), []))
    assert np.array_equal(x, ref)
    raw = dual.embed_texts(texts, normalize=False, max_length=5)
    ref = cli_embed(tmp_path, DUAL, *sum((["--text", t] for t in texts), []), "--no-normalize", "--max-length", 5)
    assert np.array_equal(raw, ref)
    # alone vs in a batch: the same within fp32 rounding (oneDNN's kernels may block rows differently)
    np.testing.assert_allclose(dual.embed_texts("a photo of a cat"), x[:1], rtol=0, atol=1e-6)


def test_embed_pixels_equals_the_cli_and_preprocess_feeds_it(tiny, tmp_path):
    px = tiny.preprocess(PATHS[:4])
    np.save(tmp_path / "px.npy", px)
    ref = cli_embed(tmp_path, TINY, "--pixels", tmp_path / "px.npy")
    assert np.array_equal(tiny.embed_pixels(px), ref)
    assert np.array_equal(tiny.embed_pixels(px), tiny.embed_images(PATHS[:4]))


def test_preprocess_equals_hf_references_and_the_cli(tiny, tmp_path):
    names = ["astronaut.png", "chelsea.jpg", "palette.png", "small_37x23.png", "cmyk.jpg", "tall_10x1000.png"]
    paths = [str(IMAGES / n) for n in names]
    px = tiny.preprocess(paths)
    assert px.shape == (len(names), 3, 64, 64) and px.dtype == np.float32
    for i, n in enumerate(names):
        # the references' pixel_values (a float64 pipeline): within 1e-6, as tests/image checks the library
        ref = read_safetensors_gz(DATA / "reference" / "preprocess" / f"{n}.S64.safetensors.gz")["pixel_values"]
        np.testing.assert_allclose(px[i], ref, rtol=0, atol=1e-6, err_msg=n)
    cli("preprocess", "--model", TINY, *paths, "--out", tmp_path / "px.npy")
    assert np.array_equal(px, np.load(tmp_path / "px.npy"))  # bit-exact with `clipkit preprocess`


def test_every_kind_of_image_input_gives_the_same_embedding(tiny):
    from PIL import Image

    path = str(IMAGES / "astronaut.png")
    data = open(path, "rb").read()
    rgb = read_safetensors_gz(DATA / "reference" / "preprocess" / "astronaut.png.rgb.safetensors.gz")
    arr = next(iter(rgb.values()))
    pil = Image.open(path)
    inputs = [path, data, pil, arr, pil.convert("RGB")]
    px = [tiny.preprocess([i]) for i in inputs]
    for i in range(1, 5):
        assert np.array_equal(px[i], px[0]), i  # the same pixels, bit for bit
    x = tiny.embed_images(inputs)
    # the same embedding within fp32 rounding: on some CPUs oneDNN's kernels round a row by its
    # position in the batch (AVX2's sgemm: rows 0 and 2 of one batch differ by ~6e-8)
    for i in range(1, 5):
        np.testing.assert_allclose(x[i], x[0], rtol=0, atol=1e-6, err_msg=str(i))
    np.testing.assert_allclose(tiny.embed_images(path), x[:1], rtol=0, atol=1e-6)  # one image alone


def test_tokenize_equals_the_reference_model_inputs(tiny, dual):
    rows = [json.loads(line) for line in (DATA / "reference" / "tokenize" / "model_inputs.jsonl").open()]
    for model, name in ((tiny, "tiny-clip"), (dual, "tiny-clip-roberta")):
        mine = [r for r in rows if r["model"] == name]
        assert mine
        t = model.tokenize([r["text"] for r in mine], max_length=mine[0]["max_length"], padding="max_length")
        assert t["input_ids"].dtype == np.int64
        assert t["input_ids"].tolist() == [r["input_ids"] for r in mine]
        assert t["attention_mask"].tolist() == [r["attention_mask"] for r in mine]


def test_tokenize_matches_the_clip_reference_ids(tiny):
    rows = [json.loads(line) for line in (DATA / "reference" / "tokenize" / "clip.jsonl").open()][:100]
    key = "ids" if "ids" in rows[0] else "input_ids"
    t = tiny.tokenize([r["text"] for r in rows], max_length=10_000)
    for i, r in enumerate(rows):
        n = int(t["attention_mask"][i].sum())
        assert t["input_ids"][i, :n].tolist() == r[key], r["text"]


def test_tokenize_pads_to_the_longest_by_default(tiny):
    t = tiny.tokenize(["a cat", "a photo of a black cat"])
    assert t["input_ids"].shape == (2, 8)
    assert t["attention_mask"].tolist() == [[1, 1, 1, 1, 0, 0, 0, 0], [1] * 8]


def test_similarity_is_hf_logits_per_image(tiny, tmp_path):
    texts = ["a photo of an astronaut", "a cat", "a cup of coffee"]
    logits = tiny.similarity(PATHS[:3], texts)
    assert logits.shape == (3, 3) and logits.dtype == np.float32
    im, tx = tiny.embed_images(PATHS[:3]), tiny.embed_texts(texts)
    np.testing.assert_allclose(logits, np.exp(tiny.logit_scale) * im @ tx.T, rtol=1e-5)
    r = cli("compare", "--model", TINY, "--images", *PATHS[:3], *sum((["--text", t] for t in texts), []), "--json")
    ref = json.loads(r.stdout)["images"]
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    np.testing.assert_allclose(probs, [row["probs"] for row in ref], atol=1e-5)


def test_results_own_the_library_buffer(tiny):
    x = tiny.embed_texts(["a cat"])
    assert not x.flags.owndata and type(x.base).__name__ == "PyCapsule"  # no copy into numpy
    x[0, 0] = 1.0  # writable, and stays valid after the call
    del x


# --- errors
def test_missing_folder_raises_file_not_found(clipkit, tmp_path):
    with pytest.raises(FileNotFoundError, match="model folder not found") as e:
        clipkit.load(tmp_path / "nope")
    assert isinstance(e.value, clipkit.Error)


def test_unsupported_model_type_raises_value_error(clipkit, tmp_path):
    d = tmp_path / "bert"
    shutil.copytree(TINY, d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["model_type"] = "blip"
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match='unsupported model_type "blip"'):
        clipkit.load(d)


def test_emulated_precision_warns_on_load(clipkit):
    """Where the CPU has no bf16 / VNNI matmul instructions, load() warns that the precision runs as
    fp32 matmuls (slower than fp32) and the model says so in precision_note; fp32 never warns."""
    assert clipkit.load(TINY, threads=1).precision_note == ""
    for precision in ("bf16", "int8"):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            m = clipkit.load(TINY, precision=precision, threads=1)
        mine = [w for w in seen if issubclass(w.category, RuntimeWarning)]
        if m.precision_note:  # this CPU: emulated
            assert "oneDNN runs " in m.precision_note
            assert [str(w.message) for w in mine] == [f"precision '{precision}': {m.precision_note}"]
            assert mine[0].filename == __file__  # pointing at the caller's load()
        else:
            assert mine == []
    # held to AVX2 (a fresh process: oneDNN reads the cap once), both are emulated on any CPU
    code = ("import warnings, clipkit; warnings.simplefilter('error'); "
            f"clipkit.load({str(TINY)!r}, precision='int8', threads=1)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "DNNL_MAX_CPU_ISA": "AVX2"})
    assert r.returncode != 0
    assert "RuntimeWarning: precision 'int8': this CPU has no VNNI instructions (oneDNN runs avx2)" in r.stderr


def test_bad_arguments_raise_value_error(clipkit, tiny):
    with pytest.raises(ValueError, match="precision"):
        clipkit.load(TINY, precision="fp8")
    with pytest.raises(ValueError, match="unknown device"):
        clipkit.load(TINY, device="tpu")
    px = tiny.preprocess(PATHS[:1])
    with pytest.raises(ValueError, match="float32, got dtype float64"):
        tiny.embed_pixels(px.astype(np.float64))
    with pytest.raises(ValueError, match=r"the model needs \(N, 3, 64, 64\)"):
        tiny.embed_pixels(px[:, :, :32])
    with pytest.raises(ValueError, match="uint8"):
        tiny.embed_images([np.zeros((8, 8, 3), np.float32)])
    with pytest.raises(ValueError, match=r"shape \(H, W, 3\)"):
        tiny.embed_images([np.zeros((8, 8, 4), np.uint8)])
    with pytest.raises(ValueError, match="expected a path"):
        tiny.embed_images([3])
    with pytest.raises(ValueError, match="batch_size"):
        tiny.embed_texts(["a"], batch_size=0)
    with pytest.raises(ValueError, match="errors"):
        tiny.embed_images(PATHS[:1], errors="ignore")


def test_a_corrupt_image_in_a_batch_is_reported(clipkit, tiny):
    paths = PATHS[:2] + [BAD] + PATHS[2:4]
    with pytest.raises(clipkit.Error, match=f"1 of 5 images could not be read: {BAD}: "):
        tiny.embed_images(paths)
    x = tiny.embed_images(paths, errors="skip")
    assert x.kept == [0, 1, 3, 4] and [i for i, _ in x.skipped] == [2] and BAD in x.skipped[0][1]
    assert np.array_equal(np.asarray(x), tiny.embed_images(PATHS[:4]))
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        tiny.embed_images([str(IMAGES / "missing.jpg")])
    with pytest.raises(clipkit.Error, match=r"images\[0\] \(bytes\)"):
        tiny.embed_images([b"not an image"])


# --- threads and the GIL
def test_four_python_threads_on_one_model_equal_serial(tiny, dual):
    texts = [f"a photo of {n} cats on a sofa" for n in range(24)]
    want_img, want_txt = tiny.embed_images(PATHS, batch_size=4), dual.embed_texts(texts, batch_size=8)
    got, errors = {}, []

    def work(i):
        try:
            for r in range(3):
                got[(i, r, "img")] = tiny.embed_images(PATHS, batch_size=4)
                got[(i, r, "txt")] = dual.embed_texts(texts, batch_size=8)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors and len(got) == 24
    for (i, r, kind), x in got.items():
        assert np.array_equal(x, want_img if kind == "img" else want_txt), (i, r, kind)


def test_the_gil_is_released_during_compute(tiny):
    # While another thread embeds, this one keeps running Python: it counts how often it got the
    # GIL back. A call holding the GIL would leave it only the interpreter's switch points.
    paths = PATHS * 12
    done = threading.Event()
    ticks_during = 0

    def embed():
        tiny.embed_images(paths, batch_size=8)
        done.set()

    old = sys.getswitchinterval()
    sys.setswitchinterval(1.0)  # a thread holding the GIL would keep it for up to 1 s
    try:
        t = threading.Thread(target=embed)
        t.start()
        start = time.monotonic()
        while not done.is_set():
            ticks_during += 1
            time.sleep(0.001)  # gives the GIL away; takes it back as soon as the worker releases it
        elapsed = time.monotonic() - start
        t.join()
    finally:
        sys.setswitchinterval(old)
    # about one tick per ms of the embedding when the GIL is free (fewer on a loaded machine); at most
    # one per 1 s switch interval otherwise
    assert ticks_during > max(5, elapsed * 20), (ticks_during, elapsed)
