#!/usr/bin/env python3
"""gpucolo model host: one model behind a JSON Lines protocol on stdin/stdout (logs on stderr).

Commands (one JSON object per line):
  {"type":"init","class_path":"pkg.mod.Class","params":{...},"paths":[dirs]}  -> {"type":"ready"}
  {"type":"load_to_gpu"}      -> {"type":"loaded","ms":..,"memory":bytes}
  {"type":"unload_from_gpu"}  -> {"type":"unloaded","ms":..}
  {"type":"process","id":..,"item":{..},"inputs":{stage: output}}
                              -> {"type":"result","id":..,"outputs":{..},"ms":..}
                                 or {"type":"error","phase":"process","id":..,"message":..}
  {"type":"memory"}           -> {"type":"memory","bytes":..}
  {"type":"stop"} / EOF       -> exit 0
Any failure answers {"type":"error","phase":...,"message":...}; a failed init exits 3.
"memory" is null when the model has no memory() method and CUDA is not in use (unknown).

As a stage's own `command` (for example a model in another Python environment), the model is
given on the command line and loaded before the hello; such a host needs no init message:
  /path/to/env/bin/python model_host.py --class-path pkg.mod.Class [--params '{"k": 1}'] [--path DIR]...
"""
import argparse
import importlib
import json
import os
import sys
import time
import traceback

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
        elif t == "process":
            t0 = time.perf_counter()
            try:
                outputs = model.process(msg.get("item") or {}, msg.get("inputs") or {})
                if not isinstance(outputs, dict):
                    outputs = {"value": outputs}
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
