"""Toy models for staged pipelines (pure Python; no torch needed).

Editor  (stage 1): output {"edited": transform of item["instruction"]}
Scorer  (stage 2): reads inputs["edit"] (or the first input) -> {"score": float in [0, 1)}
Both take params: calls_file (append "<stage>\t<id>" per process call), fail_on_ids (raise for
these ids), load_fail (raise in load_to_gpu), sleep_ms (per item), memory_mb (reported memory once
loaded; None, the default, reports nothing: the memory is unknown), pad_bytes (Editor: add a
"pad" string of that many bytes to each output, for large outputs), nan_on_ids (Scorer: a NaN
score for these ids, which is not JSON: model_host.py turns it into that item's error).
TorchEditor: an Editor holding a small torch tensor moved to/from CUDA (imports torch when made).
"""
import hashlib
import os
import time


class _Toy:
    stage = "toy"

    def __init__(self, calls_file=None, fail_on_ids=None, load_fail=False, sleep_ms=0, memory_mb=None, pad_bytes=0, nan_on_ids=None, **_):
        self.calls_file = calls_file
        self.fail_on_ids = set(str(x) for x in (fail_on_ids or []))
        self.load_fail = load_fail
        self.sleep_ms = sleep_ms
        self.memory_mb = memory_mb
        self.pad_bytes = pad_bytes
        self.nan_on_ids = set(str(x) for x in (nan_on_ids or []))
        self.loaded = False

    def load_to_gpu(self):
        if self.load_fail:
            raise RuntimeError("%s: load failed on purpose (load_fail)" % type(self).__name__)
        self.loaded = True

    def unload_from_gpu(self):
        self.loaded = False

    def memory(self):
        if self.memory_mb is None:
            return None
        return int(self.memory_mb * 1024 * 1024) if self.loaded else 0

    def _call(self, item):
        if not self.loaded:
            raise RuntimeError("process before load_to_gpu")
        iid = str(item.get("id"))
        if self.calls_file:
            with open(self.calls_file, "a") as f:
                f.write("%s\t%s\t%s\n" % (self.stage, item.get("category", ""), iid))
                f.flush()
                os.fsync(f.fileno())
        if self.sleep_ms:
            time.sleep(self.sleep_ms / 1000.0)
        if iid in self.fail_on_ids:
            raise ValueError("item %s failed on purpose (fail_on_ids)" % iid)


class Editor(_Toy):
    stage = "edit"

    def process(self, item, inputs):
        self._call(item)
        text = str(item.get("instruction", ""))
        out = {"edited": " ".join(w[::-1] for w in text.split()).upper()}
        if self.pad_bytes:
            out["pad"] = "x" * int(self.pad_bytes)
        return out


class Scorer(_Toy):
    stage = "score"

    def process(self, item, inputs):
        self._call(item)
        src = inputs.get("edit")
        if src is None and inputs:
            src = next(iter(inputs.values()))
        text = src.get("edited", "") if isinstance(src, dict) else str(src or "")
        h = hashlib.sha256(text.encode("utf-8")).digest()
        score = int.from_bytes(h[:4], "big") / 2**32
        if str(item.get("id")) in self.nan_on_ids:
            score = float("nan")
        return {"score": round(score, 6), "length": len(text)}


class TorchEditor(Editor):
    """An Editor holding a size x size torch tensor moved to/from CUDA (torch is imported here, not
    at module import, so that the pure-Python toys start fast)."""

    def __init__(self, size=1024, **kw):
        import torch

        super().__init__(**kw)
        self.torch = torch
        self.weights = torch.zeros(size, size)

    def load_to_gpu(self):
        super().load_to_gpu()
        if self.torch.cuda.is_available():
            self.weights = self.weights.to("cuda")

    def unload_from_gpu(self):
        super().unload_from_gpu()
        self.weights = self.weights.to("cpu")
        if self.torch.cuda.is_available():
            self.torch.cuda.empty_cache()

    def memory(self):
        if self.torch.cuda.is_available():
            return int(self.torch.cuda.memory_allocated())
        return super().memory()
