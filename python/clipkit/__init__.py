"""clipkit: CLIP models (HF checkpoints as they are) embedded, searched and trained by clipkit's C++
library, with numpy arrays in and out.

    import clipkit
    model = clipkit.load("tests/data/models/tiny-clip")
    img = model.embed_images(["cat.jpg", "dog.png"])          # float32 (2, D), L2-normalized
    txt = model.embed_texts(["a photo of a cat", "a dog"])    # float32 (2, D)
    probs = model.similarity(["cat.jpg"], ["a cat", "a dog"])  # HF's logits_per_image

The compute runs with the GIL released, so Python threads and data loaders keep running beside it,
and one Model may be used from several threads at once. See docs/python.md.
"""
import json
import os
import warnings

import numpy as np

from . import _clipkit
from ._clipkit import Error, FileNotFoundError, ValueError  # noqa: A004 (subclasses of the builtins)

__all__ = ["load", "Model", "Index", "train", "Embeddings", "Error", "FileNotFoundError", "ValueError"]
__version__ = "0.1.0"

_ERRORS = ("raise", "skip")


class Embeddings(np.ndarray):
    """What embed_images(..., errors="skip") returns: the rows of the readable images, in input
    order, with `kept` (the input index of each row) and `skipped` (one (index, reason) per
    unreadable input)."""

    kept = ()
    skipped = ()

    def __array_finalize__(self, obj):
        if obj is not None:
            self.kept = getattr(obj, "kept", ())
            self.skipped = getattr(obj, "skipped", ())


def _texts(texts):
    if isinstance(texts, str):
        return [texts]
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise ValueError(f"texts[{i}]: expected a str, got {type(t).__name__}")
    return out


def _image_list(images):
    """Paths, bytes, PIL images and uint8 HxWx3 arrays -> what the C++ side reads: str, bytes or a
    C-contiguous uint8 array (PIL images become RGB arrays, as CLIPImageProcessor converts them)."""
    if isinstance(images, (str, bytes, os.PathLike, np.ndarray)) or _is_pil(images):
        if not (isinstance(images, np.ndarray) and images.ndim == 4):
            images = [images]
    out = []
    for i, im in enumerate(images):
        if isinstance(im, os.PathLike):
            im = os.fspath(im)
        if isinstance(im, (bytearray, memoryview)):
            im = bytes(im)
        if _is_pil(im):
            im = np.asarray(im.convert("RGB") if im.mode != "RGB" else im, dtype=np.uint8)
        if isinstance(im, np.ndarray):
            im = np.ascontiguousarray(im)
        out.append(im)
    return out


def _is_pil(x):
    mod = type(x).__module__
    return mod.startswith("PIL.") and hasattr(x, "convert") and hasattr(x, "mode")


def _check_errors(errors):
    if errors not in _ERRORS:
        raise ValueError(f'errors must be "raise" or "skip", got {errors!r}')


def _rows(images, result, errors):
    """(rows, kept, skipped) from the C++ side -> the rows; with errors="raise" one exception naming
    every unreadable input (FileNotFoundError when they are all missing files), with "skip" an
    Embeddings array carrying kept and skipped."""
    x, kept, skipped = result
    if skipped and errors == "raise":
        msg = f"{len(skipped)} of {len(images)} images could not be read: " + "; ".join(r for _, r in skipped)
        missing = all(isinstance(images[i], str) and not os.path.exists(images[i]) for i, _ in skipped)
        raise (FileNotFoundError if missing else Error)(msg)
    if errors == "skip":
        x = x.view(Embeddings)
        x.kept, x.skipped = list(kept), list(skipped)
    return x


class Model:
    """A CLIP model (CLIPModel or VisionTextDualEncoder checkpoint folder) with its tokenizer and
    image preprocessing. Made by clipkit.load()."""

    def __init__(self, native):
        self._m = native
        self._config = None

    # --- what the checkpoint is
    @property
    def embed_dim(self):
        """Size of the shared embedding (projection_dim)."""
        return self._m.embed_dim

    @property
    def config(self):
        """The checkpoint's config.json as a dict."""
        if self._config is None:
            self._config = json.loads(self._m.config_json)
        return self._config

    @property
    def path(self):
        return self._m.path

    @property
    def image_size(self):
        return self._m.image_size

    @property
    def logit_scale(self):
        """The stored (log) temperature, as HF's model.logit_scale; logits use its exp()."""
        return self._m.logit_scale

    @property
    def precision(self):
        return self._m.precision

    @property
    def precision_note(self):
        """Empty where this device runs `precision`'s matmuls natively; else what runs instead (an
        AVX2-only CPU runs bf16 and int8 as fp32 matmuls, slower than fp32). load() warns with it."""
        return self._m.precision_note

    @property
    def image_backend(self):
        """"pil" (HF transformers 4's CLIPImageProcessor) or "torchvision" (transformers 5's)."""
        return self._m.image_backend

    @image_backend.setter
    def image_backend(self, name):
        self._m.image_backend = name

    def __repr__(self):
        return f"clipkit.Model({self.path!r}, {self._m.architecture}, dim {self.embed_dim}, {self.precision})"

    # --- embedding
    def embed_images(self, images, batch_size=32, normalize=True, errors="raise", exif_transpose=False):
        """Embeddings float32 (N, embed_dim) of images: file paths, bytes (encoded files),
        PIL.Image.Image, or uint8 numpy arrays HxWx3 (RGB), mixed freely. normalize=False gives HF's
        get_image_features exactly. errors="raise" raises clipkit.Error naming every unreadable
        image (FileNotFoundError when all are missing files); errors="skip" returns an Embeddings
        array of the readable ones with .kept and .skipped."""
        _check_errors(errors)
        items = _image_list(images)
        return _rows(items, self._m.embed_images(items, batch_size, normalize, exif_transpose), errors)

    def embed_texts(self, texts, batch_size=32, normalize=True, max_length=None):
        """Embeddings float32 (N, embed_dim) of texts (a str or a list of str). max_length
        truncates the token ids (special tokens included), as tokenizer(..., truncation=True,
        max_length=N); None = the model's limit."""
        return self._m.embed_texts(_texts(texts), batch_size, normalize, max_length or 0)

    def embed_pixels(self, pixels, batch_size=32, normalize=True):
        """Embeddings of preprocessed pixels: float32 (N, 3, S, S) as preprocess() or HF's
        CLIPImageProcessor gives them (a torch tensor is taken through numpy)."""
        if not isinstance(pixels, np.ndarray) and hasattr(pixels, "numpy"):
            pixels = pixels.detach().cpu().numpy() if hasattr(pixels, "detach") else pixels.numpy()
        pixels = np.asarray(pixels)
        if pixels.dtype == np.float32:
            pixels = np.ascontiguousarray(pixels)
        return self._m.embed_pixels(pixels, batch_size, normalize)

    # --- the steps before the model
    def tokenize(self, texts, max_length=None, padding="longest"):
        """{"input_ids", "attention_mask"}: int64 arrays (N, L), as HF's tokenizer(texts,
        padding=..., truncation=True, max_length=..., return_tensors="np"). padding: "longest"
        (or True) pads to the longest text, "max_length" to max_length (None = the model's limit)."""
        if padding is True:
            padding = "longest"
        if padding not in ("longest", "max_length"):
            raise ValueError(f'padding must be "longest", True or "max_length", got {padding!r}')
        ids, mask = self._m.tokenize(_texts(texts), max_length or 0, padding == "max_length")
        return {"input_ids": ids, "attention_mask": mask}

    def preprocess(self, images, errors="raise", exif_transpose=False):
        """float32 (N, 3, S, S) pixels exactly as HF's CLIPImageProcessor makes them (what
        embed_pixels takes). Inputs and errors= as in embed_images."""
        _check_errors(errors)
        items = _image_list(images)
        return _rows(items, self._m.preprocess(items, exif_transpose), errors)

    def similarity(self, images, texts, batch_size=32):
        """HF's logits_per_image float32 (N_images, N_texts): exp(logit_scale) times the cosine
        similarity; .softmax over axis 1 gives zero-shot probabilities."""
        im = self.embed_images(images, batch_size=batch_size)
        tx = self.embed_texts(texts, batch_size=batch_size)
        scale = np.exp(np.float32(self.logit_scale))
        return np.ascontiguousarray((tx @ im.T * scale).T)  # HF: logits_per_text.t()


def load(path, device="cpu", precision="fp32", threads=0):
    """Loads an HF checkpoint folder (CLIPModel, or VisionTextDualEncoder = CLIP ViT + RoBERTa).
    precision: "fp32", "bf16" or "int8" (matmuls; int8 on the CPU); threads: compute threads, 0 = all cores.
    Raises FileNotFoundError (no such folder / config.json), ValueError (a model type or setting
    clipkit does not support), clipkit.Error (anything else wrong with the files)."""
    m = Model(_clipkit.Model(os.fspath(path), device, precision, threads))
    if m.precision_note:
        warnings.warn(f"precision {precision!r}: {m.precision_note}", RuntimeWarning, stacklevel=2)
    return m


def _sources(images, coco, split):
    """Index inputs: a folder (str), a list of paths, or a COCO root -> (folder, paths, coco, split)."""
    if (images is None) == (coco is None):
        raise ValueError("give images= (a folder or a list of image paths) or coco= (a COCO 2017 root)")
    if coco is not None:
        return "", [], os.fspath(coco), split or ""
    if isinstance(images, (str, os.PathLike)):
        return os.fspath(images), [], "", ""
    return "", [os.fspath(p) for p in images], "", ""


class Index:
    """An image index folder (FAISS vectors + SQLite metadata), the one `clipkit index` builds and
    `clipkit search` / `clipkit serve` read."""

    def __init__(self, native, model=None):
        self._ix = native
        self._model = model
        self.skipped = []  # (path, reason) of the images the last build()/add() could not read

    @classmethod
    def open(cls, path, model=None):
        """Opens an index folder; model (a Model, or its folder) defaults to the one the index
        records, loaded when a text or image query first needs it."""
        ix = cls(_clipkit.Index(os.fspath(path)))
        if isinstance(model, Model):
            ix._ix.check_model(model._m)
            ix._model = model
        elif model is not None:
            ix._model = Model(ix._ix.query_model(os.fspath(model), "fp32", 0))
        return ix

    @classmethod
    def build(cls, model, images=None, path=None, coco=None, split=None, factory="", nprobe=0,
              overwrite=False, batch_size=32):
        """Embeds images (a folder, searched recursively, or a list of paths; or coco= a COCO root)
        with model and writes a new index folder at path, as `clipkit index build`. Unreadable
        images are left out and listed in .skipped."""
        if path is None:
            raise ValueError("Index.build needs path= (the index folder to create)")
        folder, paths, coco_root, split = _sources(images, coco, split)
        skipped = _clipkit.Index.build(model._m, os.fspath(path), folder, paths, coco_root, split, factory, nprobe,
                                       overwrite, batch_size)
        ix = cls.open(path, model=model)
        ix.skipped = [tuple(s) for s in skipped]
        return ix

    @property
    def model(self):
        if self._model is None:
            self._model = Model(self._ix.query_model("", "fp32", 0))
        return self._model

    @property
    def info(self):
        """index.json's description: count, dim, structure, model, splits (`clipkit index info --json`)."""
        return json.loads(self._ix.info_json())

    def __len__(self):
        return len(self._ix)

    def __repr__(self):
        i = self.info
        return f"clipkit.Index({i.get('dir')!r}, {len(self)} images, dim {i.get('dim')})"

    def search(self, text=None, image=None, vector=None, k=10, filter=None, nprobe=0):
        """Best first: [{"rank", "id", "path", "score", ...metadata}], as `clipkit search --json`.
        Exactly one of text= (a sentence), image= (a path, bytes, PIL image or array) or vector= (an
        L2-normalized embedding). filter: {"split": ..., "folder": ..., "video": ...}."""
        given = [x is not None for x in (text, image, vector)]
        if sum(given) != 1:
            raise ValueError("search needs exactly one of text=, image= or vector=")
        if text is not None:
            q = self.model.embed_texts([text])[0]
        elif image is not None:
            q = self.model.embed_images([image] if not isinstance(image, list) else image)[0]
        else:
            q = np.asarray(vector)
            if q.dtype != np.float32:
                raise ValueError(f"vector must be float32, got {q.dtype}")
            q = np.ascontiguousarray(q.reshape(-1) if q.ndim == 2 and q.shape[0] == 1 else q)
        if filter is not None and not isinstance(filter, dict):
            raise ValueError("filter must be a dict such as {\"split\": \"val\"}")
        return json.loads(self._ix.search(q, k, json.dumps(filter or {}), nprobe))["results"]

    def add(self, images=None, coco=None, split=None, batch_size=32):
        """Embeds and adds images (paths already indexed are skipped), as `clipkit index add`.
        Returns how many were added; unreadable images are listed in .skipped."""
        folder, paths, coco_root, split = _sources(images, coco, split)
        added, skipped = self._ix.add(self.model._m, folder, paths, coco_root, split, batch_size)
        self.skipped = [tuple(s) for s in skipped]
        return added

    def remove(self, ids):
        """Removes these image ids; returns how many were removed."""
        if isinstance(ids, int):
            ids = [ids]
        return self._ix.remove([int(i) for i in ids])


def train(model, data, out, **flags):
    """Contrastive training as `clipkit train --model MODEL --data DATA --out OUT`, with the CLI's
    other flags as keyword arguments (--max-steps 10 -> max_steps=10, --no-eval -> no_eval=True).
    Progress goes to stderr; returns the final metrics {"steps", "last_loss", "interrupted",
    "eval_before", "eval_after", "out"}. Ctrl-C (KeyboardInterrupt) stops at the next step with a
    checkpoint in OUT that resume=True continues."""
    return json.loads(_clipkit.train(os.fspath(model), os.fspath(data), os.fspath(out), flags))
