"""``dcv`` answers at once: ``--help`` at every level of every task and argument errors (a typo'd flag, a
missing file, an unknown command) never import torch. Each case runs in a fresh interpreter and reports
``sys.modules`` after the parser has run. (How fast that is: ``dcv bench startup``, not a timed test.) And the
entry point in a real process, and ``dcv --help`` listing every command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dcvkit.cli.main import main
from dcvkit.tasks import TASKS

PROBE = """
import json, sys
from dcvkit.cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as e:
    code = e.code
print(json.dumps({"code": code, "torch": "torch" in sys.modules}), file=sys.__stderr__)
"""

CASES = [
    (["--help"], 0),
    (["--version"], 0),
    *[([t, "--help"], 0) for t in TASKS],
    *[([t, "train", "--help"], 0) for t in TASKS],
    (["tune", "--help"], 0),
    (["models", "--help"], 0),
    (["serve", "--help"], 0),
    (["serve", "runs/x", "--port", "70000"], 2),         # checked before anything loads
    (["detect", "train", "--lrr", "0.1"], 2),             # a typo'd flag
    (["classify", "train", "--optimizer", "sgdd"], 2),     # a bad choice
    (["classify", "val", "no/such/run"], 2),               # a missing run directory
    (["detect", "predict", "no/such/run", "x.png"], 2),
    (["classify", "train", "--config", "missing.yaml"], 2),  # a missing config file
    (["segment", "train", "--resume", "no/such/run"], 2),
    (["clasify", "train"], 2),                             # a typo'd command
]


@pytest.mark.parametrize("argv,code", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_parsing_never_imports_torch(argv, code, tmp_path):
    p = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, cwd=tmp_path,
                       timeout=120)
    report = json.loads(p.stderr.strip().splitlines()[-1])
    assert report == {"code": code, "torch": False}, p.stderr
    if code == 2:  # one line, no traceback
        lines = [ln for ln in p.stderr.splitlines() if not ln.startswith("{")]
        assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr


def test_every_command_builds_and_its_help_prints(capsys):
    """The lazy parser builds each command only when asked: every one of them, and every mode of each, must
    still build and print its --help (a stray % in an option's help once broke `dcv bench detect --help`)."""
    import argparse

    from dcvkit.cli.main import build_parser, commands

    parser = build_parser()  # no argv: every command built
    sub = next(a for a in parser._actions if a.dest == "command")
    assert list(sub.choices) == list(commands())
    assert set(TASKS) <= set(commands())

    def walk(p: argparse.ArgumentParser, path: str) -> int:
        assert p.format_help(), path
        subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        return 1 + sum(walk(q, f"{path} {n}") for a in subs for n, q in a.choices.items())

    assert walk(parser, "dcv") > 40
    for name, p in sub.choices.items():
        assert p.description, name


def test_entry_point_in_a_subprocess(tmp_path):
    """The installed `dcv` script: one line on stderr, exit code 2, no traceback."""
    exe = Path(sys.executable).with_name("dcv")
    proc = subprocess.run([str(exe), "classify", "train", "--model", "nope", "--data", str(tmp_path / "x")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0
    for cmd in ("quickstart", "classify", "segment", "detect", "generate", "augment", "explain", "baseline", "experiment",
                "tune", "bench", "models"):
        assert cmd in out

