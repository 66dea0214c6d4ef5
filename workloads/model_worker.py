#!/usr/bin/python3
"""gpucolo model worker: runs one PyTorch model on request, for the torch scenario driver.

Protocol: JSON Lines. Commands on stdin, records on stdout (one JSON object per line, each with
"type"); every log line goes to stderr. Times are time.monotonic_ns() (CLOCK_MONOTONIC, the clock
behind Node's process.hrtime.bigint()), so the orchestrator can subtract its own intended times.

  worker  -> {"type":"hello","pid":..,"python":".."}                      at once, before torch
  driver  -> {"type":"load","model":..,"batch":..,"input":[..]|null,"mode":"inference"|"train",
              "device":"auto"|"cpu"|"cuda[:N]","dtype":..,"threads":..|null,
              "streamPriority":"high"|"low"|null,"gate":"/dev/shm/..."|null,"seed":..}
  worker  -> {"type":"ready","device":"cpu"|"cuda:N","deviceName":..,"torch":..,"hip":..|null,
              "memoryBytes":..,"streamPriority":-1|0|null,"cuCount":..|null,"loadMs":..,
              "input":[..],"notes":[..]}
          or {"type":"error","phase":"load","code":"ENOTORCH"|"ENOMODEL"|"EBADCONFIG"|"ENODEVICE"|
              "ELOAD","message":..} and exit 3 (ENOTORCH) or 4 (every other load error)
  driver  -> {"type":"request","id":N,"intendedNs":T}
  worker  -> {"type":"done","id":N,"startNs":..,"endNs":..}
          or {"type":"error","phase":"request","id":N,"message":..}   (the worker goes on)
  driver  -> {"type":"stop"}  (or EOF)
  worker  -> {"type":"stats","requests":..,"errors":..,"dropped":..,"gatePauses":..,
              "gatePausedNs":..} and exit 0

Requests run one at a time in arrival order: a reader thread puts every command on a FIFO queue
and the main thread works through it, so open-loop requests that arrive while a batch runs wait
in the queue (and the wait shows up as startNs - intendedNs). "stop" is seen by the reader thread
at once: requests still queued behind it are dropped (counted in stats.dropped), the one running
finishes first. SIGTERM ends the worker at once (Python's default action, kept on purpose).

Several models in one process (one CUDA/HIP context, priority streams side by side): see
model_group.py, which runs this file's Worker once per model.

Gate (the cross-process "gate" mechanism): with "gate" set to the path of a 1-byte file, the file
is mmapped and every leaf module gets a forward pre-hook that, while byte 0 is nonzero, sleeps
~50 us and looks again. The orchestrator sets the byte while high-priority requests are in
flight, so a low-priority model stops between layers. One pause = one hook call that had to wait.
On a GPU the hook holds back the *launch* of the next layer; kernels already queued still run.

Inputs (batch dimension excluded; override with "input"):
  images (resnet*, mobilenet_v2, efficientnet_b0, vit_b_16, tiny-cnn): [3,224,224]
  deeplabv3_*: [3,520,520] (torchvision's reference eval size; heavy on CPU, pass a smaller
    "input" such as [3,256,256] there)
  whisper-base: [80,3000] log-mel frames (30 s); [samples] is also accepted and becomes
    [80, ceil(samples/160)] frames (16 kHz, hop 160), the encoder's positions resized to fit
  bert-base-uncased, gpt2: [128] token ids
  tiny-mlp: [256]
Train mode: one SGD step (lr 1e-3) per request on a synthetic target fixed at load time:
cross-entropy against random class labels for [batch, classes] outputs, else MSE against a
random tensor of the output's shape.
"""
import json
import os
import queue
import sys
import threading
import time

_out_lock = threading.Lock()


def emit(rec):
    line = json.dumps(rec, separators=(",", ":"))
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def log(msg):
    sys.stderr.write(f"[model_worker {os.getpid()}] {msg}\n")
    sys.stderr.flush()


class LoadError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


TORCHVISION = {
    "resnet18", "resnet50", "mobilenet_v2", "vit_b_16",
    "deeplabv3_resnet50", "deeplabv3_mobilenet_v3_large", "efficientnet_b0",
}
TRANSFORMERS = {"whisper-base", "bert-base-uncased", "gpt2"}
BUILTIN = {"tiny-cnn", "tiny-mlp"}
MODELS = sorted(TORCHVISION | TRANSFORMERS | BUILTIN)


def default_input(model):
    if model.startswith("deeplabv3"):
        return [3, 520, 520]
    if model == "whisper-base":
        return [80, 3000]
    if model in ("bert-base-uncased", "gpt2"):
        return [128]
    if model == "tiny-mlp":
        return [256]
    return [3, 224, 224]


def build_builtin(torch, name, shape):
    nn = torch.nn
    if name == "tiny-mlp":
        if len(shape) != 1:
            raise LoadError("EBADCONFIG", f"tiny-mlp takes a 1-d input ([features]), got {shape}")
        return nn.Sequential(nn.Linear(shape[0], 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    # tiny-cnn: three 3x3 conv blocks, global pooling, a linear classifier (any HxW works)
    if len(shape) != 3:
        raise LoadError("EBADCONFIG", f"tiny-cnn takes a [channels,height,width] input, got {shape}")
    c = shape[0]
    return nn.Sequential(
        nn.Conv2d(c, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(64, 10),
    )


def build_torchvision(name):
    try:
        import torchvision  # noqa: F401
        from torchvision import models
        from torchvision.models import segmentation
    except ImportError as e:
        raise LoadError("ENOMODEL", f"{name} needs torchvision, which is not installed ({e}): "
                        "apt-get install python3-torchvision (or pip install torchvision)")
    if name.startswith("deeplabv3"):
        # weights_backbone=None too: its default would download ImageNet backbone weights
        return getattr(segmentation, name)(weights=None, weights_backbone=None, aux_loss=False)
    return getattr(models, name)(weights=None)


def build_transformers(name, shape):
    try:
        import transformers
    except ImportError as e:
        raise LoadError("ENOMODEL", f"{name} needs the transformers package, which is not installed ({e}): "
                        "pip install transformers (models are built from a config, nothing is downloaded)")
    if name == "whisper-base":
        frames = shape[-1]
        if frames % 2:
            raise LoadError("EBADCONFIG", f"whisper-base needs an even number of mel frames, got {frames}")
        # whisper-base dimensions (the library's default config is whisper-tiny)
        cfg = transformers.WhisperConfig(
            d_model=512, encoder_layers=6, decoder_layers=6, encoder_attention_heads=8,
            decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048,
            num_mel_bins=shape[0], max_source_positions=frames // 2)
        return transformers.WhisperForConditionalGeneration(cfg), cfg.vocab_size
    if name == "bert-base-uncased":
        cfg = transformers.BertConfig()  # the defaults are bert-base-uncased's
        if shape[0] > cfg.max_position_embeddings:
            raise LoadError("EBADCONFIG", f"bert-base-uncased takes at most {cfg.max_position_embeddings} tokens, got {shape[0]}")
        return transformers.BertModel(cfg), cfg.vocab_size
    cfg = transformers.GPT2Config()  # the defaults are gpt2's (124M)
    if shape[0] > cfg.n_positions:
        raise LoadError("EBADCONFIG", f"gpt2 takes at most {cfg.n_positions} tokens, got {shape[0]}")
    return transformers.GPT2LMHeadModel(cfg), cfg.vocab_size


def main_tensor(torch, out):
    """The tensor a model's output is judged by (logits, segmentation map, hidden state)."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict) and "out" in out:
        return out["out"]
    for key in ("logits", "last_hidden_state"):
        v = getattr(out, key, None)
        if isinstance(v, torch.Tensor):
            return v
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    if isinstance(out, dict):
        for v in out.values():
            if isinstance(v, torch.Tensor):
                return v
    raise TypeError(f"cannot find an output tensor in {type(out).__name__}")


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or None


class Worker:
    def __init__(self):
        self.requests = 0
        self.errors = 0
        self.dropped = 0
        self.gate_pauses = 0
        self.gate_paused_ns = 0
        self.gate_map = None
        self.stream = None
        self.stopping = threading.Event()
        # merged into every run-time record (model_group.py sets {"task": name})
        self.tag = {}

    # ---- load ------------------------------------------------------------------------------

    def load(self, cmd):
        t_start = time.monotonic()
        notes = []
        model_name = cmd.get("model")
        if model_name not in MODELS:
            raise LoadError("EBADCONFIG", f"unknown model {json.dumps(model_name)} (known: {', '.join(MODELS)})")
        batch = int(cmd.get("batch") or 1)
        mode = cmd.get("mode") or "inference"
        if mode not in ("inference", "train"):
            raise LoadError("EBADCONFIG", f"mode is inference or train, got {json.dumps(mode)}")
        shape = [int(x) for x in (cmd.get("input") or default_input(model_name))]
        if model_name == "whisper-base" and len(shape) == 1:
            shape = [80, -(-shape[0] // 160)]  # audio samples at 16 kHz -> log-mel frames
            notes.append(f"whisper input: {cmd['input'][0]} samples -> {shape[1]} mel frames")

        try:
            import torch
        except ImportError as e:
            raise LoadError("ENOTORCH", f"cannot import torch with {sys.executable}: {e}")
        self.torch = torch
        seed = cmd.get("seed")
        torch.manual_seed(int(seed) if seed is not None else 0)
        if cmd.get("threads"):
            torch.set_num_threads(int(cmd["threads"]))
        notes.append(f"torch threads {torch.get_num_threads()}")

        # device
        want = cmd.get("device") or "auto"
        has_cuda = torch.cuda.is_available()
        if want == "auto":
            want = "cuda" if has_cuda else "cpu"
        if want.startswith("cuda"):
            if not has_cuda:
                raise LoadError("ENODEVICE", f"device {want} asked for, but torch {torch.__version__} sees no GPU "
                                "(CPU-only build or no device)")
            idx = int(want.split(":")[1]) if ":" in want else torch.cuda.current_device()
            if idx >= torch.cuda.device_count():
                raise LoadError("ENODEVICE", f"device {want} asked for, but torch sees {torch.cuda.device_count()} GPU(s)")
            device = torch.device("cuda", idx)
            torch.cuda.set_device(device)
        elif want == "cpu":
            device = torch.device("cpu")
        else:
            raise LoadError("EBADCONFIG", f"device is auto, cpu, cuda or cuda:N, got {json.dumps(want)}")
        self.device = device

        dtypes = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
        dtype_name = cmd.get("dtype") or "float32"
        if dtype_name not in dtypes:
            raise LoadError("EBADCONFIG", f"dtype is one of {', '.join(dtypes)}, got {json.dumps(dtype_name)}")
        dtype = dtypes[dtype_name]

        # model and input
        vocab = None
        if model_name in BUILTIN:
            model = build_builtin(torch, model_name, shape)
        elif model_name in TORCHVISION:
            model = build_torchvision(model_name)
        else:
            if model_name == "whisper-base" and len(shape) != 2:
                raise LoadError("EBADCONFIG", f"whisper-base takes [mel bins, frames] or [samples], got {shape}")
            if model_name != "whisper-base" and len(shape) != 1:
                raise LoadError("EBADCONFIG", f"{model_name} takes [tokens], got {shape}")
            model, vocab = build_transformers(model_name, shape)
        model = model.to(device=device, dtype=dtype)
        model.train(mode == "train")
        self.model = model
        self.model_name = model_name
        self.mode = mode

        gen = torch.Generator().manual_seed(1234)
        if model_name in ("bert-base-uncased", "gpt2"):
            ids = torch.randint(0, vocab, [batch] + shape, generator=gen).to(device)
            self.inputs = {"input_ids": ids}
        elif model_name == "whisper-base":
            feats = torch.randn([batch] + shape, generator=gen).to(device=device, dtype=dtype)
            dec = torch.randint(0, vocab, (batch, 4), generator=gen).to(device)
            self.inputs = {"input_features": feats, "decoder_input_ids": dec}
        else:
            self.inputs = {"x": torch.randn([batch] + shape, generator=gen).to(device=device, dtype=dtype)}

        # stream priority (CUDA and ROCm: torch.cuda.Stream; -1 = the greatest priority torch
        # exposes on every version, 0 = the default)
        applied = None
        want_prio = cmd.get("streamPriority")
        if want_prio is not None:
            if device.type == "cuda":
                applied = -1 if want_prio == "high" else 0
                self.stream = torch.cuda.Stream(device=device, priority=applied)
                notes.append(f"stream priority {applied} ({want_prio})")
            else:
                notes.append("stream priority not applicable on cpu")

        # gate
        gate = cmd.get("gate")
        if gate:
            import mmap
            fd = os.open(gate, os.O_RDONLY)
            try:
                self.gate_map = mmap.mmap(fd, 1, prot=mmap.PROT_READ)
            finally:
                os.close(fd)
            leaves = [m for m in model.modules() if not any(True for _ in m.children())]
            for m in leaves:
                m.register_forward_pre_hook(self._gate_hook)
            notes.append(f"gate on {len(leaves)} leaf modules")

        # warm-up pass (also surfaces dtype/device problems at load, not at the first request);
        # in train mode the first forward also fixes the synthetic target's shape
        try:
            if mode == "train":
                self.optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
                with torch.no_grad():
                    out = main_tensor(torch, self._forward()).detach()
                if out.dim() == 2:
                    self.target = ("ce", torch.randint(0, out.shape[1], (out.shape[0],), generator=gen).to(device))
                else:
                    self.target = ("mse", torch.randn(out.shape, generator=gen).to(device=device, dtype=out.dtype))
            self.run_batch()
        except Exception as e:  # noqa: BLE001
            if "Expected more than 1 value per channel when training" in str(e):
                raise LoadError("EBADCONFIG", f"{model_name} cannot train with batch {batch}: a BatchNorm layer after "
                                "global pooling needs more than one value per channel; use batch >= 2")
            raise LoadError("ELOAD", f"the warm-up pass of {model_name} ({dtype_name} on {device}) failed: "
                            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")

        if device.type == "cuda":
            mem = torch.cuda.memory_allocated(device)
            props = torch.cuda.get_device_properties(device)
            dev_name, cu_count = props.name, props.multi_processor_count
        else:
            mem = sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))
            dev_name, cu_count = cpu_name(), None
        return {
            "type": "ready",
            "device": str(device) if device.type == "cpu" else f"cuda:{device.index}",
            "deviceName": dev_name,
            "torch": torch.__version__,
            "hip": getattr(torch.version, "hip", None),
            "memoryBytes": int(mem),
            "streamPriority": applied,
            "cuCount": cu_count,
            "input": shape,
            "loadMs": round((time.monotonic() - t_start) * 1000, 1),
            "notes": notes,
        }

    def _gate_hook(self, module, args):
        g = self.gate_map
        if g[0] == 0:
            return None
        t = time.monotonic_ns()
        while g[0] != 0:
            time.sleep(50e-6)
        self.gate_pauses += 1
        self.gate_paused_ns += time.monotonic_ns() - t
        return None

    # ---- requests ----------------------------------------------------------------------------

    def _forward(self):
        if "x" in self.inputs:
            return self.model(self.inputs["x"])
        return self.model(**self.inputs)

    def run_batch(self):
        torch = self.torch
        ctx = torch.cuda.stream(self.stream) if self.stream is not None else _nullctx()
        with ctx:
            if self.mode == "train":
                self.optimizer.zero_grad(set_to_none=True)
                out = main_tensor(torch, self._forward())
                kind, target = self.target
                if kind == "ce":
                    loss = torch.nn.functional.cross_entropy(out.float(), target)
                else:
                    loss = torch.nn.functional.mse_loss(out, target)
                loss.backward()
                self.optimizer.step()
            else:
                with torch.inference_mode():
                    self._forward()
            if self.device.type == "cuda":
                (self.stream or torch.cuda.current_stream(self.device)).synchronize()

    def serve(self, q):
        while True:
            cmd = q.get()
            if cmd is None:
                break
            if self.stopping.is_set():
                if cmd.get("type") == "request":
                    self.dropped += 1
                break
            kind = cmd.get("type")
            if kind == "stop":
                break
            if kind != "request":
                log(f"ignored command {json.dumps(cmd)[:200]}")
                continue
            rid = cmd.get("id")
            start = time.monotonic_ns()
            try:
                self.run_batch()
            except Exception as e:  # noqa: BLE001
                self.errors += 1
                msg = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                emit({**self.tag, "type": "error", "phase": "request", "id": rid, "message": msg})
                continue
            end = time.monotonic_ns()
            self.requests += 1
            emit({**self.tag, "type": "done", "id": rid, "startNs": start, "endNs": end})
        # whatever is still queued was never started
        while True:
            try:
                cmd = q.get_nowait()
            except queue.Empty:
                break
            if cmd and cmd.get("type") == "request":
                self.dropped += 1


def stats_record(w):
    return {**w.tag, "type": "stats", "requests": w.requests, "errors": w.errors, "dropped": w.dropped,
            "gatePauses": w.gate_pauses, "gatePausedNs": w.gate_paused_ns}


class _nullctx:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def commands(stream):
    """The JSON object commands of a JSON Lines stream; a line that is not one is reported and skipped."""
    for raw in stream:
        raw = raw.strip()
        if not raw:
            continue
        try:
            cmd = json.loads(raw)
            if not isinstance(cmd, dict):
                raise ValueError("not an object")
        except ValueError as e:
            emit({"type": "error", "phase": "protocol", "message": f"bad command line ({e}): {raw[:200]}"})
            continue
        yield cmd


def reader(q, stopping):
    """stdin -> queue; "stop" also raises the flag so that queued requests are dropped."""
    for cmd in commands(sys.stdin):
        if cmd.get("type") == "stop":
            stopping.set()
        q.put(cmd)
    q.put(None)  # EOF


def main():
    emit({"type": "hello", "pid": os.getpid(), "python": sys.version.split()[0], "executable": sys.executable})
    w = Worker()
    q = queue.Queue()
    threading.Thread(target=reader, args=(q, w.stopping), daemon=True).start()

    cmd = q.get()
    if cmd is None:
        return 0
    if cmd.get("type") != "load":
        emit({"type": "error", "phase": "load", "code": "EBADCONFIG", "message": f"the first command must be load, got {cmd.get('type')!r}"})
        return 4
    try:
        emit(w.load(cmd))
    except LoadError as e:
        log(f"load failed: {e.code}: {e}")
        emit({"type": "error", "phase": "load", "code": e.code, "message": str(e)})
        return 3 if e.code == "ENOTORCH" else 4
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        emit({"type": "error", "phase": "load", "code": "ELOAD", "message": f"{type(e).__name__}: {e}"})
        return 4
    log(f"ready: {w.model_name} {w.mode} on {w.device}")

    w.serve(q)
    emit(stats_record(w))
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # os._exit: no waiting for the daemon reader thread or torch's atexit work
    os._exit(code)
