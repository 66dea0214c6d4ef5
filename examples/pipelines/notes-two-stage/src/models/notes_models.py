"""Stand-ins for the notes' QwenImageEditModel and Qwen3VLRewardModel (no torch, no weights): the
same class shapes and method names (load_to_gpu / unload_from_gpu, edit_image(image, instruction),
score(edited_image, original_description, edit_instruction, system_prompt, user_prompt,
original_image)), no process() adapter. `calls_file` records every call ("<method>\t<args>").
emit: "text" (edit_image returns a string), "tensor" (a 3xHxW float "tensor": shape + tolist(),
like torch's), "pil" (a PIL image; needs PIL), "bad-tensor" (2x2x5: not an image gpucolo can write).
"""
import json
import os

from src.models.base import BaseDiffusionModel, BaseRewardModel


class _Pipeline:
    """What diffusers' pipeline offers here: .to(device)."""

    def __init__(self):
        self.device = "cpu"

    def to(self, device):
        self.device = device
        return self


class FakeTensor:
    """Enough of a torch tensor for gpucolo's PNG writer: shape, dtype, tolist(), detach(), cpu()."""

    def __init__(self, data):
        self.data = data
        self.shape = (len(data), len(data[0]), len(data[0][0]))
        self.dtype = "torch.float32"

    def detach(self):
        return self

    def cpu(self):
        return self

    def tolist(self):
        return self.data


def _log(calls_file, method, *args):
    if not calls_file:
        return
    shown = []
    for a in args:
        if isinstance(a, (str, int, float)) or a is None:
            shown.append(a)
        else:
            shown.append("<%s>" % type(a).__name__)
    with open(calls_file, "a") as f:
        f.write("%s\t%s\n" % (method, json.dumps(shown, ensure_ascii=False, separators=(",", ":"))))


class QwenImageEditModel(BaseDiffusionModel):
    def __init__(self, model_name="Qwen/Qwen-Image-Edit", device="cuda", dtype="bfloat16", calls_file=None, emit="text"):
        self.model_name = model_name
        self.device = device
        self.dtype = dtype
        self.calls_file = calls_file
        self.emit = emit
        self.pipeline = _Pipeline()

    def unload_from_gpu(self):
        self.pipeline.to('cpu')
        # torch.cuda.empty_cache()

    def load_to_gpu(self):
        self.pipeline.to(self.device)

    def edit_image(self, image, instruction):
        if self.pipeline.device == "cpu":
            raise RuntimeError("edit_image before load_to_gpu")
        _log(self.calls_file, "edit_image", image, instruction)
        if self.emit == "tensor":
            v = (len(instruction) % 10) / 10.0
            return FakeTensor([[[v, 0.5], [1.0, 0.0]], [[0.25, v], [0.0, 1.0]], [[1.0, 1.0], [v, 0.0]]])
        if self.emit == "bad-tensor":
            return FakeTensor([[[0.0] * 5] * 2] * 2)
        if self.emit == "pil":
            from PIL import Image

            return Image.new("RGB", (4, 3), (len(instruction) % 256, 10, 20))
        return "edited(%s)" % instruction


class Qwen3VLRewardModel(BaseRewardModel):
    def __init__(self, model_name="Qwen/Qwen3-VL-30B-Instruct", device="auto", dtype="bfloat16", calls_file=None):
        self.model_name = model_name
        self.target_device = "cuda" if device == "auto" else device
        self.calls_file = calls_file
        self.on_gpu = False

    def unload_from_gpu(self):
        self.on_gpu = False

    def load_to_gpu(self):
        self.on_gpu = True

    def score(self, edited_image, original_description, edit_instruction, system_prompt, user_prompt, original_image):
        if not self.on_gpu:
            raise RuntimeError("score before load_to_gpu")
        _log(self.calls_file, "score", edited_image, original_description, edit_instruction, system_prompt, user_prompt, original_image)
        if isinstance(edited_image, str) and os.path.isfile(edited_image):
            with open(edited_image, "rb") as f:
                head = f.read(8)
            if head != b"\x89PNG\r\n\x1a\n":
                raise ValueError("not a PNG: %s" % edited_image)
            return 5.0 + len(edit_instruction) % 5
        if hasattr(edited_image, "size") and hasattr(edited_image, "mode"):
            return 5.0 + len(edit_instruction) % 5
        return 5.0 + len(str(edited_image)) % 5
