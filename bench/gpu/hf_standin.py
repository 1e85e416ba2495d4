"""A stand-in for the few transformers models hf_side.py uses, for its --smoke run where
transformers is not installed (this Debian machine): the same attributes and outputs
(vision_model(...).pooler_output, text_model(...).pooler_output, the projections,
forward(..., return_loss=True).loss, save_pretrained, config.text_config.vocab_size), built from the
plain-PyTorch CLIP / RoBERTa of bench/peers. It checks hf_side.py's own code, not transformers'."""
import json
import os
import sys
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "peers"))
from safetensors_np import read_safetensors, write_safetensors  # noqa: E402
from torch_clip import CLIPTextTransformer, CLIPVisionTransformer  # noqa: E402
from torch_frozen_train import Roberta  # noqa: E402


class _Tower(nn.Module):
    def __init__(self, inner, returns_tuple):
        super().__init__()
        self.inner, self.returns_tuple = inner, returns_tuple

    def forward(self, pixel_values=None, input_ids=None, attention_mask=None):
        if pixel_values is not None:
            out = self.inner(pixel_values)
        elif self.returns_tuple:
            out = self.inner(input_ids, attention_mask)
        else:
            out = self.inner(input_ids, attention_mask)
        return SimpleNamespace(pooler_output=out[1] if self.returns_tuple else out)


class StandIn(nn.Module):
    def __init__(self, name, vision, text, proj):
        super().__init__()
        self.spec = {"name": name, "vision": vision, "text": text, "proj": proj}
        self.config = SimpleNamespace(text_config=SimpleNamespace(**text), _attn_implementation="stand-in")
        self.vision_model = _Tower(CLIPVisionTransformer(vision), True)
        if name.startswith("clip"):
            self.text_model = _Tower(CLIPTextTransformer(text), True)
        else:
            self.text_model = _Tower(Roberta(text), False)
        self.visual_projection = nn.Linear(vision["hidden_size"], proj, bias=False)
        self.text_projection = nn.Linear(text["hidden_size"], proj, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(2.6592))
        for p in self.parameters():  # torch_clip leaves some parameters at zero
            nn.init.normal_(p, std=0.02)

    def forward(self, input_ids=None, attention_mask=None, pixel_values=None, return_loss=False):
        ie = F.normalize(self.visual_projection(self.vision_model(pixel_values=pixel_values).pooler_output).float(), dim=-1)
        te = F.normalize(self.text_projection(
            self.text_model(input_ids=input_ids, attention_mask=attention_mask).pooler_output).float(), dim=-1)
        logits = self.logit_scale.exp() * te @ ie.t()
        target = torch.arange(logits.shape[0], device=logits.device)
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2 if return_loss else None
        return SimpleNamespace(loss=loss, logits_per_text=logits)

    def save_pretrained(self, path):
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "config.json"), "w") as f:
            json.dump(self.spec, f)
        write_safetensors(os.path.join(path, "model.safetensors"),
                          {k: v.detach().float().cpu().numpy() for k, v in self.state_dict().items()})


def make(name, vision, text, proj):
    return StandIn(name, dict(vision), dict(text), proj)


def load(path):
    with open(os.path.join(path, "config.json")) as f:
        spec = json.load(f)
    m = StandIn(spec["name"], spec["vision"], spec["text"], spec["proj"])
    tensors, _ = read_safetensors(os.path.join(path, "model.safetensors"))
    m.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in tensors.items()})
    return m
