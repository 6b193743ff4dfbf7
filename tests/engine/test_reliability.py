"""Issue 11's promises for training runs: a run stopped any way (SIGINT, SIGTERM, SIGKILL, --max-time) resumes
to the same weights, bit for bit, as a run never stopped; two runs started at once get two directories; a full
disk or running out of GPU memory is a one-line error that keeps the last good checkpoint."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import assert_one_line_error
from dcvkit.cli.main import main
from dcvkit.io import load_checkpoint

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # every run alike: same threads, same reduction order
# 2,700 training images, 85 steps an epoch: slow enough (~1.5 s an epoch) to be stopped mid-epoch from here.
RUN = ["classify", "train", "--data", "fashion-mnist", "--model", "cnn_small", "--limit", "3000", "--epochs", "2",
       "--batch-size", "32", "--device", "cpu", "--deterministic", "--no-tensorboard", "--no-progress",
       "--augment", "rotation_range=10, width_shift_range=0.1", "--save-every-steps", "10", "--seed", "7"]


def dcv(*args: str, project: Path, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dcvkit", *args, "--project", str(project)], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kw)


def finish(proc: subprocess.Popen, code: int = 0) -> str:
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == code, err[-3000:]
    return err


def wait_for_mid_epoch_checkpoint(run: Path, proc: subprocess.Popen, epoch: int) -> dict:
    """Poll last.pt (written atomically) until it is a mid-epoch checkpoint of the given 0-based epoch."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            ckpt = load_checkpoint(run / "last.pt")
            if ckpt["epoch"] == epoch and ckpt["position"]:
                return ckpt
        except Exception:  # not written yet
            pass
        time.sleep(0.02)
    pytest.fail(f"no mid-epoch checkpoint of epoch {epoch} appeared (exit code {proc.returncode})")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, fashion_mnist_module) -> dict[str, torch.Tensor]:
    root = tmp_path_factory.mktemp("reference")
    finish(dcv(*RUN, project=root))
    return load_checkpoint(root / "classify" / "exp" / "last.pt")


@pytest.fixture(scope="module")
def fashion_mnist_module():
    from conftest import missing
    from dcvkit.data import named

    if named.find("fashion-mnist") is None:
        missing("Fashion-MNIST not found (install dataset-fashion-mnist: make setup)")


def assert_same_run(ckpt: dict, reference: dict) -> None:
    assert ckpt["epoch"] == reference["epoch"] == 2 and not ckpt["position"]
    for k, v in reference["model"].items():
        assert torch.equal(ckpt["model"][k], v), k  # bit for bit
    for a, b in zip(ckpt["optimizer"]["state"].values(), reference["optimizer"]["state"].values()):
        assert torch.equal(a["momentum_buffer"], b["momentum_buffer"])
    assert [h["train_loss"] for h in ckpt["history"]] == [h["train_loss"] for h in reference["history"]]


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM", "SIGINT"])
def test_stopped_run_resumes_bit_for_bit(tmp_path, reference, how):
    run = tmp_path / "classify" / "exp"
    proc = dcv(*RUN, project=tmp_path)
    wait_for_mid_epoch_checkpoint(run, proc, epoch=1)
    proc.send_signal(getattr(signal, how))
    if how == "SIGKILL":  # nothing runs: the last periodic checkpoint is what is left
        finish(proc, -signal.SIGKILL)
    else:  # the step in flight finishes, last.pt is written there, one line says how to go on
        err = finish(proc, 128 + getattr(signal, how))
        lines = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and f"interrupted by {how}" in lines[0] and "--resume" in lines[0], err
    left = load_checkpoint(run / "last.pt")
    assert left["epoch"] == 1 and 0 < left["position"]["step"] < 85
    finish(dcv("classify", "train", "--resume", str(run), "--no-progress", project=tmp_path))
    assert sorted(p.name for p in (tmp_path / "classify").iterdir()) == ["exp"]  # resumed in place
    assert_same_run(load_checkpoint(run / "last.pt"), reference)


def test_max_time_stops_with_a_resumable_checkpoint(tmp_path, reference):
    """--no-fit-schedule: the schedule stays planned for --epochs, so the run stopped by the time and resumed
    is the run never stopped."""
    run = tmp_path / "classify" / "exp"
    finish(dcv(*RUN, "--max-time", "0.0001", "--no-fit-schedule", project=tmp_path))  # 6 ms: a step or two
    left = load_checkpoint(run / "last.pt")
    assert left["epoch"] == 0 and left["position"]["step"] >= 1 and not (run / "best.pt").exists()
    finish(dcv("classify", "train", "--resume", str(run), "--no-progress", project=tmp_path))  # no limit now
    assert_same_run(load_checkpoint(run / "last.pt"), reference)


@pytest.mark.parametrize("scheduler, final", [("onecycle", 0.05 / 25 / 1e4), ("cosine", 0.0)])
def test_max_time_fits_the_schedule_to_the_time(tmp_path, fashion_mnist_module, scheduler, final):
    """Issue 29: 50 epochs asked for, 4 seconds given: the schedule anneals over the time, not the epochs, and
    the run ends with the lr at the schedule's final value, its last (cut short) epoch validated and tested."""
    err = finish(dcv("classify", "train", "--data", "fashion-mnist", "--model", "cnn_small", "--limit", "3000",
                     "--epochs", "50", "--batch-size", "32", "--scheduler", scheduler, "--warmup-epochs", "0.5",
                     "--max-time", str(4 / 60), "--no-tensorboard", project=tmp_path))
    run = tmp_path / "classify" / "exp"
    last = load_checkpoint(run / "last.pt")
    assert 1 <= last["epoch"] < 50 and last["position"] is None, err  # an epoch's end, not a mid-epoch stop
    lrs = [r["lr"] for r in last["history"]]
    assert lrs[-1] == pytest.approx(final, abs=1e-12), (lrs, err)
    if len(lrs) > 2:
        assert lrs[-2] > lrs[-1]  # annealed down to it, not cut off at the peak
    assert "the time is up at epoch" in err and "schedule fitted to it has ended" in err, err
    assert (run / "best.pt").exists() and (run / "results.json").exists()


def test_two_runs_started_at_once_get_two_directories(tmp_path, idx_dir):
    args = ["classify", "train", "--data", "fashion-mnist", "--data-dir", str(idx_dir), "--model", "cnn_tiny",
            "--epochs", "1", "--limit", "200", "--no-tensorboard", "--no-progress", "--name", "same"]
    procs = [dcv(*args, project=tmp_path) for _ in range(2)]
    for p in procs:
        finish(p)
    runs = sorted((tmp_path / "classify").iterdir())
    assert [r.name for r in runs] == ["same", "same2"]
    for r in runs:  # each whole: its own config, checkpoints and metrics
        assert {"config.yaml", "best.pt", "last.pt", "metrics.csv", "results.json"} <= {p.name for p in r.iterdir()}


def test_full_disk_keeps_the_last_good_checkpoint(tmp_path, idx_dir, monkeypatch, capsys):
    """The second epoch's checkpoint hits ENOSPC halfway through writing: one line, exit 2, and last.pt is
    still epoch 1's, whole, with no temp file left beside it."""

    real_save, calls = torch.save, []

    def save(obj, f, *a, **k):
        calls.append(1)
        if len(calls) == 2:
            f.write(b"partial checkpoint bytes")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", save)  # dcvkit.io imports torch where it saves
    code = main(["classify", "train", "--data", "fashion-mnist", "--data-dir", str(idx_dir), "--model", "cnn_tiny",
                 "--epochs", "3", "--limit", "200", "--no-tensorboard", "--no-progress"])
    assert_one_line_error(code, capsys.readouterr().err, "disk is full")
    run = Path("runs/classify/exp")
    assert load_checkpoint(run / "last.pt")["epoch"] == 1
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


def test_out_of_gpu_memory_is_a_hint_to_lower_the_batch(idx_dir, monkeypatch, capsys):
    from dcvkit.tasks import classify

    def oom(self, batch):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(classify.ClassificationTask, "training_step", oom)
    code = main(["classify", "train", "--data", "fashion-mnist", "--data-dir", str(idx_dir), "--model", "cnn_tiny",
                 "--epochs", "1", "--limit", "200", "--no-tensorboard", "--no-progress"])
    assert_one_line_error(code, capsys.readouterr().err, "lower --batch-size")


def test_non_finite_weights_are_never_saved(idx_dir, monkeypatch, capsys):
    """A step whose loss is finite but whose update leaves non-finite weights (an infinite gradient) stops the
    run with exit code 3 before the checkpoint after it is written; the last good one stays."""
    from dcvkit.tasks import classify

    real = classify.ClassificationTask.training_step
    steps = []

    def poisoned(self, batch):
        steps.append(1)
        loss, logs = real(self, batch)
        if len(steps) == 9:  # epoch 2, step 1 (8 steps an epoch): this step's gradient becomes infinite
            weight = next(self.model.parameters())
            handle = weight.register_hook(lambda g: (handle.remove(), g * float("inf"))[1])
        return loss, logs

    monkeypatch.setattr(classify.ClassificationTask, "training_step", poisoned)
    code = main(["classify", "train", "--data", "fashion-mnist", "--data-dir", str(idx_dir), "--model", "cnn_tiny",
                 "--epochs", "3", "--limit", "250", "--batch-size", "32", "--save-every-steps", "1",
                 "--no-tensorboard", "--no-progress"])
    assert code == 3 and "diverged" in capsys.readouterr().err
    ckpt = load_checkpoint("runs/classify/exp/last.pt")
    assert ckpt["epoch"] == 1 and not ckpt["position"]  # epoch 1's, not the poisoned step's
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())
