"""Progress where no terminal is (issue 29: `make demo > log` printed nothing for the first five minutes):
plain lines at intervals, from the training loop and from every long loop through dcvkit.progress."""

import io
import os
import re
import subprocess
import sys
import time

from rich.console import Console

from dcvkit.progress import Bar, duration, track


def test_track_prints_plain_lines_at_intervals_off_a_terminal(monkeypatch):
    monkeypatch.setenv("DCV_PROGRESS_EVERY", "0.01")
    buf = io.StringIO()
    console = Console(file=buf, width=200)
    assert not console.is_terminal
    items = []
    for i in track(range(20), description="drawing 20 scenes", console=console):
        time.sleep(0.003)
        items.append(i)
    assert items == list(range(20))  # every item, in order
    lines = buf.getvalue().splitlines()
    steps = [ln for ln in lines if re.fullmatch(r"drawing 20 scenes  \d+/20 \(\d+%\)  \d+ s, ~\d+ s left", ln)]
    assert len(steps) >= 2, lines
    assert lines[-1].startswith("drawing 20 scenes  20/20 (100%)  done"), lines  # and says it ended


def test_nothing_is_printed_when_disabled_or_set_to_zero(monkeypatch):
    buf = io.StringIO()
    console = Console(file=buf)
    monkeypatch.setenv("DCV_PROGRESS_EVERY", "0")
    with Bar(5, "quiet", console=console) as bar:
        for i in range(5):
            bar.update(i + 1, lambda: "never called")
    monkeypatch.setenv("DCV_PROGRESS_EVERY", "0.0001")
    list(track(range(5), description="off", console=console, enabled=False))
    assert buf.getvalue() == ""
    assert [duration(s) for s in (41.2, 200, 7500)] == ["41 s", "3 min 20 s", "2 h 05 min"]


def test_training_with_output_to_a_file_prints_progress_lines(tmp_path, idx_dir):
    env = {**os.environ, "DCV_PROGRESS_EVERY": "0.05", "COLUMNS": "200"}
    with open(tmp_path / "log.txt", "w") as log:  # a file, as `make demo > log.txt` makes it
        done = subprocess.run([sys.executable, "-m", "dcvkit", "classify", "train", "--data", "fashion-mnist",
                               "--data-dir", str(idx_dir), "--model", "cnn_small", "--limit", "600", "--epochs", "1",
                               "--batch-size", "8", "--no-tensorboard", "--project", str(tmp_path)],
                              stdout=log, stderr=subprocess.STDOUT, timeout=300, env=env)
    text = (tmp_path / "log.txt").read_text()
    assert done.returncode == 0, text[-3000:]
    lines = [ln for ln in text.splitlines()
             if re.match(r"epoch 1/1  \d+/68 steps \(\d+%\)  loss \d\.\d{4}  acc \d\.\d{4}  \d+ s", ln)]
    assert lines, text
    assert re.search(r"^epoch 1/1  train_loss", text, re.M)  # the epoch's own line still follows
