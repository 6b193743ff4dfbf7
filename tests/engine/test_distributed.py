"""Distributed training: per-rank shards, and `dcv classify train --devices 2` (two CPU processes, gloo) against
one process with the same global batch."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dcvkit.cli.main import main
from dcvkit.data.core import ImageTensors, Shard, epoch_indices
from dcvkit.engine import distributed
from dcvkit.errors import ConfigError
from dcvkit.io import load_checkpoint

from conftest import write_mask_pairs

CPU_WORKERS = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.mark.parametrize("n, world", [(540, 2), (541, 2), (1000, 3), (7, 4)])
def test_shards_are_disjoint_and_rebuild_the_single_process_batches(n, world):
    full = epoch_indices(n, shuffle=True, seed=3, epoch=5)
    parts = [epoch_indices(n, shuffle=True, seed=3, epoch=5, shard=Shard(r, world)) for r in range(world)]
    assert {len(p) for p in parts} == {n // world}  # every rank steps as often
    seen = torch.cat(parts)
    assert len(seen.unique()) == len(seen) == n - n % world  # disjoint; only the permutation's tail is left out
    assert set(full[: n - n % world].tolist()) == set(seen.tolist())
    b = 4  # per-rank batch: the ranks' k-th batches together are the single process's k-th batch of b * world
    for k in range((n // world) // b):
        together = torch.cat([p[k * b:(k + 1) * b] for p in parts])
        assert set(together.tolist()) == set(full[k * b * world:(k + 1) * b * world].tolist())
    other_epoch = torch.cat([epoch_indices(n, shuffle=True, seed=3, epoch=6, shard=Shard(r, world))
                             for r in range(world)])
    assert not torch.equal(other_epoch, seen) or n < 8  # reshuffled every epoch


def test_loaders_read_only_their_shard(tiny_tensors: ImageTensors):
    whole = tiny_tensors.loader(16, shuffle=True, seed=1)
    halves = [tiny_tensors.loader(8, shuffle=True, seed=1, shard=Shard(r, 2)) for r in range(2)]
    assert len(halves[0]) == len(halves[1]) == len(whole)
    labels = [torch.cat([y for _, y in h]) for h in halves]
    assert sum(len(y) for y in labels) == len(tiny_tensors)
    idx = torch.cat([h.indices() for h in halves])
    assert torch.equal(torch.cat(labels), tiny_tensors.labels[idx])


def test_global_batch_and_trainable_checks():
    assert distributed.check_batch_size(128, distributed.World(size=4)) == 32
    with pytest.raises(ConfigError, match="multiple of 3"):
        distributed.check_batch_size(128, distributed.World(size=3))

    class GANLike:
        manual_optimization = True

    with pytest.raises(ConfigError, match="one process"):
        distributed.check_trainable(GANLike(), distributed.World(rank=0, size=2))
    distributed.check_trainable(GANLike(), distributed.World())  # one process: fine


def _metrics(run: Path) -> list[dict[str, float]]:
    with open(run / "metrics.csv") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def test_two_cpu_processes_train_like_one_with_the_same_global_batch(tmp_path, idx_dir):
    """DDP over gloo: one run directory, disjoint shards (gathered from both ranks), and, for a model without
    dropout or batch norm, the same losses and weights as one process (the global batches are identical)."""
    common = ["classify", "train", "--data", "fashion-mnist", "--data-dir", str(idx_dir), "--model", "mlp_tiny",
              "--dropout", "0", "--epochs", "3", "--batch-size", "64", "--device", "cpu", "--deterministic",
              "--no-tensorboard", "--no-progress", "--seed", "4"]
    assert main([*common, "--project", str(tmp_path / "one")]) == 0
    proc = subprocess.run([sys.executable, "-m", "dcvkit", *common, "--project", str(tmp_path / "two"),
                           "--devices", "2"], capture_output=True, text=True, timeout=300, env=CPU_WORKERS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("done:") == 1  # only rank 0 reports
    runs = sorted((tmp_path / "two" / "classify").iterdir())
    assert [r.name for r in runs] == ["exp"]  # one run directory for both processes
    one, two = tmp_path / "one" / "classify" / "exp", runs[0]
    report = json.loads((two / "distributed.json").read_text())
    assert report["world_size"] == 2 and report["backend"] == "gloo" and report["rank_batch"] == 32
    assert report["images_per_rank"] == [270, 270] and report["read_by_two_ranks"] == 0
    assert report["images_read"] == report["dataset_images"] == 540
    m1, m2 = _metrics(one), _metrics(two)
    assert len(m1) == len(m2) == 3
    for a, b in zip(m1, m2):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-5), key
    w1, w2 = load_checkpoint(one / "last.pt")["model"], load_checkpoint(two / "last.pt")["model"]
    for k in w1:
        torch.testing.assert_close(w1[k], w2[k], rtol=1e-4, atol=1e-5)
    assert json.loads((two / "results.json").read_text())["accuracy"] == pytest.approx(
        json.loads((one / "results.json").read_text())["accuracy"], abs=0.01)
    assert "devices: 2" in (two / "config.yaml").read_text()
    # Stopped by --max-time after its first step, resumed with two processes: the same weights, bit for bit.
    cut = subprocess.run([sys.executable, "-m", "dcvkit", *common, "--project", str(tmp_path / "cut"),
                          "--devices", "2", "--max-time", "0.0001", "--no-fit-schedule"], capture_output=True,
                         text=True, timeout=300, env=CPU_WORKERS)
    assert cut.returncode == 0, cut.stderr[-3000:]
    run = tmp_path / "cut" / "classify" / "exp"
    assert 0 < load_checkpoint(run / "last.pt")["position"]["step"] < 9  # stopped in epoch 1
    resumed = subprocess.run([sys.executable, "-m", "dcvkit", "classify", "train", "--resume", str(run), "--devices",
                              "2"], capture_output=True, text=True, timeout=300, env=CPU_WORKERS)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    w3 = load_checkpoint(run / "last.pt")["model"]
    assert all(torch.equal(w2[k], w3[k]) for k in w2)
    assert [r["train_loss"] for r in _metrics(run)] == pytest.approx([r["train_loss"] for r in m2], rel=1e-6)
    # A schedule fitted to --max-time under two processes: the ranks agree on the time at every step (their
    # mean), so they stop together and the lr ends at the one-cycle's last value.
    fitted = subprocess.run([sys.executable, "-m", "dcvkit", *[a if a != "3" else "500" for a in common],
                             "--project", str(tmp_path / "fitted"), "--devices", "2", "--max-time", "0.05"],
                            capture_output=True, text=True, timeout=300, env=CPU_WORKERS)
    assert fitted.returncode == 0, fitted.stderr[-3000:]
    last = load_checkpoint(tmp_path / "fitted" / "classify" / "exp" / "last.pt")
    history, peak = last["history"], last["config"]["lr"]
    assert 1 <= len(history) < 500 and history[-1]["lr"] == pytest.approx(peak / 25 / 1e4, rel=1e-6)


def test_distributed_segmentation_and_one_line_errors(tmp_path):
    data = write_mask_pairs(tmp_path / "masks", n=8, size=32)
    args = [sys.executable, "-m", "dcvkit", "segment", "train", "--data", str(data), "--model", "unet_course",
            "--epochs", "1", "--batch-size", "4", "--device", "cpu", "--no-tensorboard", "--no-progress",
            "--devices", "2", "--project", str(tmp_path / "runs")]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, env=CPU_WORKERS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "runs" / "segment" / "exp"
    assert (run / "best.pt").exists() and json.loads((run / "distributed.json").read_text())["read_by_two_ranks"] == 0
    # An error inside the workers (both hit it) is printed once, as one line, with the workers' exit code.
    bad = subprocess.run([*args[:6], str(tmp_path / "nowhere"), *args[7:]], capture_output=True, text=True,
                         timeout=300, env=CPU_WORKERS)
    assert bad.returncode == 2
    errors = [line for line in bad.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: ") and "nowhere" in errors[0], bad.stderr[-2000:]
    # Refused before any process starts: a global batch that does not split evenly.
    odd = subprocess.run([*args, "--batch-size", "5"], capture_output=True, text=True, timeout=120, env=CPU_WORKERS)
    assert odd.returncode == 2 and "multiple of 2" in odd.stderr and not (tmp_path / "runs" / "segment" / "exp2").exists()
