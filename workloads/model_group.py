#!/usr/bin/python3
"""gpucolo model group: several PyTorch models in ONE process, for the torch scenario driver's
in-process form (torchProcess "single").

Why: a CUDA stream priority only orders work within one context. The per-model form (one
model_worker.py process per task) gives every model its own process and context, so on NVIDIA its
stream priorities compare nothing unless MPS runs; here every model of a phase lives in this one
process, shares its one CUDA/HIP context per device, and runs on its own torch.cuda.Stream at its
own priority, so HP kernels are ordered ahead of LP kernels by the GPU's scheduler.

Protocol: model_worker.py's (JSON Lines, CLOCK_MONOTONIC stamps), with a "task" field on every
command and record that concerns one model:

  worker  -> {"type":"hello","pid":..,"python":..,"group":true}
  driver  -> {"type":"load","task":"hp", ...model_worker's load fields...}     one per model, in turn
  worker  -> {"type":"ready","task":"hp", ...model_worker's ready fields...}
          or {"type":"error","phase":"load","task":"hp","code":..,"message":..} and exit 3/4
  driver  -> {"type":"request","task":"hp","id":N,"intendedNs":T}
  worker  -> {"type":"done","task":"hp","id":N,"startNs":..,"endNs":..}
          or {"type":"error","phase":"request","task":"hp","id":N,"message":..}
  driver  -> {"type":"stop"}  (or EOF)
  worker  -> {"type":"stats","task":..,...} for every model, then exit 0

Each model has its own request queue and thread (model_worker.Worker.serve), so one model's
requests never wait behind another's in Python: requests of one model still run one at a time, in
arrival order. The threads share one interpreter: their Python-side work (building the kernel
launches) takes turns on the GIL, which torch releases inside its operators; the kernels of the
models run side by side on the device. torch's intra-op thread count is per process (the last
model's "threads" wins); the ready notes say so.
"""
import json
import os
import queue
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_worker as mw  # noqa: E402


def reader(main_q, models, lock):
    """stdin -> the main queue (load, stop) or a model's queue (request)."""
    for cmd in mw.commands(sys.stdin):
        kind = cmd.get("type")
        if kind == "request":
            task = cmd.get("task")
            with lock:
                m = models.get(task)
            if m is None:
                mw.emit({"type": "error", "phase": "request", "task": task, "id": cmd.get("id"),
                         "message": f"no model loaded for task {json.dumps(task)}"})
                continue
            m[1].put(cmd)
            continue
        if kind == "stop":
            with lock:
                for w, q, _t in models.values():
                    w.stopping.set()
                    q.put(cmd)
        main_q.put(cmd)
    main_q.put(None)  # EOF
    with lock:
        for _w, q, _t in models.values():
            q.put(None)


def serve(w, q):
    torch = getattr(w, "torch", None)
    if torch is not None and w.device.type == "cuda":
        # the current device is per thread: the model's, not device 0
        torch.cuda.set_device(w.device)
    w.serve(q)


def main():
    mw.emit({"type": "hello", "pid": os.getpid(), "python": sys.version.split()[0], "executable": sys.executable, "group": True})
    main_q = queue.Queue()
    models = {}  # task -> (Worker, queue, thread)
    lock = threading.Lock()
    threading.Thread(target=reader, args=(main_q, models, lock), daemon=True).start()
    order = []
    while True:
        cmd = main_q.get()
        if cmd is None or cmd.get("type") == "stop":
            break
        if cmd.get("type") != "load":
            mw.log(f"ignored command {json.dumps(cmd)[:200]}")
            continue
        task = cmd.get("task")
        if not isinstance(task, str) or not task:
            mw.emit({"type": "error", "phase": "load", "task": task, "code": "EBADCONFIG", "message": "load needs a task name"})
            return 4
        with lock:
            known = task in models
        if known:
            mw.emit({"type": "error", "phase": "load", "task": task, "code": "EBADCONFIG", "message": f"task {task} is already loaded"})
            return 4
        w = mw.Worker()
        w.tag = {"task": task}
        try:
            ready = w.load(cmd)
        except mw.LoadError as e:
            mw.log(f"{task}: load failed: {e.code}: {e}")
            mw.emit({"type": "error", "phase": "load", "task": task, "code": e.code, "message": str(e)})
            return 3 if e.code == "ENOTORCH" else 4
        except Exception as e:  # noqa: BLE001
            import traceback
            traceback.print_exc()
            mw.emit({"type": "error", "phase": "load", "task": task, "code": "ELOAD", "message": f"{type(e).__name__}: {e}"})
            return 4
        ready["task"] = task
        ready["process"] = "single"
        if order:
            ready["notes"].append(f"shares process {os.getpid()} (one context per device) with {', '.join(order)}; "
                                  "torch threads are per process")
        q = queue.Queue()
        t = threading.Thread(target=serve, args=(w, q), name=f"model:{task}", daemon=True)
        with lock:
            models[task] = (w, q, t)
        order.append(task)
        t.start()
        mw.emit(ready)
        mw.log(f"{task}: ready: {w.model_name} {w.mode} on {w.device}")
    # stop or EOF: every model's queue got it too (requests behind it are dropped); let the running ones finish
    with lock:
        entries = [models[t] for t in order]
        for w, q, _t in entries:
            w.stopping.set()
            q.put(None)
    for _w, _q, t in entries:
        t.join()
    for w, _q, _t in entries:
        mw.emit(mw.stats_record(w))
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)
