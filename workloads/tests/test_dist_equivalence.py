#!/usr/bin/python3
"""Convergence-equivalence check for workloads/dist_train.py (CPU, gloo, 2 ranks, ~20 s).

Launches 2 ranks directly (RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT set here,
a fresh port per run, no torchrun) for ddp, allreduce (per parameter and 1 MB buckets) and ps
(naive and flat) on smallcnn with synthetic data, then checks that every run wrote a valid
gpucolo.distributed-result/1 file and that the final parameters (--dump-params) and per-step
losses agree with ddp's to 1e-5 relative (on CPU/gloo with 2 ranks they are bit-identical). Also
checks the exit-2 paths. Plain unittest, no pytest needed:

    /usr/bin/python3 workloads/tests/test_dist_equivalence.py
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(os.path.dirname(HERE), "dist_train.py")
PYTHON = os.environ.get("PYTHON", "/usr/bin/python3")
STEPS = 12

VARIANTS = {
    "ddp": ["--method", "ddp"],
    "allreduce_b0": ["--method", "allreduce", "--bucket-mb", "0"],
    "allreduce_b1": ["--method", "allreduce", "--bucket-mb", "1"],
    "ps_naive": ["--method", "ps", "--ps-impl", "naive"],
    "ps_flat": ["--method", "ps", "--ps-impl", "flat"],
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(world, args, timeout=180):
    """Start `world` ranks; return [(returncode, stdout, stderr)] per rank."""
    port = str(free_port())
    procs = []
    for rank in range(world):
        env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=port, RANK=str(rank),
                   WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
        procs.append(subprocess.Popen([PYTHON, SCRIPT, *args], env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    out = []
    for p in procs:
        try:
            so, se = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        out.append((p.returncode, so, se))
    return out


def torch_missing():
    """Why the workloads cannot run here (no PyTorch for PYTHON), or None."""
    try:
        probe = subprocess.run([PYTHON, "-c", "import torch, torch.distributed"], capture_output=True, text=True)
    except OSError as e:
        return f"cannot run {PYTHON}: {e.strerror}"
    return None if probe.returncode == 0 else f"no PyTorch for {PYTHON}: {probe.stderr.strip().splitlines()[-1:]}"


class DistEquivalence(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        missing = torch_missing()
        if missing:
            raise unittest.SkipTest(missing)
        cls.tmp = tempfile.TemporaryDirectory(prefix="dist_train_test_")
        cls.results = {}
        for name, extra in VARIANTS.items():
            out = os.path.join(cls.tmp.name, name + ".json")
            dump = os.path.join(cls.tmp.name, name + ".pt")
            ranks = launch(2, [*extra, "--model", "smallcnn", "--synthetic", "--epochs", "1",
                               "--max-steps", str(STEPS), "--val-samples", "128",
                               "--out", out, "--dump-params", dump])
            cls.results[name] = (ranks, out, dump)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_results_valid(self):
        for name, (ranks, out, _) in self.results.items():
            with self.subTest(variant=name):
                for rank, (rc, _, err) in enumerate(ranks):
                    self.assertEqual(rc, 0, f"{name} rank {rank} failed: {err}")
                self.assertIn("epoch 1: loss", ranks[0][1])
                with open(out) as f:
                    r = json.load(f)
                self.assertEqual(r["schema"], "gpucolo.distributed-result/1")
                self.assertEqual(r["world_size"], 2)
                self.assertEqual(r["global_batch"], 64)
                self.assertEqual(r["steps"], STEPS)
                self.assertEqual(len(r["all_losses"]), STEPS)
                e = r["epochs"][0]
                for k in ("train_loss", "train_accuracy", "train_time", "train_throughput",
                          "avg_batch_time", "val_loss", "val_accuracy"):
                    self.assertIsInstance(e[k], float, k)
                method = r["method"]
                self.assertEqual(e["avg_comm_time"] is not None, method == "allreduce")
                self.assertEqual(e["avg_comm_time_pull"] is not None, method == "ps")
                self.assertEqual(r["num_workers"], 2 if method == "ps" else None)

    def test_same_parameters_and_losses(self):
        import torch

        ranks, out, dump = self.results["ddp"]
        self.assertEqual(ranks[0][0], 0)
        ref = torch.load(dump)
        with open(out) as f:
            ref_losses = json.load(f)["all_losses"]
        for name, (ranks, out, dump) in self.results.items():
            with self.subTest(variant=name):
                self.assertEqual(ranks[0][0], 0)
                v = torch.load(dump)
                self.assertEqual(v.shape, ref.shape)
                rel = float((v - ref).abs().max() / ref.abs().max())
                self.assertLessEqual(rel, 1e-5, f"{name}: max relative parameter diff {rel}")
                with open(out) as f:
                    losses = json.load(f)["all_losses"]
                for a, b in zip(losses, ref_losses):
                    self.assertAlmostEqual(a, b, delta=1e-5 * abs(b))
        # the parameters moved: the check is not vacuous
        init_run = launch(1, ["--method", "ddp", "--synthetic", "--max-steps", "1", "--lr",
                              "1e-30", "--momentum", "0", "--val-samples", "0",
                              "--out", os.path.join(self.tmp.name, "init.json"),
                              "--dump-params", os.path.join(self.tmp.name, "init.pt")])
        self.assertEqual(init_run[0][0], 0, init_run[0][2])
        init = torch.load(os.path.join(self.tmp.name, "init.pt"))
        self.assertGreater(float((init - ref).abs().max()), 1e-4)

    def test_exit_2(self):
        out = os.path.join(self.tmp.name, "bad.json")
        cases = [
            (1, ["--method", "ps", "--out", out], "WORLD_SIZE >= 2"),
            (1, ["--method", "ddp", "--pretrained", "/nonexistent.pth", "--out", out],
             "no such file"),
            (1, ["--method", "ddp", "--data-dir", self.tmp.name, "--out", out], "train/"),
            (1, ["--method", "ddp", "--model", "nosuchnet", "--out", out], "unknown model"),
            (1, ["--method", "bogus", "--out", out], "invalid choice"),
            (2, ["--method", "ddp", "--train-samples", "40", "--out", out], "global batch"),
        ]
        for world, args, text in cases:
            with self.subTest(args=args):
                for rc, _, err in launch(world, args, timeout=60):
                    self.assertEqual(rc, 2, err)
                    self.assertRegex(err.strip(), r"^dist_train rank \d+: error: ")
                    self.assertIn(text, err)
        self.assertFalse(os.path.exists(out))


if __name__ == "__main__":
    unittest.main(verbosity=2)
