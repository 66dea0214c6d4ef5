#!/usr/bin/python3
"""gpucolo distributed data-parallel training: DDP vs hand-written all-reduce vs parameter server.

    /usr/bin/python3 workloads/dist_train.py --method ddp|allreduce|ps [--ps-impl naive|flat]
        [--ps-topology colocated|dedicated]
        [--bucket-mb F] [--model smallcnn|<torchvision name>] [--pretrained PATH]
        [--data-dir DIR | --synthetic] [--image-size 32] [--num-classes N] [--train-samples N]
        [--val-samples N] [--epochs 1] [--batch-size 32] [--workers 0] [--lr 0.02]
        [--momentum 0.9] [--backend auto|nccl|gloo] [--seed 0] [--max-steps 0] [--threads 1]
        [--timeout-s 120] --out FILE [--dump-params FILE]

Ranks come from the environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), as set by
torchrun or by gpucolo's own launcher; init_process_group(backend, init_method="env://",
timeout=--timeout-s). Without WORLD_SIZE the script runs as a single process (rank 0 of 1) on a
free local port. Backend auto = nccl when CUDA is available, else gloo; the device is
cuda:LOCAL_RANK with nccl, else cpu.

Methods (all synchronous SGD with the same optimizer, init, data order and global batch; they
differ only in how gradients move):
  ddp        torch.nn.parallel.DistributedDataParallel (default 25 MB buckets; all-reduce
             overlapped with backward, so no comm time is reported).
  allreduce  after backward, every gradient is divided by the world size and summed with
             dist.all_reduce: one call per parameter (--bucket-mb 0) or flattened
             (torch._utils._flatten_dense_tensors) into buckets of --bucket-mb MB filled in
             reverse parameter order like DDP's (default 25). Comm time = perf_counter around the
             whole sync section (after torch.cuda.synchronize() on GPU); with gloo it includes
             waiting for the slower rank.
  ps         parameter server. Rank 0 holds the authoritative parameters and the optimizer AND
             computes like every other rank, so all ranks are workers (num_workers = world size)
             and the global batch equals ddp/allreduce's: results are directly comparable. Each
             step: pull (workers get rank 0's parameters), forward/backward on every rank, push
             (gradients / world size to rank 0), rank 0 sums and steps.
             --ps-impl naive: per-parameter dist.send / dist.recv for pull and push (rank 0 serves
             the workers one after another), as such code is typically first written.
             --ps-impl flat (default): pull = dist.broadcast of the flattened parameters from
             rank 0, push = dist.reduce(SUM, dst=0) of the flattened gradients.
             Pull and push are timed separately. Needs WORLD_SIZE >= 2.
             --ps-topology colocated (default): as above, rank 0 serves and computes.
             --ps-topology dedicated: the design notes' layout (their ps_train.py): rank 0 only
             serves (no forward/backward, no data), ranks 1..N-1 are the workers
             (num_workers = world size - 1), each takes its --batch-size slice of a global batch
             of --batch-size x num_workers, gradients are averaged over the workers. Its
             throughput counts the workers' samples only, so at equal step time it is
             (N-1)/N of a layout where every rank computes.

Equivalence: with the same --seed, data and a model without BatchNorm (smallcnn), ddp, allreduce
(any bucket size) and ps (both impls) give the same parameters after N steps up to float rounding
(on CPU/gloo with 2 ranks they are bit-identical: every method computes g0/2 + g1/2). Check with
--dump-params (rank 0 saves the final flattened parameter vector with torch.save) and
tests/test_dist_equivalence.py. A single process with --batch-size = the global batch agrees to
~1e-6 relative (summation order). BatchNorm models (resnet18, ...) normalise over each rank's own
shard and keep per-rank running statistics (DDP broadcasts rank 0's buffers each forward, the
others do not): the distributed methods still agree with each other at the same world size and
per-rank batch (resnet18, 2 ranks, CPU: bit-identical), but not with a single process or another
world size (use SyncBatchNorm for that), so keep the exact-equivalence check on smallcnn. cuDNN /
NCCL reductions are not bitwise deterministic either, so on GPUs expect agreement to ~1e-5
relative after a few steps, not exact equality.

Data: --synthetic (default without --data-dir; generated in-process from --seed, see
dist_common.py) or --data-dir DIR with ImageNet-style DIR/train and DIR/val class folders
(--train-samples / --val-samples, when given, take a seeded subset; otherwise all images). Every
epoch has floor(train_samples / global_batch) steps (capped by --max-steps); rank r takes its
--batch-size slice of every global batch. Rank 0 evaluates the whole val set after each epoch
(the other ranks wait at a barrier; --val-samples 0 skips evaluation).

Output (rank 0, --out written atomically: temp file + fsync + rename), JSON:
  {"schema": "gpucolo.distributed-result/1", "method", "ps_impl" (null unless ps),
   "bucket_mb" (null unless allreduce), "model", "backend", "device", "world_size",
   "ps_topology" (null unless ps), "num_workers" (ps: the computing ranks: world size when
   colocated, world size - 1 when dedicated; null otherwise), "batch_size" (per process), "global_batch",
   "lr", "momentum", "seed", "torch", "start_time", "end_time" (ISO 8601 UTC; start = process
   start), "epochs": [{"epoch" (1-based), "steps", "train_loss", "train_accuracy" (percent),
   "train_time" (s, max over ranks), "train_throughput" (samples/s over all ranks),
   "avg_batch_time" (s), "steady_throughput" (samples/s after "warmup_steps" steps),
   "warmup_steps", "avg_compute_time" (s/step, step time minus comm, max over ranks),
   "val_loss", "val_accuracy" (percent; null with --val-samples 0), "avg_comm_time" (allreduce;
   s/step, per-step max over ranks), "avg_comm_time_pull", "avg_comm_time_push" (ps)}],
   "summary": {"avg_train_throughput", "avg_train_time_per_epoch", "best_val_accuracy",
   "final_train_accuracy", "avg_comm_time", "avg_comm_time_pull", "avg_comm_time_push"},
   "all_losses": [global mean loss of every step], "steps": total steps,
   "timing": {"import_s", "init_s" (rendezvous), "setup_s" (process start -> first step)}, ...}
  Fields that do not apply are null. stdout (rank 0): one line per epoch, e.g.
  "epoch 1: loss 2.2990 acc 14.8% val_loss 2.2500 val_acc 19.9% 1234 samples/s comm 12.3 ms".

Exit codes: 0 done; 2 bad arguments or unusable inputs (unknown model, missing --pretrained file,
--data-dir without train/ or val/, ps with WORLD_SIZE 1, fewer samples than one global batch,
nccl without CUDA) -- all checked before the rendezvous, so every rank exits 2 at once; 1 any
other error (after the rendezvous, e.g. a peer that died), 130 on Ctrl-C. Every error prints one
line "dist_train rank R: <error>" on stderr (DIST_TRAIN_DEBUG=1 adds the traceback). torch is
imported only after the arguments are checked (import torch + torchvision: ~2 s on a small CPU
host), and OMP_NUM_THREADS / OPENBLAS_NUM_THREADS default to --threads.
"""
import argparse
import datetime
import json
import os
import socket
import sys
import time

SCHEMA = "gpucolo.distributed-result/1"
T0_WALL = time.time()
T0 = time.perf_counter()


class UsageError(Exception):
    """Bad arguments or unusable inputs: exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line "dist_train rank R: error: ..." and exit 2, not usage
        raise UsageError(f"{message} (see --help)")


def parse_args(argv=None):
    p = _Parser(prog="dist_train.py",
                                description="gpucolo distributed training (ddp / allreduce / ps)")
    p.add_argument("--method", required=True, choices=["ddp", "allreduce", "ps"])
    p.add_argument("--ps-impl", choices=["naive", "flat"], default="flat")
    p.add_argument("--ps-topology", choices=["colocated", "dedicated"], default="colocated",
                   help="ps: colocated = rank 0 serves and computes; dedicated = rank 0 only serves")
    p.add_argument("--bucket-mb", type=float, default=25.0,
                   help="allreduce bucket size in MB (0 = one all_reduce per parameter)")
    p.add_argument("--model", default="smallcnn")
    p.add_argument("--pretrained", default=None, help="local .pth state_dict")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data-dir", default=None)
    src.add_argument("--synthetic", action="store_true")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--num-classes", type=int, default=None,
                   help="default 10 (synthetic) or the number of class folders (--data-dir)")
    p.add_argument("--train-samples", type=int, default=None, help="default 4096 (synthetic)")
    p.add_argument("--val-samples", type=int, default=None, help="default 512 (synthetic)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32, help="per process")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    p.add_argument("--lr", type=float, default=0.02)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--backend", choices=["auto", "nccl", "gloo"], default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=int, default=0, help="steps per epoch cap (0 = all)")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--timeout-s", type=float, default=120.0, help="collective/rendezvous timeout")
    p.add_argument("--out", required=True)
    p.add_argument("--dump-params", default=None)
    return p.parse_args(argv)


def rank_env():
    """(rank, world, local_rank) from the environment; standalone defaults for a single process."""
    def num(name, default):
        v = os.environ.get(name)
        if v is None or v == "":
            return default
        try:
            return int(v)
        except ValueError:
            raise UsageError(f"{name}={v!r} is not an integer") from None

    world = num("WORLD_SIZE", 1)
    rank = num("RANK", 0)
    local = num("LOCAL_RANK", rank if world > 1 and "LOCAL_RANK" not in os.environ else 0)
    if world < 1 or not 0 <= rank < world or local < 0:
        raise UsageError(f"bad rank environment: RANK={rank} WORLD_SIZE={world} LOCAL_RANK={local}")
    if world == 1:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        if not os.environ.get("MASTER_PORT"):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                os.environ["MASTER_PORT"] = str(s.getsockname()[1])
    else:
        missing = [n for n in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(n)]
        if missing:
            raise UsageError(f"WORLD_SIZE={world} but {' and '.join(missing)} not set")
    os.environ["RANK"], os.environ["WORLD_SIZE"] = str(rank), str(world)
    return rank, world, local


def check_args(a, world):
    """Checks that need no torch (fast exit 2 on every rank)."""
    pos = {"--epochs": a.epochs, "--batch-size": a.batch_size, "--image-size": a.image_size,
           "--threads": a.threads}
    for k, v in pos.items():
        if v < 1:
            raise UsageError(f"{k} must be >= 1, got {v}")
    for k, v in {"--workers": a.workers, "--max-steps": a.max_steps,
                 "--bucket-mb": a.bucket_mb}.items():
        if v < 0:
            raise UsageError(f"{k} must be >= 0, got {v}")
    if a.num_classes is not None and a.num_classes < 2:
        raise UsageError(f"--num-classes must be >= 2, got {a.num_classes}")
    if a.train_samples is not None and a.train_samples < 1:
        raise UsageError(f"--train-samples must be >= 1, got {a.train_samples}")
    if a.val_samples is not None and a.val_samples < 0:
        raise UsageError(f"--val-samples must be >= 0, got {a.val_samples}")
    if not a.lr > 0 or a.momentum < 0:
        raise UsageError("--lr must be > 0 and --momentum >= 0")
    if not a.timeout_s > 0:
        raise UsageError("--timeout-s must be > 0")
    if not 0 <= a.seed < 2 ** 24:
        raise UsageError("--seed must be in [0, 2^24)")
    if a.method == "ps" and world < 2:
        raise UsageError("--method ps needs WORLD_SIZE >= 2 (rank 0 serves and computes, the "
                         f"others push/pull); got WORLD_SIZE={world}")
    if a.pretrained and not os.path.isfile(a.pretrained):
        raise UsageError(f"--pretrained {a.pretrained}: no such file")
    if a.data_dir:
        if not os.path.isdir(a.data_dir):
            raise UsageError(f"--data-dir {a.data_dir}: no such directory")
        missing = [d for d in ("train", "val") if not os.path.isdir(os.path.join(a.data_dir, d))]
        if missing:
            raise UsageError(f"--data-dir {a.data_dir}: missing {' and '.join(m + '/' for m in missing)}"
                             " (expected ImageNet-style train/ and val/ class folders)")
    out_dir = os.path.dirname(os.path.abspath(a.out))
    if not os.path.isdir(out_dir):
        raise UsageError(f"--out {a.out}: directory {out_dir} does not exist")


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(timespec="milliseconds")


def write_atomic(path, write):
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def run(a, rank, world, local_rank):
    t_import = time.perf_counter()
    import torch
    import torch.distributed as dist
    from torch import nn
    from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors
    from torch.utils.data import DataLoader, Subset

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import dist_common as dc

    import_s = time.perf_counter() - t_import
    torch.set_num_threads(a.threads)
    log = dc.warn if rank == 0 else None

    # ---- backend and device ------------------------------------------------------------------
    cuda = torch.cuda.is_available()
    backend = a.backend
    if backend == "auto":
        backend = "nccl" if cuda and dist.is_nccl_available() else "gloo"
    if backend == "nccl":
        if not cuda:
            raise UsageError("--backend nccl needs CUDA, which this torch cannot see")
        if local_rank >= torch.cuda.device_count():
            raise UsageError(f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} GPU(s)")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        if not dist.is_gloo_available():
            raise UsageError("this torch has no gloo backend")
        device = torch.device("cpu")
    on_gpu = device.type == "cuda"

    # ---- data and model (before the rendezvous: bad inputs exit 2 on every rank) ------------
    try:
        if a.data_dir:
            train_ds, val_ds = dc.image_folders(a.data_dir, a.image_size)
            found = len(train_ds.classes)
            num_classes = a.num_classes or found
            if num_classes < found:
                raise UsageError(f"--num-classes {num_classes} < {found} class folders in train/")

            def subset(ds, n, salt):
                if n is None or n >= len(ds):
                    return ds
                g = torch.Generator().manual_seed(a.seed * 31 + salt)
                return Subset(ds, torch.randperm(len(ds), generator=g)[:n].tolist())

            train_ds = subset(train_ds, a.train_samples, 1)
            val_ds = subset(val_ds, a.val_samples, 2)
        else:
            num_classes = a.num_classes or 10
            n_train = 4096 if a.train_samples is None else a.train_samples
            n_val = 512 if a.val_samples is None else a.val_samples
            train_ds = dc.SyntheticImages(n_train, a.image_size, num_classes, a.seed, split=0)
            val_ds = dc.SyntheticImages(n_val, a.image_size, num_classes, a.seed, split=1)
        model = dc.build_model(a.model, num_classes, a.image_size, a.seed, a.pretrained, log)
    except (dc.ModelError, dc.DataError) as e:
        raise UsageError(str(e)) from e

    # dedicated PS: rank 0 only serves; the workers are ranks 1..world-1 (shards 0..world-2)
    dedicated = a.method == "ps" and a.ps_topology == "dedicated"
    workers = world - 1 if dedicated else world
    serves_only = dedicated and rank == 0
    global_batch = a.batch_size * workers
    sampler = dc.ShardBatches(len(train_ds), a.batch_size, rank - 1 if dedicated and rank > 0 else rank,
                              workers, a.seed, a.max_steps)
    if len(sampler) == 0:
        raise UsageError(f"{len(train_ds)} training samples are fewer than one global batch "
                         f"({a.batch_size} x {workers} {'workers' if dedicated else 'ranks'} = {global_batch})")
    loader_kw = dict(num_workers=a.workers, pin_memory=on_gpu)
    # the dedicated server loads no data: it steps once per global batch without one
    train_loader = [(None, None)] * len(sampler) if serves_only else \
        DataLoader(train_ds, batch_sampler=sampler, **loader_kw)
    val_loader = DataLoader(val_ds, batch_size=max(a.batch_size, 64), shuffle=False, **loader_kw) \
        if rank == 0 and len(val_ds) > 0 else None

    # ---- rendezvous --------------------------------------------------------------------------
    t_init = time.perf_counter()
    dist.init_process_group(backend, init_method="env://", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=a.timeout_s))
    init_s = time.perf_counter() - t_init

    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if a.method != "ddp":
        with torch.no_grad():  # same start on every rank even if init were not reproducible
            for t in list(model.parameters()) + list(model.buffers()):
                dist.broadcast(t.data, 0)
    if a.method == "ddp":
        net = nn.parallel.DistributedDataParallel(model, device_ids=[local_rank] if on_gpu else None)
    else:
        net = model
    opt = torch.optim.SGD(params, lr=a.lr, momentum=a.momentum) \
        if a.method != "ps" or rank == 0 else None
    crit = nn.CrossEntropyLoss()

    buckets = None
    if a.method == "allreduce" and a.bucket_mb > 0:
        cap = a.bucket_mb * 1024 * 1024
        buckets, cur, size = [], [], 0
        for p in reversed(params):
            cur.append(p)
            size += p.numel() * p.element_size()
            if size >= cap:
                buckets.append(cur)
                cur, size = [], 0
        if cur:
            buckets.append(cur)

    def sync():
        if on_gpu:
            torch.cuda.synchronize(device)

    def grads():
        out = []
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            out.append(p.grad)
        return out

    def allreduce_grads():
        gs = grads()
        if buckets is None:
            for g in gs:
                g.div_(world)
                dist.all_reduce(g)
            return
        index = {id(p): i for i, p in enumerate(params)}
        for bucket in buckets:
            bg = [gs[index[id(p)]] for p in bucket]
            flat = _flatten_dense_tensors(bg).div_(world)
            dist.all_reduce(flat)
            for g, s in zip(bg, _unflatten_dense_tensors(flat, bg)):
                g.copy_(s)

    def ps_pull():
        with torch.no_grad():
            if a.ps_impl == "naive":
                if rank == 0:
                    for w in range(1, world):
                        for p in params:
                            dist.send(p.data, w)
                else:
                    for p in params:
                        dist.recv(p.data, 0)
            else:
                data = [p.data for p in params]
                flat = _flatten_dense_tensors(data) if rank == 0 else \
                    torch.empty(sum(p.numel() for p in params), dtype=params[0].dtype, device=device)
                dist.broadcast(flat, 0)
                if rank != 0:
                    for d, s in zip(data, _unflatten_dense_tensors(flat, data)):
                        d.copy_(s)

    def ps_push():
        gs = grads()
        for g in gs:
            g.div_(workers)  # the dedicated server's gradients are zeros: it adds nothing
        if a.ps_impl == "naive":
            if rank == 0:
                for w in range(1, world):
                    for g in gs:
                        buf = torch.empty_like(g)
                        dist.recv(buf, w)
                        g.add_(buf)
            else:
                for g in gs:
                    dist.send(g, 0)
        else:
            flat = _flatten_dense_tensors(gs)
            dist.reduce(flat, dst=0, op=dist.ReduceOp.SUM)
            if rank == 0:
                for g, s in zip(gs, _unflatten_dense_tensors(flat, gs)):
                    g.copy_(s)

    def evaluate():
        model.eval()  # the bare module: DDP's forward would start collectives on rank 0 alone
        loss_sum, correct, n = 0.0, 0, 0
        with torch.no_grad():
            for x, y in val_loader:
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                out = dc.logits_of(model(x))
                loss_sum += float(nn.functional.cross_entropy(out, y, reduction="sum"))
                correct += int((out.argmax(1) == y).sum())
                n += y.numel()
        model.train()
        return loss_sum / n, 100.0 * correct / n

    # ---- training ----------------------------------------------------------------------------
    setup_s = time.perf_counter() - T0
    epochs, all_losses = [], []
    model.train()
    for epoch in range(a.epochs):
        sampler.set_epoch(epoch)
        stats, times = [], []  # per step: [loss, correct, n]; [step, comm, pull, push] seconds
        sync()
        t_epoch = t_prev = time.perf_counter()
        for x, y in train_loader:
            if not serves_only:
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            comm = pull = push = 0.0
            if a.method == "ps":
                sync()
                t = time.perf_counter()
                ps_pull()
                sync()
                pull = time.perf_counter() - t
            if opt is not None:
                opt.zero_grad(set_to_none=True)
            else:
                for p in params:
                    p.grad = None
            if serves_only:
                for p in params:
                    p.grad = torch.zeros_like(p)
            else:
                out = dc.logits_of(net(x))
                loss = crit(out, y)
                loss.backward()
            if a.method == "allreduce":
                sync()
                t = time.perf_counter()
                allreduce_grads()
                sync()
                comm = time.perf_counter() - t
            elif a.method == "ps":
                sync()
                t = time.perf_counter()
                ps_push()
                sync()
                push = time.perf_counter() - t
            if opt is not None:
                opt.step()
            with torch.no_grad():
                if serves_only:  # no samples: adds nothing to the sums over ranks
                    stats.append(torch.zeros(3, device=device))
                else:
                    stats.append(torch.stack([loss.detach().float(),
                                              (out.argmax(1) == y).sum().float(),
                                              torch.tensor(float(y.numel()), device=device)]))
            sync()
            now = time.perf_counter()
            times.append([now - t_prev, comm, pull, push])
            t_prev = now
        train_time = time.perf_counter() - t_epoch
        steps = len(stats)

        st = torch.stack(stats)
        dist.all_reduce(st)  # SUM over ranks
        tm = torch.tensor(times + [[train_time, 0.0, 0.0, 0.0]], dtype=torch.float64, device=device)
        dist.all_reduce(tm, op=dist.ReduceOp.MAX)
        st, tm = st.cpu().tolist(), tm.cpu().tolist()
        train_time = tm[-1][0]
        tm = tm[:-1]
        losses = [s[0] / workers for s in st]
        all_losses.extend(losses)
        samples = sum(s[2] for s in st)
        warm = 3 if steps >= 6 else (1 if steps >= 2 else 0)
        steady_t = sum(t[0] for t in tm[warm:])
        rec = {
            "epoch": epoch + 1,
            "steps": steps,
            "train_loss": sum(losses) / steps,
            "train_accuracy": 100.0 * sum(s[1] for s in st) / samples,
            "train_time": train_time,
            "train_throughput": samples / train_time,
            "avg_batch_time": train_time / steps,
            "steady_throughput": sum(s[2] for s in st[warm:]) / steady_t if steady_t > 0 else None,
            "warmup_steps": warm,
            "avg_compute_time": sum(t[0] - t[1] - t[2] - t[3] for t in tm) / steps,
            "val_loss": None,
            "val_accuracy": None,
            "avg_comm_time": sum(t[1] for t in tm) / steps if a.method == "allreduce" else None,
            "avg_comm_time_pull": sum(t[2] for t in tm) / steps if a.method == "ps" else None,
            "avg_comm_time_push": sum(t[3] for t in tm) / steps if a.method == "ps" else None,
        }
        if val_loader is not None:
            rec["val_loss"], rec["val_accuracy"] = evaluate()
        dist.barrier()
        epochs.append(rec)
        if rank == 0:
            line = (f"epoch {rec['epoch']}: loss {rec['train_loss']:.4f} "
                    f"acc {rec['train_accuracy']:.1f}%")
            if rec["val_loss"] is not None:
                line += f" val_loss {rec['val_loss']:.4f} val_acc {rec['val_accuracy']:.1f}%"
            line += f" {rec['train_throughput']:.0f} samples/s"
            if rec["avg_comm_time"] is not None:
                line += f" comm {1000 * rec['avg_comm_time']:.1f} ms"
            if rec["avg_comm_time_pull"] is not None:
                line += (f" pull {1000 * rec['avg_comm_time_pull']:.1f} ms"
                         f" push {1000 * rec['avg_comm_time_push']:.1f} ms")
            print(line, flush=True)

    # ---- results -----------------------------------------------------------------------------
    if rank == 0:
        if a.dump_params:
            vec = torch.nn.utils.parameters_to_vector(params).detach().cpu().clone()
            write_atomic(a.dump_params, lambda f: torch.save(vec, f))
        vals = [e["val_accuracy"] for e in epochs if e["val_accuracy"] is not None]
        result = {
            "schema": SCHEMA,
            "method": a.method,
            "ps_impl": a.ps_impl if a.method == "ps" else None,
            "bucket_mb": a.bucket_mb if a.method == "allreduce" else None,
            "model": a.model,
            "pretrained": a.pretrained,
            "data": os.path.abspath(a.data_dir) if a.data_dir else "synthetic",
            "backend": backend,
            "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if on_gpu else None,
            "world_size": world,
            "ps_topology": a.ps_topology if a.method == "ps" else None,
            "num_workers": workers if a.method == "ps" else None,
            "batch_size": a.batch_size,
            "global_batch": global_batch,
            "lr": a.lr,
            "momentum": a.momentum,
            "seed": a.seed,
            "image_size": a.image_size,
            "num_classes": num_classes,
            "train_samples": len(train_ds),
            "val_samples": len(val_ds),
            "threads": a.threads,
            "num_params": sum(p.numel() for p in params),
            "torch": torch.__version__,
            "start_time": iso(T0_WALL),
            "end_time": iso(time.time()),
            "timing": {"import_s": import_s, "init_s": init_s, "setup_s": setup_s},
            "epochs": epochs,
            "summary": {
                "avg_train_throughput": mean(e["train_throughput"] for e in epochs),
                "avg_train_time_per_epoch": mean(e["train_time"] for e in epochs),
                "best_val_accuracy": max(vals) if vals else None,
                "final_train_accuracy": epochs[-1]["train_accuracy"],
                "avg_comm_time": mean(e["avg_comm_time"] for e in epochs),
                "avg_comm_time_pull": mean(e["avg_comm_time_pull"] for e in epochs),
                "avg_comm_time_push": mean(e["avg_comm_time_push"] for e in epochs),
            },
            "all_losses": all_losses,
            "steps": len(all_losses),
        }
        data = (json.dumps(result, indent=1) + "\n").encode()
        write_atomic(a.out, lambda f: f.write(data))
    dist.barrier()
    # no destroy_process_group(): with torch 1.13 it can deadlock tearing down DDP's gloo group
    # (the main thread waits on a gloo thread that waits for the GIL). Every rank is past the
    # barrier and the result is written; the process leaves with os._exit below, which closes
    # the sockets.
    return 0


def main(argv=None):
    rank = os.environ.get("RANK", "0")
    try:
        a = parse_args(argv)
        rank_i, world, local = rank_env()
        rank = str(rank_i)
        check_args(a, world)
        os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
        os.environ.setdefault("OPENBLAS_NUM_THREADS", str(a.threads))
        return run(a, rank_i, world, local)
    except UsageError as e:
        print(f"dist_train rank {rank}: error: {e}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print(f"dist_train rank {rank}: interrupted", file=sys.stderr, flush=True)
        return 130
    except SystemExit:
        raise  # --help
    except BaseException as e:  # noqa: BLE001 - one line per rank for the launcher
        if os.environ.get("DIST_TRAIN_DEBUG"):
            import traceback

            traceback.print_exc()
        msg = " | ".join(line.strip() for line in str(e).splitlines() if line.strip())
        print(f"dist_train rank {rank}: {type(e).__name__}: {msg}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    code = main()
    # Leave without the interpreter's teardown: with torch 1.13 a rank sometimes deadlocks there
    # (the main thread tears down DDP's gloo process group and waits on a gloo thread that waits
    # for the GIL). Everything worth keeping is written and flushed by now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 1)
