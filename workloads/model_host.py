#!/usr/bin/env python3
"""gpucolo model host: one model behind a JSON Lines protocol on stdin/stdout (logs on stderr).

Commands (one JSON object per line):
  {"type":"init","class_path":"pkg.mod.Class","params":{...},"paths":[dirs]}  -> {"type":"ready"}
  {"type":"load_to_gpu"}      -> {"type":"loaded","ms":..,"memory":bytes}
  {"type":"unload_from_gpu"}  -> {"type":"unloaded","ms":..}
  {"type":"process","id":..,"item":{..},"inputs":{stage: output}[,"output_dir":dir,"images":{"dir":..,"name":..}]}
                              -> {"type":"result","id":..,"outputs":{..},"ms":..}
                                 or {"type":"error","phase":"process","id":..,"message":..}
  {"type":"configure","call":{"method":..,"args":[..]|{..},"output":..},"image_inputs":"image"|"path",
   "output_dir":dir}          -> {"type":"configured"}  (optional; a "call" makes "process" call the
                                 model's own method with the mapped arguments instead of
                                 process(item, inputs); a missing method or arguments the method
                                 does not take answer {"type":"error","phase":"call","code":"EBADCALL"})
  {"type":"memory"}           -> {"type":"memory","bytes":..}
Images: an output value that is an image (PIL.Image, or a tensor / array of shape HxW, HxWxC or
CxHxW) is written as a PNG under <output_dir>/<process "images" dir>/<name>.png and replaced by
{"$image": "<path relative to output_dir>"}; such an input is handed to the model as a PIL image
(image_inputs "image", when PIL is importable) or as the file's absolute path.
  {"type":"stop"} / EOF       -> exit 0
Any failure answers {"type":"error","phase":...,"message":...}; a failed init exits 3.
"memory" is null when the model has no memory() method and CUDA is not in use (unknown).

As a stage's own `command` (for example a model in another Python environment), the model is
given on the command line and loaded before the hello; such a host needs no init message:
  /path/to/env/bin/python model_host.py --class-path pkg.mod.Class [--params '{"k": 1}'] [--path DIR]...
"""
import argparse
import importlib
import inspect
import json
import os
import struct
import sys
import time
import traceback
import zlib

_out = sys.stdout
sys.stdout = sys.stderr  # model prints must not corrupt the protocol


def send(obj):
    # allow_nan=False: NaN/Infinity are not JSON; a model output holding one fails that item
    _out.write(json.dumps(obj, allow_nan=False) + "\n")
    _out.flush()


def log(msg):
    sys.stderr.write("[model_host %d] %s\n" % (os.getpid(), msg))
    sys.stderr.flush()


def _torch():
    if "torch" not in sys.modules:
        return None
    return sys.modules["torch"]


def gpu_memory(model):
    if model is not None and hasattr(model, "memory"):
        try:
            m = model.memory()
            return None if m is None else int(m)
        except Exception:
            pass
    torch = _torch()
    try:
        if torch is not None and torch.cuda.is_available():
            return int(torch.cuda.memory_allocated())
    except Exception:
        pass
    return None


def do_load(model):
    if hasattr(model, "load_to_gpu"):
        model.load_to_gpu()
    else:
        torch = _torch()
        if torch is not None and hasattr(model, "to") and torch.cuda.is_available():
            model.to("cuda")


def do_unload(model):
    if hasattr(model, "unload_from_gpu"):
        model.unload_from_gpu()  # the model's own to("cpu") + empty_cache
    elif hasattr(model, "to"):
        model.to("cpu")
    torch = _torch()
    if torch is None:
        return
    # A safety net after the model's own unload: GPU tensors held only by reference cycles go
    # with gc, and each stage is its own process, so blocks left in torch's cache would stay
    # unusable to the next model. Swaps are rare by design; the ~20 ms of a collection is not.
    import gc

    gc.collect()
    try:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:
        pass


def err_msg(e):
    return ("%s: %s" % (type(e).__name__, e)).splitlines()[0] if str(e) else type(e).__name__


def fail(phase, e, **extra):
    """An error record for `phase` (traceback on stderr, one line in the record)."""
    traceback.print_exc()
    send(dict({"type": "error", "phase": phase, "message": err_msg(e)}, **extra))


# ---- images between stages ------------------------------------------------------------------

def _is_pil(v):
    return type(v).__module__.startswith("PIL.") and hasattr(v, "save") and hasattr(v, "mode") and hasattr(v, "size")


def _is_tensor(v):
    """torch tensors, numpy arrays and look-alikes: shape + tolist() (not plain lists)."""
    return not isinstance(v, (list, tuple, dict, str, bytes)) and hasattr(v, "shape") and hasattr(v, "tolist")


def is_image(v):
    return _is_pil(v) or (_is_tensor(v) and len(tuple(v.shape)) in (2, 3))


def _png_bytes(rows, channels):
    """rows: list of lists of ints 0..255 (width*channels each) -> PNG file bytes."""
    h = len(rows)
    w = len(rows[0]) // channels if h else 0
    color = {1: 0, 3: 2, 4: 6}[channels]
    raw = b"".join(b"\x00" + bytes(r) for r in rows)

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def _tensor_png(v):
    t = v
    for m in ("detach", "cpu"):
        if hasattr(t, m):
            t = getattr(t, m)()
    if hasattr(t, "float") and hasattr(t, "dtype") and "float" not in str(t.dtype) and "uint8" not in str(t.dtype):
        t = t.float()
    dtype = str(getattr(t, "dtype", ""))
    data = t.tolist()
    shape = tuple(t.shape)
    if len(shape) == 2:
        data = [[[x] for x in row] for row in data]
    elif len(shape) == 3 and shape[0] in (1, 3, 4) and shape[2] not in (1, 3, 4):
        c, h, w = shape  # CxHxW (torch) -> HxWxC
        data = [[[data[k][i][j] for k in range(c)] for j in range(w)] for i in range(h)]
    channels = len(data[0][0]) if data and data[0] else 1
    if channels not in (1, 3, 4):
        raise ValueError("an image tensor needs 1, 3 or 4 channels, got shape %s" % (shape,))
    flat = [x for row in data for px in row for x in px]
    scale = 255.0 if ("float" in dtype or "double" in dtype or (flat and max(flat) <= 1.0 and any(isinstance(x, float) for x in flat))) and "uint8" not in dtype else 1.0

    def px(x):
        x = x * scale
        if x != x:
            raise ValueError("an image tensor holds NaN")
        return 0 if x < 0 else 255 if x > 255 else int(round(x))

    return _png_bytes([[px(x) for p in row for x in p] for row in data], channels)


def save_image(v, out_dir, rel):
    """Writes image `v` as PNG at out_dir/rel (temp + rename) and returns the marker."""
    dest = os.path.join(out_dir, rel)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    tmp = "%s.tmp-%d" % (dest, os.getpid())
    if _is_pil(v):
        v.save(tmp, format="PNG")
    else:
        with open(tmp, "wb") as f:
            f.write(_tensor_png(v))
    os.replace(tmp, dest)
    return {"$image": rel.replace(os.sep, "/")}


def _safe(name):
    return "".join(c if (c.isalnum() or c in "-_.") else "_" for c in str(name)) or "_"


def store_images(outputs, out_dir, images):
    """Replaces image values of the outputs (top level) by markers; `images`: {"dir","name"} from gpucolo."""
    if not images or not out_dir:
        return outputs
    res = {}
    for k, v in outputs.items():
        if is_image(v):
            rel = os.path.join(images["dir"], "%s.%s.png" % (_safe(images["name"]), _safe(k)))
            res[k] = save_image(v, out_dir, rel)
        else:
            res[k] = v
    return res


def is_marker(v):
    return isinstance(v, dict) and len(v) == 1 and isinstance(v.get("$image"), str)


def open_markers(v, out_dir, how):
    """Markers in an input (top level or one level down) become a PIL image or an absolute path."""
    if is_marker(v):
        p = os.path.join(out_dir or ".", v["$image"])
        if how == "image":
            try:
                from PIL import Image
            except ImportError:
                return p
            with Image.open(p) as im:
                im.load()
                return im.copy()
        return p
    if isinstance(v, dict):
        return {k: open_markers(x, out_dir, how) if is_marker(x) else x for k, x in v.items()}
    return v


# ---- calling a model's own method -----------------------------------------------------------

class InputError(LookupError):
    """A mapped argument whose source is missing (one item's error)."""


def resolve_source(src, item, inputs):
    """"item" / "item.<field>" / "<stage>" / "<stage>.<field>" / {"value": literal}."""
    if isinstance(src, dict):
        if "from" in src:
            return as_image(resolve_source(src["from"], item, inputs), src["from"])
        return src.get("value")
    head, _, field = src.partition(".")
    if head == "item":
        base, what = item, "the item"
    else:
        if head not in inputs:
            raise InputError("input %r is not given to this stage" % head)
        base, what = inputs[head], "the output of stage %s" % head
    if not field:
        return base
    if not isinstance(base, dict) or field not in base:
        have = ", ".join(sorted(base)) if isinstance(base, dict) else type(base).__name__
        raise InputError("%s has no field %r (has: %s)" % (what, field, have))
    return base[field]


def as_image(v, what):
    """{from: .., as: image}: a base64 string (optionally a data: URL) or an image path -> PIL image."""
    if _is_pil(v):
        return v
    try:
        from PIL import Image
    except ImportError:
        raise InputError("%s as image: PIL is not installed in this python" % what)
    import base64
    import io

    if isinstance(v, str) and os.path.isfile(v):
        with Image.open(v) as im:
            im.load()
            return im.copy()
    if not isinstance(v, str):
        raise InputError("%s as image: expected a base64 string or a path, got %s" % (what, type(v).__name__))
    data = v.split(",", 1)[1] if v.startswith("data:") else v
    try:
        raw = base64.b64decode(data, validate=True)
    except Exception:
        raise InputError("%s as image: not base64 and not an existing file" % what)
    try:
        with Image.open(io.BytesIO(raw)) as im:
            im.load()
            return im.copy()
    except Exception as e:
        raise InputError("%s as image: the decoded bytes are not an image (%s)" % (what, type(e).__name__))


def check_call(model, call):
    """A one-line reason why `call` does not fit the model, or None."""
    method = call.get("method")
    fn = getattr(model, method, None) if isinstance(method, str) else None
    if not callable(fn):
        own = sorted(n for n in dir(type(model)) if not n.startswith("_") and callable(getattr(type(model), n, None)))
        return "%s has no method %r (methods: %s)" % (type(model).__name__, method, ", ".join(own) or "none")
    args = call.get("args") or []
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    try:
        if isinstance(args, dict):
            sig.bind(**{k: None for k in args})
        else:
            sig.bind(*[None] * len(args))
    except TypeError as e:
        return "%s.%s%s does not take the mapped arguments (%s): %s" % (
            type(model).__name__, method, sig, ", ".join(args) if isinstance(args, dict) else "%d positional" % len(args), e)
    return None


def call_method(model, call, item, inputs):
    fn = getattr(model, call["method"])
    args = call.get("args") or []
    if isinstance(args, dict):
        value = fn(**{k: resolve_source(s, item, inputs) for k, s in args.items()})
    else:
        value = fn(*[resolve_source(s, item, inputs) for s in args])
    if isinstance(value, dict):
        return value
    return {call.get("output") or call["method"]: value}


def make_model(class_path, params, paths):
    for p in paths or []:
        if p not in sys.path:
            sys.path.insert(0, p)
    mod_name, _, cls_name = class_path.rpartition(".")
    if not mod_name:
        raise ValueError("class_path %r is not module.Class" % class_path)
    cls = getattr(importlib.import_module(mod_name), cls_name)
    return cls(**(params or {}))


def parse_args(argv):
    ap = argparse.ArgumentParser(description="gpucolo model host (JSON Lines on stdin/stdout)")
    ap.add_argument("--class-path", help="pkg.module.Class to serve; no init message is then needed")
    ap.add_argument("--params", default="{}", help="JSON object of keyword arguments for the class")
    ap.add_argument("--path", action="append", default=[], help="directory to put on sys.path (repeatable)")
    return ap.parse_args(argv)


def main():
    args = parse_args(sys.argv[1:])
    model = None
    call = None
    out_dir = None
    image_inputs = "image"
    if args.class_path:
        try:
            params = json.loads(args.params)
            if not isinstance(params, dict):
                raise ValueError("--params must be a JSON object")
            model = make_model(args.class_path, params, args.path)
        except Exception as e:
            fail("init", e)
            sys.exit(3)
    send({"type": "hello", "pid": os.getpid()})
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            msg = json.loads(line)
        except ValueError as e:
            send({"type": "error", "phase": "protocol", "message": "bad JSON: %s" % e})
            continue
        t = msg.get("type")
        if t == "stop":
            break
        if t == "init":
            try:
                model = make_model(msg["class_path"], msg.get("params"), msg.get("paths"))
            except Exception as e:
                fail("init", e)
                sys.exit(3)
            send({"type": "ready", "pid": os.getpid()})
            continue
        if model is None:
            send({"type": "error", "phase": t or "protocol", "message": "no model: send init first"})
            continue
        if t in ("load_to_gpu", "unload_from_gpu"):
            load = t == "load_to_gpu"
            t0 = time.perf_counter()
            try:
                (do_load if load else do_unload)(model)
            except Exception as e:
                fail("load" if load else "unload", e)
                continue
            ms = (time.perf_counter() - t0) * 1000
            log("%s in %.1f ms" % ("loaded" if load else "unloaded", ms))
            send({"type": "loaded", "ms": ms, "memory": gpu_memory(model)} if load else {"type": "unloaded", "ms": ms})
        elif t == "configure":
            c = msg.get("call")
            why = check_call(model, c) if c else None
            if why:
                send({"type": "error", "phase": "call", "code": "EBADCALL", "message": why})
                continue
            call = c
            out_dir = msg.get("output_dir") or out_dir
            image_inputs = msg.get("image_inputs") or image_inputs
            send({"type": "configured"})
        elif t == "process":
            t0 = time.perf_counter()
            try:
                item = msg.get("item") or {}
                od = msg.get("output_dir") or out_dir
                inputs = {k: open_markers(v, od, image_inputs) for k, v in (msg.get("inputs") or {}).items()}
                if call:
                    outputs = call_method(model, call, item, inputs)
                else:
                    outputs = model.process(item, inputs)
                    if not isinstance(outputs, dict):
                        outputs = {"value": outputs}
                outputs = store_images(outputs, od, msg.get("images"))
                send({"type": "result", "id": msg.get("id"), "outputs": outputs, "ms": (time.perf_counter() - t0) * 1000})
            except Exception as e:
                fail("process", e, id=msg.get("id"))
        elif t == "memory":
            send({"type": "memory", "bytes": gpu_memory(model)})
        else:
            send({"type": "error", "phase": "protocol", "message": "unknown command %r" % t})
    sys.exit(0)


if __name__ == "__main__":
    main()
