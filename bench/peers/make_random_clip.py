#!/usr/bin/python3
"""Writes a random-weight Hugging Face CLIPModel folder: config.json, model.safetensors (F32), and
the openai folders' preprocessor_config.json / tokenizer files (CLIP vocab copied from --tokenizer).

  make_random_clip.py --arch clip-vit-base-patch32|clip-vit-base-patch16|clip-vit-large-patch14 --out DIR

config.json has the structure and values of the real openai/clip-vit-* configs (the legacy full
PretrainedConfig dump with generation fields such as "max_length": 20, eos_token_id 2, and for
base-patch16 / large-patch14 the `*_config_dict` override blocks), so a loader meets what real
checkpoints look like. Weights follow the tiny-clip recipe (weights ~ N(0, 1/sqrt(fan_in)),
LayerNorm weights ~ 1 + N(0, 0.2), biases ~ N(0, 0.1), embeddings ~ N(0, 0.5)), scaled so that
activations stay finite through 12-24 layers. For benchmarks only: the values mean nothing.
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(os.path.dirname(_HERE))
sys.path.insert(0, _HERE)
from safetensors_np import write_safetensors  # noqa: E402

ARCHS = {
    # text: hidden, mlp, heads, layers; vision: hidden, mlp, heads, layers, patch; projection
    "clip-vit-base-patch32": dict(t=(512, 2048, 8, 12), v=(768, 3072, 12, 12, 32), proj=512),
    "clip-vit-base-patch16": dict(t=(512, 2048, 8, 12), v=(768, 3072, 12, 12, 16), proj=512),
    "clip-vit-large-patch14": dict(t=(768, 3072, 12, 12), v=(1024, 4096, 16, 24, 14), proj=768),
}

# The keys every sub-config of the real checkpoints carries (a transformers 4.16 PretrainedConfig dump).
_COMMON = {
    "_name_or_path": "", "add_cross_attention": False, "architectures": None, "attention_dropout": 0.0,
    "bad_words_ids": None, "chunk_size_feed_forward": 0, "cross_attention_hidden_size": None,
    "decoder_start_token_id": None, "diversity_penalty": 0.0, "do_sample": False, "dropout": 0.0,
    "early_stopping": False, "encoder_no_repeat_ngram_size": 0, "finetuning_task": None,
    "forced_bos_token_id": None, "forced_eos_token_id": None, "hidden_act": "quick_gelu",
    "id2label": {"0": "LABEL_0", "1": "LABEL_1"}, "initializer_factor": 1.0, "initializer_range": 0.02,
    "is_decoder": False, "is_encoder_decoder": False, "label2id": {"LABEL_0": 0, "LABEL_1": 1},
    "layer_norm_eps": 1e-05, "length_penalty": 1.0, "max_length": 20, "min_length": 0,
    "no_repeat_ngram_size": 0, "num_beam_groups": 1, "num_beams": 1, "num_return_sequences": 1,
    "output_attentions": False, "output_hidden_states": False, "output_scores": False, "prefix": None,
    "problem_type": None, "pruned_heads": {}, "remove_invalid_values": False, "repetition_penalty": 1.0,
    "return_dict": True, "return_dict_in_generate": False, "sep_token_id": None,
    "task_specific_params": None, "temperature": 1.0, "tie_encoder_decoder": False,
    "tie_word_embeddings": True, "tokenizer_class": None, "top_k": 50, "top_p": 1.0,
    "torch_dtype": None, "torchscript": False, "transformers_version": "4.16.0.dev0",
    "use_bfloat16": False,
}


def make_config(arch):
    a = ARCHS[arch]
    td, tm, th, tl = a["t"]
    vd, vm, vh, vl, patch = a["v"]
    text = dict(_COMMON, bos_token_id=0, eos_token_id=2, pad_token_id=1, hidden_size=td,
                intermediate_size=tm, num_attention_heads=th, num_hidden_layers=tl,
                max_position_embeddings=77, model_type="clip_text_model", projection_dim=a["proj"],
                vocab_size=49408)
    vision = dict(_COMMON, bos_token_id=None, eos_token_id=None, pad_token_id=None, hidden_size=vd,
                  intermediate_size=vm, num_attention_heads=vh, num_hidden_layers=vl, image_size=224,
                  patch_size=patch, model_type="clip_vision_model", projection_dim=a["proj"])
    cfg = {
        "_name_or_path": f"openai/{arch}", "architectures": ["CLIPModel"], "initializer_factor": 1.0,
        "logit_scale_init_value": 2.6592, "model_type": "clip", "projection_dim": a["proj"],
        "text_config": dict(sorted(text.items())), "text_config_dict": None,
        "torch_dtype": "float32", "transformers_version": None,
        "vision_config": dict(sorted(vision.items())), "vision_config_dict": None,
    }
    if arch != "clip-vit-base-patch32":
        # The later openai uploads repeat their non-default sizes in the legacy override blocks.
        cfg["text_config_dict"] = {"hidden_size": td, "intermediate_size": tm, "num_attention_heads": th,
                                   "num_hidden_layers": tl, "projection_dim": a["proj"]}
        cfg["vision_config_dict"] = {"hidden_size": vd, "intermediate_size": vm, "num_attention_heads": vh,
                                     "num_hidden_layers": vl, "patch_size": patch,
                                     "projection_dim": a["proj"]}
    else:
        del cfg["torch_dtype"]  # the base-patch32 upload has none at the top level
    return cfg


def make_weights(cfg, seed, position_ids=False):
    rng = np.random.default_rng(seed)
    w = {}

    def normal(shape, std):
        return (rng.standard_normal(shape, dtype=np.float32) * np.float32(std)).astype(np.float32)

    def linear(name, n_out, n_in, bias=True, gain=1.0):
        w[name + ".weight"] = normal((n_out, n_in), gain / np.sqrt(n_in))
        if bias:
            w[name + ".bias"] = normal((n_out,), 0.1)

    def layer_norm(name, d):
        w[name + ".weight"] = 1 + normal((d,), 0.2)
        w[name + ".bias"] = normal((d,), 0.1)

    def encoder(prefix, c):
        d, m, n = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
        res = 1 / np.sqrt(2 * n)  # keeps the residual stream's scale O(1) however deep the tower is
        for i in range(n):
            p = f"{prefix}.encoder.layers.{i}"
            for proj in ("q_proj", "k_proj", "v_proj"):
                linear(f"{p}.self_attn.{proj}", d, d)
            linear(f"{p}.self_attn.out_proj", d, d, gain=res)
            layer_norm(f"{p}.layer_norm1", d)
            linear(f"{p}.mlp.fc1", m, d)
            linear(f"{p}.mlp.fc2", d, m, gain=res)
            layer_norm(f"{p}.layer_norm2", d)

    t, v, proj = cfg["text_config"], cfg["vision_config"], cfg["projection_dim"]
    w["text_model.embeddings.token_embedding.weight"] = normal((t["vocab_size"], t["hidden_size"]), 0.5)
    w["text_model.embeddings.position_embedding.weight"] = normal((t["max_position_embeddings"],
                                                                   t["hidden_size"]), 0.5)
    encoder("text_model", t)
    layer_norm("text_model.final_layer_norm", t["hidden_size"])
    vd, p = v["hidden_size"], v["patch_size"]
    npos = (v["image_size"] // p) ** 2 + 1
    w["vision_model.embeddings.class_embedding"] = normal((vd,), 0.5)
    w["vision_model.embeddings.patch_embedding.weight"] = normal((vd, 3, p, p), 1 / np.sqrt(3 * p * p))
    w["vision_model.embeddings.position_embedding.weight"] = normal((npos, vd), 0.5)
    layer_norm("vision_model.pre_layrnorm", vd)
    encoder("vision_model", v)
    layer_norm("vision_model.post_layernorm", vd)
    linear("visual_projection", proj, vd, bias=False)
    linear("text_projection", proj, t["hidden_size"], bias=False)
    w["logit_scale"] = np.array(np.log(1 / 0.07), dtype=np.float32)
    if position_ids:  # older HF checkpoints also store these buffers; a loader must ignore them
        w["text_model.embeddings.position_ids"] = np.arange(t["max_position_embeddings"])[None]
        w["vision_model.embeddings.position_ids"] = np.arange(npos)[None]
    return w


_SPECIAL = {"content": None, "single_word": False, "lstrip": False, "rstrip": False, "normalized": True}


def write_processor_files(out, image_size, tokenizer_dir):
    """The preprocessing and tokenizer files of the openai/clip-vit-* folders (CLIP vocab)."""
    for name in ("vocab.json", "merges.txt"):
        shutil.copyfile(os.path.join(tokenizer_dir, name), os.path.join(out, name))
    pre = {
        "crop_size": {"height": image_size, "width": image_size}, "do_center_crop": True,
        "do_convert_rgb": True, "do_normalize": True, "do_rescale": True, "do_resize": True,
        "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_processor_type": "CLIPImageProcessor",
        "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3,
        "rescale_factor": 1 / 255, "size": {"shortest_edge": image_size},
    }
    bos, eos = dict(_SPECIAL, content="<|startoftext|>"), dict(_SPECIAL, content="<|endoftext|>")
    special = {"bos_token": bos, "eos_token": eos, "unk_token": eos, "pad_token": "<|endoftext|>"}
    tok = {"unk_token": dict(eos, __type="AddedToken"), "bos_token": dict(bos, __type="AddedToken"),
           "eos_token": dict(eos, __type="AddedToken"), "pad_token": "<|endoftext|>",
           "add_prefix_space": False, "errors": "replace", "do_lower_case": True, "model_max_length": 77,
           "tokenizer_class": "CLIPTokenizer"}
    for name, obj in (("preprocessor_config.json", pre), ("special_tokens_map.json", special),
                      ("tokenizer_config.json", tok)):
        with open(os.path.join(out, name), "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", required=True, choices=sorted(ARCHS))
    ap.add_argument("--out", required=True, help="output folder (created)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tokenizer", default=os.path.join(_REPO, "assets", "tokenizers", "clip"),
                    help="folder with the CLIP vocab.json + merges.txt to copy (default: the repo's)")
    ap.add_argument("--position-ids", action="store_true",
                    help="also store the int64 position_ids buffers old HF checkpoints carry")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    cfg = make_config(a.arch)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    write_processor_files(a.out, cfg["vision_config"]["image_size"], a.tokenizer)
    weights = make_weights(cfg, a.seed, a.position_ids)
    write_safetensors(os.path.join(a.out, "model.safetensors"), weights, {"format": "pt"})
    n = sum(x.size for k, x in weights.items() if not k.endswith("position_ids"))
    print(f"{a.out}: {a.arch}, {n / 1e6:.1f}M parameters (random, seed {a.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
