"""A real torch model pair for staged pipelines: an instruction-conditioned image editor and a
reward scorer. Both run on CPU (CI) or CUDA (when present) and are served by
workloads/model_host.py (class_path models.ImageEditor / models.RewardScorer; the runner puts the
pipeline's directory on sys.path).

ImageEditor  (stage "edit"): a small conv encoder-decoder whose bottleneck is scaled and shifted
    per channel (FiLM) by a hashed-token embedding of the item's instruction. Reads the item's base64
    PNG (field `image_field`, default "image"); returns {"image": <base64 PNG, same size>,
    "mean_abs_change": mean |edited - original| over pixels and channels, in [0, 1]}.
RewardScorer (stage "score"): a torchvision resnet18 (weights=None, seeded; the classifier head
    removed: 512 features) and a hashed-token text embedding of the item's description and
    instruction projected to 512; score = sigmoid(logit_scale * cosine) in (0, 1). Reads the edited
    image from inputs[input_stage]["image"]; returns {"score": float, "brightness": mean of the
    edited image in [0, 1]}.

Weights are random but deterministic (torch.manual_seed(seed) before the modules are built): the
pair is about moving real torch modules on and off a GPU and running real convolutions, not about
meaningful edits. Common params:
    device      "auto" (cuda when torch.cuda.is_available(), else cpu) | "cpu" | "cuda"
    seed        weight seed (int, default 0)
    dtype       "float32" | "float16" (float16 only on cuda; on cpu it falls back to float32 with a
                note on stderr)
    calls_file  append "<stage>\t<category>\t<id>" per process call (tests)
    stage       the stage name written to calls_file (default "edit" / "score")
A missing or unreadable image raises ValueError (the runner records it as that item's failure).
"""
import base64
import binascii
import gc
import hashlib
import io
import os
import re
import sys

import torch
import torch.nn.functional as F
from torch import nn

_TOKEN = re.compile(r"[a-z0-9]+")


def _log(msg):
    sys.stderr.write("[models] %s\n" % msg)
    sys.stderr.flush()


def hashed_tokens(text, vocab):
    """Token ids of `text`: lower-case words hashed (sha256, stable across processes) into `vocab` buckets."""
    words = _TOKEN.findall(str(text or "").lower()) or ["<empty>"]
    return [int.from_bytes(hashlib.sha256(w.encode("utf-8")).digest()[:4], "big") % vocab for w in words]


def _label(item):
    return "item %s" % item.get("id", "?")


def decode_image(b64, what):
    """base64 PNG (a data: URI prefix is allowed) -> float tensor (1, 3, H, W) in [0, 1] on cpu."""
    from PIL import Image, UnidentifiedImageError

    if not isinstance(b64, str) or not b64:
        raise ValueError("%s: missing (expected a base64 PNG string)" % what)
    if b64.startswith("data:"):
        b64 = b64.split(",", 1)[-1]
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValueError("%s: not valid base64 (%s)" % (what, str(e).splitlines()[0] if str(e) else type(e).__name__))
    try:
        img = Image.open(io.BytesIO(raw))
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError("%s: not a PNG image (%d bytes; %s)" % (what, len(raw), type(e).__name__))
    w, h = img.size
    if w < 1 or h < 1 or w * h > 4096 * 4096:
        raise ValueError("%s: unsupported image size %dx%d" % (what, w, h))
    img = img.convert("RGB")
    t = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(h, w, 3)
    return t.permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def encode_png(x):
    """float tensor (1, 3, H, W) in [0, 1] -> (base64 PNG, the uint8 tensor written)."""
    from PIL import Image

    u8 = x[0].detach().float().cpu().clamp(0, 1).mul(255).round().to(torch.uint8)
    _, h, w = u8.shape
    img = Image.frombytes("RGB", (w, h), bytes(u8.permute(1, 2, 0).contiguous().view(-1).tolist()))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii"), u8


class _TorchStage:
    """Device, dtype, seeding, timing-friendly load/unload and memory reporting for one nn.Module."""

    stage = "stage"

    def __init__(self, device="auto", seed=0, dtype="float32", calls_file=None, stage=None, **unknown):
        if unknown:
            _log("%s: ignoring unknown params %s" % (type(self).__name__, sorted(unknown)))
        device = str(device or "auto").lower()
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError("device %r requested but torch.cuda.is_available() is False (torch %s)" % (device, torch.__version__))
        if not (device == "cpu" or device.startswith("cuda")):
            raise ValueError("device must be auto, cpu or cuda, not %r" % device)
        if dtype not in ("float32", "float16"):
            raise ValueError("dtype must be float32 or float16, not %r" % (dtype,))
        if dtype == "float16" and device == "cpu":
            _log("%s: dtype float16 needs cuda; using float32 on cpu" % type(self).__name__)
            dtype = "float32"
        self.device = torch.device(device)
        self.dtype = getattr(torch, dtype)
        self.seed = int(seed)
        self.calls_file = calls_file
        if stage:
            self.stage = str(stage)
        self.loaded = False
        self._baseline = 0
        torch.manual_seed(self.seed)
        self.net = self.build().eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        if self.dtype != torch.float32:
            self.net.to(self.dtype)  # on cpu before loading: the load is the transfer only
        if self.device.type == "cuda":
            # Create the CUDA context now so that the first load times the transfer, not the context.
            torch.cuda.init()
            self._warm = torch.zeros(1, device=self.device)
            torch.cuda.synchronize(self.device)

    def build(self):
        raise NotImplementedError

    def _sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def load_to_gpu(self):
        if self.device.type == "cuda":
            self._sync()
            self._baseline = torch.cuda.memory_allocated(self.device)
        self.net.to(self.device)
        self._sync()
        self.loaded = True

    def unload_from_gpu(self):
        self.net.to("cpu")
        self.loaded = False
        gc.collect()
        if self.device.type == "cuda":
            self._sync()
            torch.cuda.empty_cache()

    def param_bytes(self):
        return sum(t.numel() * t.element_size() for t in list(self.net.parameters()) + list(self.net.buffers()))

    def memory(self):
        """GPU memory of the loaded model, in bytes.

        On cuda: the growth of torch.cuda.memory_allocated() since just before load_to_gpu (the
        weights as the caching allocator holds them). On cpu nothing is on a GPU: this returns the
        parameter + buffer bytes, i.e. what the model would take on one, so that a pipeline without
        memory_mb still gets a realistic size to plan with. 0 while not loaded.
        """
        if not self.loaded:
            return 0
        if self.device.type == "cuda":
            return max(0, int(torch.cuda.memory_allocated(self.device)) - self._baseline)
        return int(self.param_bytes())

    def _record_call(self, item):
        if not self.loaded:
            raise RuntimeError("process before load_to_gpu")
        if self.calls_file:
            with open(self.calls_file, "a") as f:
                f.write("%s\t%s\t%s\n" % (self.stage, item.get("category", ""), item.get("id")))
                f.flush()
                os.fsync(f.fileno())

    def _tokens(self, text, vocab):
        ids = torch.tensor(hashed_tokens(text, vocab), dtype=torch.long, device=self.device)
        return ids, torch.zeros(1, dtype=torch.long, device=self.device)


class _EditNet(nn.Module):
    def __init__(self, vocab, dim, ch, strength):
        super().__init__()
        self.strength = strength
        self.text = nn.EmbeddingBag(vocab, dim, mode="mean")
        self.film = nn.Linear(dim, 2 * ch)
        self.enc1 = nn.Conv2d(3, ch // 2, 3, padding=1)
        self.enc2 = nn.Conv2d(ch // 2, ch, 3, stride=2, padding=1)
        self.mid = nn.Conv2d(ch, ch, 3, padding=1)
        self.dec1 = nn.Conv2d(ch, ch // 2, 3, padding=1)
        self.dec2 = nn.Conv2d(ch // 2, 3, 3, padding=1)

    def forward(self, img, tokens, offsets):
        scale, shift = self.film(self.text(tokens, offsets)).chunk(2, dim=1)
        h1 = F.relu(self.enc1(img))
        h = F.relu(self.enc2(h1))
        h = h * (1 + torch.tanh(scale))[:, :, None, None] + shift[:, :, None, None]
        h = F.relu(self.mid(h))
        h = F.interpolate(h, size=img.shape[-2:], mode="nearest")
        h = F.relu(self.dec1(h)) + h1
        return (img + self.strength * torch.tanh(self.dec2(h))).clamp(0, 1)


class ImageEditor(_TorchStage):
    """Instruction-conditioned conv encoder-decoder. Extra params: image_field ("image"),
    vocab (32768 hashed-token buckets), dim (192), channels (32), strength (0.25: the largest change
    per pixel). The default embedding table (32768 x 192) makes the model about 25 MB in float32."""

    stage = "edit"

    def __init__(self, image_field="image", vocab=32768, dim=192, channels=32, strength=0.25, **kw):
        self.image_field = image_field
        self.vocab, self.dim, self.channels, self.strength = int(vocab), int(dim), int(channels), float(strength)
        super().__init__(**kw)

    def build(self):
        return _EditNet(self.vocab, self.dim, self.channels, self.strength)

    def process(self, item, inputs):
        self._record_call(item)
        x = decode_image(item.get(self.image_field), "%s: field %r" % (_label(item), self.image_field))
        with torch.inference_mode():
            tokens, offsets = self._tokens(item.get("instruction", ""), self.vocab)
            y = self.net(x.to(self.device, self.dtype), tokens, offsets)
            self._sync()
        b64, u8 = encode_png(y)
        change = (u8.float().div(255.0) - x).abs().mean().item()
        return {"image": b64, "mean_abs_change": change}


class _ScoreNet(nn.Module):
    def __init__(self, vocab, dim):
        super().__init__()
        import torchvision

        self.backbone = torchvision.models.resnet18(weights=None)
        self.backbone.fc = nn.Identity()
        self.text = nn.EmbeddingBag(vocab, dim, mode="mean")
        self.proj = nn.Linear(dim, 512)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, img, tokens, offsets, size):
        x = F.interpolate(img, size=(size, size), mode="bilinear", align_corners=False)
        f_img = self.backbone((x - self.mean) / self.std)
        f_txt = self.proj(self.text(tokens, offsets))
        return F.cosine_similarity(f_img.float(), f_txt.float(), dim=1)


class RewardScorer(_TorchStage):
    """resnet18 image features vs a text embedding. Extra params: input_stage ("edit"),
    image_field ("image", in that stage's output), text_fields (["description", "instruction"]),
    vocab (8192), dim (256), input_size (64: the image is resized to this square), logit_scale (1.0).
    About 51 MB in float32 (resnet18 without its head: 43 MB; text embedding: 9 MB)."""

    stage = "score"

    def __init__(self, input_stage="edit", image_field="image", text_fields=("description", "instruction"),
                 vocab=8192, dim=256, input_size=64, logit_scale=1.0, **kw):
        self.input_stage = input_stage
        self.image_field = image_field
        self.text_fields = list(text_fields)
        self.vocab, self.dim, self.input_size, self.logit_scale = int(vocab), int(dim), int(input_size), float(logit_scale)
        super().__init__(**kw)

    def build(self):
        return _ScoreNet(self.vocab, self.dim)

    def process(self, item, inputs):
        self._record_call(item)
        src = inputs.get(self.input_stage)
        if not isinstance(src, dict):
            raise ValueError("%s: no output of stage %r among the inputs (have: %s)" % (_label(item), self.input_stage, ", ".join(sorted(inputs)) or "none"))
        x = decode_image(src.get(self.image_field), "%s: %s.%s" % (_label(item), self.input_stage, self.image_field))
        text = " ".join(str(item.get(f) or "") for f in self.text_fields)
        with torch.inference_mode():
            tokens, offsets = self._tokens(text, self.vocab)
            cos = self.net(x.to(self.device, self.dtype), tokens, offsets, self.input_size)
            score = torch.sigmoid(self.logit_scale * cos).item()
        return {"score": score, "brightness": x.mean().item()}
