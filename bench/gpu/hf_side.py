#!/usr/bin/env python3
"""The Hugging Face side of bench/gpu_check.sh, run on the GPU machine (PyTorch 2.x + transformers
4.4x-5.x, no network): makes the full-size random models, times HF on them, and dumps what the
parity checks compare clipkit with. Writes one JSON file of rows (see ROWS); every section runs on
its own, and one that fails is recorded as an error row while the others go on.

  hf_side.py --out hf.json --work DIR [--sections make,image,jpeg,text,latency,train,parity]
  hf_side.py --out hf_compile.json --work DIR --sections compile     (torch.compile max-autotune)
  hf_side.py --smoke ...   tiny sizes on the CPU (here: Debian's torch 1.13; without transformers a
                           stand-in of the same interface, bench/gpu/hf_standin.py, takes its place)

Models (DIR/models/, save_pretrained, safetensors, fp32, random weights from transformers' own init):
  clip-vit-b32   CLIPModel ViT-B/32 (+ the CLIP vocabulary from assets/ and a preprocessor config)
  clip-vit-l14   CLIPModel ViT-L/14
  dual-b32-rb    VisionTextDualEncoderModel: CLIP ViT-B/32 vision + roberta-base text, projection 512
Timings (bf16 weights, SDPA attention, inference_mode; CUDA events, median of the timed batches):
  image_b32 / image_l14  random pixel tensors -> image embeddings
  jpeg_b32               640x480 JPEG files -> Pillow decode + CLIPImageProcessor in DataLoader
                         workers (one per core) -> pinned batches -> ViT-B/32 image embeddings
  text_b32               77-token captions -> CLIP ViT-B/32 text embeddings
  latency_b32            one image -> embedding, milliseconds
  train_pad128           run_clip full fine-tuning step of dual-b32-rb: captions padded to 128,
                         batch 256, bf16 autocast, AdamW (weight decay 0.1 off biases and norms),
                         clip_grad_norm_ 1.0, dropout on
  train_dynamic          the same at batch 512 with captions padded to 24
  image_b32_compiled     image_b32 through torch.compile(mode="max-autotune") (section compile)
Parity dumps (DIR/parity/, read by clipkit's side):
  embed_<model>.safetensors  inputs (pixel_values, input_ids, attention_mask) and HF fp32 (no TF32)
                             image_embeds / text_embeds (projected, not normalized)
  grads_dual-b32-rb.safetensors  one full training step of dual-b32-rb in fp32 (dropout off): its
                             inputs, loss, and the gradient of every parameter (HF state-dict names)
  The JSON's parity_* rows give HF's own bf16-autocast gradient error against its fp32 gradients
  (relative L2 over all parameters, and the largest per-tensor one): the yardstick of "within bf16
  tolerance" for clipkit's bf16 gradients.
"""
import argparse
import json
import math
import os
import shutil
import statistics
import sys
import time
import traceback

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(os.path.dirname(_HERE))
sys.path.insert(0, os.path.join(_REPO, "bench", "peers"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from safetensors_np import write_safetensors  # noqa: E402

try:
    import transformers  # noqa: E402
except ImportError:
    transformers = None

SECTIONS = ["make", "image", "jpeg", "text", "latency", "train", "parity"]

# architecture sizes: (hidden, mlp, heads, layers)
FULL = {
    "clip-vit-b32": dict(vision=(768, 3072, 12, 12), patch=32, image=224, text=(512, 2048, 8, 12), proj=512),
    "clip-vit-l14": dict(vision=(1024, 4096, 16, 24), patch=14, image=224, text=(768, 3072, 12, 12), proj=768),
    "dual-b32-rb": dict(vision=(768, 3072, 12, 12), patch=32, image=224, text=(768, 3072, 12, 12), proj=512),
}
SMOKE = {
    "clip-vit-b32": dict(vision=(32, 64, 2, 2), patch=8, image=32, text=(32, 64, 2, 2), proj=16),
    "clip-vit-l14": dict(vision=(48, 96, 3, 2), patch=8, image=32, text=(32, 64, 2, 2), proj=24),
    "dual-b32-rb": dict(vision=(32, 64, 2, 2), patch=8, image=32, text=(32, 64, 2, 2), proj=16),
}
CLIP_VOCAB, ROBERTA_VOCAB = 49408, 50265


class Bench:
    """Settings, the device, and the JSON rows of one run."""

    def __init__(self, a):
        self.a = a
        self.smoke = a.smoke
        self.dev = torch.device("cuda" if torch.cuda.is_available() and not a.cpu else "cpu")
        self.sizes = SMOKE if a.smoke else FULL
        self.rows = []
        self.work = a.work
        self.models_dir = os.path.join(a.work, "models")
        self.parity_dir = os.path.join(a.work, "parity")
        self.standin = transformers is None
        if self.standin and not a.smoke:
            raise SystemExit("hf_side: transformers is not installed (only --smoke runs without it)")

    def n(self, full, smoke):
        return smoke if self.smoke else full

    def row(self, key, what, value, unit, **extra):
        r = {"key": key, "engine": "hf", "what": what, "value": value, "unit": unit}
        r.update(extra)
        self.rows.append(r)
        v = f"{value:.4g}" if isinstance(value, (int, float)) else str(value)
        print(f"hf_side: {key:22s} {v:>12s} {unit:10s} {what}", flush=True)

    def sync(self):
        if self.dev.type == "cuda":
            torch.cuda.synchronize()

    def time_ms(self, fn, warmup, iters):
        """Median milliseconds of fn() over iters calls after warmup calls (CUDA events on a GPU)."""
        for _ in range(warmup):
            fn()
        self.sync()
        times = []
        for _ in range(iters):
            if self.dev.type == "cuda":
                s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                s.record()
                fn()
                e.record()
                e.synchronize()
                times.append(s.elapsed_time(e))
            else:
                t = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t) * 1e3)
        return statistics.median(times)


# ------------------------------------------------------------------------------------------------
# Hugging Face: the only code that touches transformers' API. It keeps to what 4.4x and 5.x share:
# configs from dicts, AutoModel.from_config, save_pretrained / from_pretrained, the towers'
# pooler_output, the projections, and forward(..., return_loss=True).

def hf_configs(b, name):
    s = b.sizes[name]
    vd, vm, vh, vl = s["vision"]
    td, tm, th, tl = s["text"]
    vision = dict(hidden_size=vd, intermediate_size=vm, num_attention_heads=vh, num_hidden_layers=vl,
                  patch_size=s["patch"], image_size=s["image"], num_channels=3, hidden_act="quick_gelu",
                  layer_norm_eps=1e-5, attention_dropout=0.0, projection_dim=s["proj"])
    if name.startswith("clip"):
        text = dict(hidden_size=td, intermediate_size=tm, num_attention_heads=th, num_hidden_layers=tl,
                    vocab_size=CLIP_VOCAB if not b.smoke else 1000, max_position_embeddings=77,
                    hidden_act="quick_gelu", layer_norm_eps=1e-5, attention_dropout=0.0,
                    bos_token_id=0, eos_token_id=2, pad_token_id=1, projection_dim=s["proj"])
        return vision, text
    text = dict(hidden_size=td, intermediate_size=tm, num_attention_heads=th, num_hidden_layers=tl,
                vocab_size=ROBERTA_VOCAB if not b.smoke else 1000, max_position_embeddings=514 if not b.smoke else 130,
                type_vocab_size=1, hidden_act="gelu", layer_norm_eps=1e-5, hidden_dropout_prob=0.1,
                attention_probs_dropout_prob=0.1, bos_token_id=0, eos_token_id=2, pad_token_id=1)
    return vision, text


def hf_new_model(b, name):
    """A random-weight model of architecture `name` (transformers' own initialization)."""
    vision, text = hf_configs(b, name)
    proj = b.sizes[name]["proj"]
    if b.standin:
        import hf_standin
        return hf_standin.make(name, vision, text, proj)
    if name.startswith("clip"):
        cfg = transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=proj)
    else:
        try:
            cfg = transformers.VisionTextDualEncoderConfig.from_vision_text_configs(
                transformers.CLIPVisionConfig(**vision), transformers.RobertaConfig(**text), projection_dim=proj)
        except (AttributeError, TypeError):  # the dict form, for a version without the class method
            cfg = transformers.VisionTextDualEncoderConfig(
                vision_config=dict(vision, model_type="clip_vision_model"), text_config=dict(text, model_type="roberta"),
                projection_dim=proj)
    try:
        return transformers.AutoModel.from_config(cfg, attn_implementation="sdpa")
    except (TypeError, ValueError) as e:  # a version whose composite model declines "sdpa" by name
        print(f"hf_side: {name}: attn_implementation='sdpa' refused ({e}); the default attention", flush=True)
        return transformers.AutoModel.from_config(cfg)


def hf_load(b, name):
    path = os.path.join(b.models_dir, name)
    if b.standin:
        import hf_standin
        return hf_standin.load(path)
    try:
        return transformers.AutoModel.from_pretrained(path, attn_implementation="sdpa")
    except (TypeError, ValueError):
        return transformers.AutoModel.from_pretrained(path)


def attn_impl(model):
    return getattr(model.config, "_attn_implementation", None) or "default"


def image_embeds(model, px):
    return model.visual_projection(model.vision_model(pixel_values=px).pooler_output)


def text_embeds(model, ids, mask):
    return model.text_projection(model.text_model(input_ids=ids, attention_mask=mask).pooler_output)


def train_loss(model, ids, mask, px):
    return model(input_ids=ids, attention_mask=mask, pixel_values=px, return_loss=True).loss


def hf_image_processor(size):
    if transformers is None:
        return None
    return transformers.CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})

# ------------------------------------------------------------------------------------------------


def load(b, name, dtype):
    m = hf_load(b, name).to(b.dev, dtype=dtype)
    return m.eval()


def captions(b, B, L, vocab, clip_style):
    """Token ids [B, L] and mask: caption k has 10 + (7k mod 11) tokens (as bench/train_bench.cpp),
    BOS first and EOS last (CLIP: 49406 / 49407, the highest ids; RoBERTa: 0 / 2), then padding."""
    g = torch.Generator().manual_seed(B * 1000 + L)
    bos, eos, pad = (vocab - 2, vocab - 1, vocab - 1) if clip_style else (0, 2, 1)
    ids = torch.full((B, L), pad, dtype=torch.long)
    mask = torch.zeros(B, L, dtype=torch.long)
    body = torch.randint(3, vocab - 2, (B, L), generator=g)
    for k in range(B):
        n = min(L, 10 + (7 * k) % 11)
        ids[k, :n] = body[k, :n]
        ids[k, 0], ids[k, n - 1] = bos, eos
        mask[k, :n] = 1
    return ids.to(b.dev), mask.to(b.dev)


def pixels(b, B, size, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, 3, size, size, generator=g).to(b.dev, dtype=dtype)


def sec_make(b):
    os.makedirs(b.models_dir, exist_ok=True)
    failed = []
    for name in ("clip-vit-b32", "clip-vit-l14", "dual-b32-rb"):
        try:
            make_one(b, name)
        except Exception as e:  # the other models are still made
            traceback.print_exc()
            failed.append(f"{name}: {e!r}")
    if failed:
        raise RuntimeError("; ".join(failed))


def make_one(b, name):
    t = time.perf_counter()
    torch.manual_seed(0)
    model = None
    if b.dev.type == "cuda":
        try:  # initialize on the GPU (seconds instead of a minute for ViT-L/14 on the CPU)
            with torch.device(b.dev):
                model = hf_new_model(b, name)
        except (AttributeError, TypeError, RuntimeError):
            model = None
    if model is None:
        model = hf_new_model(b, name)
    path = os.path.join(b.models_dir, name)
    shutil.rmtree(path, ignore_errors=True)
    model.save_pretrained(path)
    if name.startswith("clip"):
        for f in ("vocab.json", "merges.txt"):
            shutil.copyfile(os.path.join(_REPO, "assets", "tokenizers", "clip", f), os.path.join(path, f))
    proc = hf_image_processor(b.sizes[name]["image"])
    if proc is not None:
        proc.save_pretrained(path)
    params = sum(p.numel() for p in model.parameters())
    b.row(f"make_{name}", f"{name}: random init + save_pretrained ({params / 1e6:.1f} M parameters, "
          f"attention {attn_impl(model)})", time.perf_counter() - t, "s", params=params)
    del model
    if b.dev.type == "cuda":
        torch.cuda.empty_cache()


def sec_image(b):
    for name, key, B in (("clip-vit-b32", "image_b32", b.n(1024, 4)), ("clip-vit-l14", "image_l14", b.n(256, 4))):
        model = load(b, name, torch.bfloat16)
        px = pixels(b, B, b.sizes[name]["image"], torch.bfloat16)
        with torch.inference_mode():
            ms = b.time_ms(lambda: image_embeds(model, px), b.n(5, 1), b.n(20, 2))
        b.row(key, f"{name} image embedding, bf16, SDPA ({attn_impl(model)}), eager", B / ms * 1e3, "images/s",
              batch=B, ms_per_batch=ms, higher_is_better=True)
        del model


def _one_jpeg(job):
    """A 640x480 JPEG (quality 90) of smooth colour fields with noise: a real photo's file size."""
    from PIL import Image
    i, path = job
    rng = np.random.default_rng(i)
    yy, xx = np.mgrid[0:480, 0:640].astype(np.float32)
    a, c, ph = rng.uniform(0.005, 0.03, 3), rng.uniform(60, 200, 3), rng.uniform(0, 6.3, 3)
    img = np.stack([c[k] + 50 * np.sin(a[k] * xx + ph[k]) * np.cos(a[k] * yy) for k in range(3)], -1)
    img += rng.normal(0, 12, img.shape)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, quality=90)


def make_jpegs(b, n, folder):
    import multiprocessing
    os.makedirs(folder, exist_ok=True)
    paths = [os.path.join(folder, f"img{i:05d}.jpg") for i in range(n)]
    todo = [(i, p) for i, p in enumerate(paths) if not os.path.exists(p)]
    if todo:
        with multiprocessing.Pool(b.n(os.cpu_count() or 1, 2)) as pool:
            pool.map(_one_jpeg, todo, chunksize=16)
    return paths


class JpegDataset(torch.utils.data.Dataset):
    def __init__(self, paths, size, smoke):
        self.paths, self.size, self.smoke, self.proc = paths, size, smoke, None

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        from PIL import Image
        if self.proc is None:  # one processor per worker
            self.proc = hf_image_processor(self.size)
        img = Image.open(self.paths[i]).convert("RGB")
        if self.proc is None:  # stand-in (smoke without transformers): resize + crop + normalize
            img = img.resize((self.size * 4 // 3, self.size), Image.BICUBIC).crop((0, 0, self.size, self.size))
            return torch.from_numpy((np.asarray(img, np.float32) / 255 - 0.45) / 0.27).permute(2, 0, 1).contiguous()
        return self.proc(images=img, return_tensors="pt")["pixel_values"][0]


def sec_jpeg(b):
    name, n, B = "clip-vit-b32", b.n(4096, 16), b.n(256, 8)
    size = b.sizes[name]["image"]
    t = time.perf_counter()
    paths = make_jpegs(b, n, os.path.join(b.work, "jpegs"))
    print(f"hf_side: {n} JPEGs in {time.perf_counter() - t:.1f} s", flush=True)
    model = load(b, name, torch.bfloat16)
    workers = b.n(os.cpu_count() or 1, 2)
    loader = torch.utils.data.DataLoader(JpegDataset(paths, size, b.smoke), batch_size=B, num_workers=workers,
                                         pin_memory=b.dev.type == "cuda", persistent_workers=True, prefetch_factor=4,
                                         worker_init_fn=lambda _: torch.set_num_threads(1))

    def one_pass():
        last = None
        for batch in loader:
            with torch.inference_mode():
                last = image_embeds(model, batch.to(b.dev, non_blocking=True).to(torch.bfloat16))
        b.sync()
        return last

    one_pass()  # warm-up: workers started, processors made, kernels chosen
    t = time.perf_counter()
    one_pass()
    s = time.perf_counter() - t
    b.row("jpeg_b32", f"{name}: 640x480 JPEG files -> embeddings (Pillow + CLIPImageProcessor in {workers} "
          "DataLoader workers, bf16 eager)", n / s, "images/s", batch=B, files=n, workers=workers,
          higher_is_better=True)


def sec_text(b):
    name, B, L = "clip-vit-b32", b.n(1024, 4), b.n(77, 16)
    model = load(b, name, torch.bfloat16)
    ids, mask = captions(b, B, L, model.config.text_config.vocab_size, True)
    with torch.inference_mode():
        ms = b.time_ms(lambda: text_embeds(model, ids, mask), b.n(5, 1), b.n(20, 2))
    b.row("text_b32", f"{name} text embedding, {L} tokens, bf16, SDPA, eager", B / ms * 1e3, "texts/s", batch=B,
          tokens=L, ms_per_batch=ms, higher_is_better=True)


def sec_latency(b):
    name = "clip-vit-b32"
    model = load(b, name, torch.bfloat16)
    px = pixels(b, 1, b.sizes[name]["image"], torch.bfloat16)
    with torch.inference_mode():
        ms = b.time_ms(lambda: image_embeds(model, px), b.n(20, 1), b.n(100, 3))
    b.row("latency_b32", f"{name}: one image -> embedding, bf16, eager", ms, "ms", batch=1, higher_is_better=False)


def no_decay(name):
    n = name.lower()
    return "bias" in n or "norm" in n  # HF Trainer: no weight decay for biases and LayerNorm weights


def make_optimizer(model, lr=5e-5, wd=0.1):
    groups = [{"params": [p for n, p in model.named_parameters() if not no_decay(n)], "weight_decay": wd},
              {"params": [p for n, p in model.named_parameters() if no_decay(n)], "weight_decay": 0.0}]
    try:
        return torch.optim.AdamW(groups, lr=lr, fused=True), "fused"
    except (TypeError, RuntimeError):  # torch 1.13 / CPU tensors
        return torch.optim.AdamW(groups, lr=lr), "foreach"


def sec_train(b):
    name = "dual-b32-rb"
    for key, B, L, what in (("train_pad128", b.n(256, 4), b.n(128, 16), "captions padded to 128"),
                            ("train_dynamic", b.n(512, 4), b.n(24, 8), "captions padded to 24 (dynamic)")):
        model = hf_load(b, name).to(b.dev).train()  # fp32 master weights, dropout on
        opt, kind = make_optimizer(model)
        params = [p for p in model.parameters()]
        ids, mask = captions(b, B, L, ROBERTA_VOCAB if not b.smoke else 1000, False)
        px = pixels(b, B, b.sizes[name]["image"], torch.float32, seed=1)
        amp = torch.autocast(b.dev.type, dtype=torch.bfloat16)

        def step():
            with amp:
                loss = train_loss(model, ids, mask, px)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)

        ms = b.time_ms(step, b.n(3, 1), b.n(10, 2))
        b.row(key, f"{name} full fine-tuning step (run_clip): batch {B}, {what}, bf16 autocast, AdamW ({kind}), "
              "clip 1.0, dropout on", B / ms * 1e3, "samples/s", batch=B, tokens=L, ms_per_step=ms,
              higher_is_better=True, epochs3_minutes=3 * 591753 / (B / ms * 1e3) / 60)
        del model, opt
        if b.dev.type == "cuda":
            torch.cuda.empty_cache()


def sec_parity(b):
    os.makedirs(b.parity_dir, exist_ok=True)
    torch.backends.cuda.matmul.allow_tf32 = False  # true fp32 (the patch embedding's conv too)
    torch.backends.cudnn.allow_tf32 = False
    N = b.n(16, 3)
    for name in ("clip-vit-b32", "dual-b32-rb"):
        model = load(b, name, torch.float32)
        clip_style = name.startswith("clip")
        vocab = (model.config.text_config.vocab_size if clip_style else (ROBERTA_VOCAB if not b.smoke else 1000))
        ids, mask = captions(b, N, b.n(20, 12), vocab, clip_style)
        px = pixels(b, N, b.sizes[name]["image"], torch.float32, seed=2)
        with torch.inference_mode():
            ie, te = image_embeds(model, px), text_embeds(model, ids, mask)
        write_safetensors(os.path.join(b.parity_dir, f"embed_{name}.safetensors"), {
            "pixel_values": px.cpu().numpy(), "input_ids": ids.cpu().numpy(), "attention_mask": mask.cpu().numpy(),
            "image_embeds": ie.float().cpu().numpy(), "text_embeds": te.float().cpu().numpy()})
        b.row(f"parity_embed_{name}", f"{name}: fp32 embeddings of {N} images and {N} captions dumped", N, "pairs")
    # one training step's gradients, fp32 (dumped) and bf16 autocast (its error is the yardstick)
    name, B, L = "dual-b32-rb", b.n(8, 3), b.n(16, 12)
    model = hf_load(b, name).to(b.dev).eval()  # eval: no dropout, gradients all the same
    ids, mask = captions(b, B, L, ROBERTA_VOCAB if not b.smoke else 1000, False)
    px = pixels(b, B, b.sizes[name]["image"], torch.float32, seed=3)

    def grads(autocast):
        model.zero_grad(set_to_none=True)
        with torch.autocast(b.dev.type, dtype=torch.bfloat16, enabled=autocast):
            loss = train_loss(model, ids, mask, px)
        loss.backward()
        return float(loss), {n: p.grad.detach().float().clone() for n, p in model.named_parameters() if p.grad is not None}

    loss32, g32 = grads(False)
    loss16, g16 = grads(True)
    out = {n: g.cpu().numpy() for n, g in g32.items()}
    out.update({"input.pixel_values": px.cpu().numpy(), "input.input_ids": ids.cpu().numpy(),
                "input.attention_mask": mask.cpu().numpy(), "loss": np.array(loss32, dtype=np.float64)})
    write_safetensors(os.path.join(b.parity_dir, f"grads_{name}.safetensors"), out)
    num = sum(float((g16[n] - g32[n]).double().pow(2).sum()) for n in g32)
    den = sum(float(g.double().pow(2).sum()) for g in g32.values())
    worst = max((float((g16[n] - g32[n]).norm() / max(g32[n].norm(), 1e-30)), n) for n in g32)
    b.row("parity_grads_dumped", f"{name}: fp32 gradients of one step (batch {B}, {L} tokens, loss {loss32:.6f}) "
          f"of {len(g32)} tensors dumped", len(g32), "tensors")
    b.row("parity_hf_bf16_grad_err", f"{name}: HF bf16-autocast vs HF fp32 gradients, relative L2 over all "
          f"parameters (loss {loss16:.6f} vs {loss32:.6f})", math.sqrt(num / den), "rel L2")
    b.row("parity_hf_bf16_grad_err_max", f"{name}: the same, largest per-tensor relative L2 ({worst[1]})", worst[0],
          "rel L2")


def sec_compile(b):
    name, B = "clip-vit-b32", b.n(1024, 4)
    if not hasattr(torch, "compile"):
        b.row("image_b32_compiled", "torch.compile is not in this torch", "n/a", "")
        return
    model = load(b, name, torch.bfloat16)
    px = pixels(b, B, b.sizes[name]["image"], torch.bfloat16)
    fn = torch.compile(lambda x: image_embeds(model, x), mode="max-autotune")
    t = time.perf_counter()
    with torch.inference_mode():
        fn(px)
        b.sync()
        compile_s = time.perf_counter() - t
        ms = b.time_ms(lambda: fn(px), b.n(5, 1), b.n(20, 2))
    b.row("image_b32_compiled", f"{name} image embedding, bf16, torch.compile max-autotune (compiled in "
          f"{compile_s:.0f} s)", B / ms * 1e3, "images/s", batch=B, ms_per_batch=ms, compile_s=compile_s,
          higher_is_better=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="JSON file of the rows")
    ap.add_argument("--work", default="/tmp/clipkit-gpu", help="models, JPEGs and parity dumps")
    ap.add_argument("--sections", default=",".join(SECTIONS))
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (CPU checks of this script)")
    ap.add_argument("--cpu", action="store_true", help="stay on the CPU even with a GPU")
    a = ap.parse_args()
    b = Bench(a)
    info = {"torch": torch.__version__, "transformers": transformers.__version__ if transformers else "stand-in",
            "device": torch.cuda.get_device_name(0) if b.dev.type == "cuda" else "cpu", "smoke": a.smoke}
    print(f"hf_side: {info}", flush=True)
    funcs = {"make": sec_make, "image": sec_image, "jpeg": sec_jpeg, "text": sec_text, "latency": sec_latency,
             "train": sec_train, "parity": sec_parity, "compile": sec_compile}
    sections = a.sections.split(",")
    for s in sections:
        if s not in funcs:
            raise SystemExit(f"hf_side: unknown section {s!r} ({', '.join(funcs)})")
    failed = 0
    for s in sections:
        t = time.perf_counter()
        try:
            funcs[s](b)
        except Exception as e:  # record and go on: the other sections still report
            failed += 1
            traceback.print_exc()
            b.rows.append({"key": f"error_{s}", "engine": "hf", "what": f"section {s} failed: {e!r}"[:300],
                           "value": "error", "unit": ""})
        print(f"hf_side: section {s} took {time.perf_counter() - t:.1f} s", flush=True)
        if b.dev.type == "cuda":
            torch.cuda.empty_cache()
    with open(a.out, "w") as f:
        json.dump({"info": info, "rows": b.rows}, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
