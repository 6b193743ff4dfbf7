"""dcv serve's command line and a real server process: one-line errors before anything loads, the
non-loopback warning, and dcv bench serve end to end (tiny: the figures are measured in docs/results.md)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from conftest import assert_one_line_error, run


def test_a_port_in_use_is_one_line(served, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        code, _, err = run(capsys, "serve", str(served["cls"]), "--port", str(port))
    assert_one_line_error(code, err, f"--port {port}", "is in use")


def test_bad_runs_and_options_are_one_line(served, capsys, tmp_path):
    code, _, err = run(capsys, "serve", str(tmp_path / "nope"), "--port", "0")
    assert_one_line_error(code, err, "no such run directory")
    code, _, err = run(capsys, "serve", f"a={served['cls']}", f"a={served['seg']}", "--port", "0")
    assert_one_line_error(code, err, "two runs are named 'a'")
    code, _, err = run(capsys, "serve", str(served["cls"]), "--max-batch", "0")
    assert_one_line_error(code, err, "--max-batch")
    code, _, err = run(capsys, "serve", str(served["seg"]), "--backend", "onnx", "--port", "0")
    assert_one_line_error(code, err, "--backend onnx", "does not export")


def test_a_public_address_without_a_key_warns():
    from dcvkit.serve.server import check_address

    with pytest.warns(UserWarning, match="--api-key"):
        check_address("0.0.0.0", 0, None)
    import warnings

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        check_address("127.0.0.1", 0, None)
        check_address("0.0.0.0", 0, "a-key")
    assert not seen  # loopback, or a key: nothing to warn about


def test_bench_serve_measures_batching_on_and_off(served, capsys, tmp_path):
    code, out, err = run(capsys, "bench", "serve", "--run", str(served["cls"]), "--requests", "60", "--warmup", "8",
                         "--clients", "6", "--rounds", "1", "--backends", "torch", "--max-wait-ms", "20",
                         "--project", str(tmp_path), "--name", "b")
    assert code == 0, err
    d = Path(tmp_path) / "bench" / "serve" / "b"
    r = json.loads((d / "bench.json").read_text())
    rows = {row["batching"]: row for row in r["rows"]}
    assert set(rows) == {True, False} and rows[False]["mean_batch"] == 1.0
    assert rows[True]["mean_batch"] > 1.0  # 6 clients at once: the batcher gathered them
    for row in rows.values():
        assert row["requests_per_s"] > 0 and row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
    assert rows[False]["speedup_vs_batch1"] == 1.0 and "dynamic batching" in out
    assert (d / "table.md").is_file() and (d / "throughput.png").is_file()
