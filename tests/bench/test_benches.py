"""Every ``dcv bench`` end to end on small synthetic data and tiny models: each writes its JSON and table
(ratios measured side by side; the figures themselves are in docs/results.md, never asserted here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run
from dcvkit.bench.architectures import plan_budget
from dcvkit.cli.main import main

FAST = ["--no-progress", "--seed", "0"]


def test_bench_classify_runs_all_contenders(idx_dir, capsys):
    code = main(["bench", "classify", "--data-dir", str(idx_dir), "--models", "mlp_tiny", "--steps", "3",
                 "--warmup", "1", "--rounds", "1", "--batch-size", "32", "--workers", "0", "--name", "bb"])
    assert code == 0
    res = json.loads(Path("runs/bench/classify/bb/bench.json").read_text())["models"]["mlp_tiny"]
    assert set(res["images_per_s"]) == {"dcvkit", "bare", "bare (NCHW)", "torchvision"}
    assert all(v > 0 for v in res["images_per_s"].values()) and res["dcvkit_vs_bare"] > 0
    assert "dcvkit/bare" in capsys.readouterr().out


def test_budget_becomes_epochs_or_a_subset():
    assert plan_budget(60, 10_000, 60_000, 0.1) == (9, None)  # 540k usable images, 56k per epoch
    epochs, limit = plan_budget(60, 100, 60_000, 0.1)  # 5,400 usable images: one epoch on a subset
    assert epochs == 1 and 5_000 < limit < 6_000


def test_bench_architectures(idx_dir, capsys):
    assert main(["bench", "architectures", "--data-dir", str(idx_dir), "--models", "cnn_tiny,resnet20",
                 "--width", "0.25", "--budget-minutes", "0.02", "--max-epochs", "2", "--calibration-steps", "1",
                 "--no-progress", "--name", "ba"]) == 0
    out = Path("runs/bench/architectures/ba")
    res = json.loads((out / "bench.json").read_text())
    rows = {r["model"]: r for r in res["rows"]}
    assert rows["resnet20"]["published_acc"] == 0.949 and rows["cnn_tiny"]["published_acc"] is None
    assert all(r["params"] > 0 and r["mflops"] > 0 and r["images_per_s"] > 0 and 0 <= r["test_acc"] <= 1
               for r in rows.values())
    assert "0.835" in (out / "table.md").read_text() and (out / "accuracy.png").is_file()
    assert "best within the budget" in capsys.readouterr().out


def test_bench_generative(idx_dir, capsys):
    assert main(["bench", "generative", "--data-dir", str(idx_dir), "--limit", "240", "--epochs", "1",
                 "--nll-images", "20", "--nll-samples", "4", "--rounds", "2", "--steps", "2", *FAST]) == 0
    res = json.loads(Path("runs/bench/generative/exp/bench.json").read_text())
    ref, mlp, vae = res["rows"]
    assert ref["params"] == mlp["params"] == 652824  # the same 784-400-20 design
    assert all(r["neg_elbo"] > 0 and r["images_per_s"] > 0 for r in res["rows"])
    assert mlp["speed_vs_reference"] == pytest.approx(mlp["images_per_s"] / ref["images_per_s"], rel=0.01)
    assert len(mlp["images_per_s_rounds"]) == 2
    assert "reference" in capsys.readouterr().out


def test_bench_saliency_small(capsys):
    code, out, err = run(capsys, "bench", "saliency", "--models", "cnn_tiny", "--deltas", "1", "--large-size", "20",
                         "--large-deltas", "1", "--naive-values", "800", "--max-memory", "64")
    assert code == 0, err
    res = json.loads(Path("runs/bench/saliency/exp/bench.json").read_text())
    small, large = res["cases"]
    assert small["copies"] == 28 * 28 * 2 and large["copies"] == 3 * 20 * 20 * 2
    engines = [r["engine"] for r in small["rows"]]
    assert engines == ["naive loop", "dcvkit batched", "dcvkit incremental", "captum FeatureAblation"]
    for case in (small, large):  # every engine computed the same map as the literal loop (float32 rounding)
        assert all(r["max_abs_diff"] is None or r["max_abs_diff"] < 1e-3 for r in case["rows"])
        assert all(r["speedup"] > 0 for r in case["rows"])
    assert "scaled" in large["rows"][0]["engine"] and "speed-up vs naive" in \
        Path("runs/bench/saliency/exp/table.md").read_text()


def test_bench_augment_writes_ratios(capsys):
    code, out, err = run(capsys, "bench", "augment", "--sizes", "28", "--images-28", "64", "--batch-size", "32",
                         "--rounds", "1", "--workers", "0")
    assert code == 0, err
    res = json.loads(Path("runs/bench/augment/exp/bench.json").read_text())
    r = res["sizes"]["28"]
    assert set(r["images_per_s"]) == {"dcvkit (batched)", "torchvision v2 per sample, 0 workers",
                                      "keras semantics per sample (scipy)"}
    assert r["speedup_vs_torchvision"] == pytest.approx(
        r["images_per_s"]["dcvkit (batched)"] / r["images_per_s"]["torchvision v2 per sample, 0 workers"])
    assert "dcvkit speed-up" in Path("runs/bench/augment/exp/table.md").read_text()
    # no torchvision rows: no torchvision ratio, and no crash
    code, _, err = run(capsys, "bench", "augment", "--sizes", "28", "--images-28", "32", "--rounds", "1",
                       "--workers", "", "--no-keras")
    assert code == 0, err
    assert json.loads(Path("runs/bench/augment/exp2/bench.json").read_text())["sizes"]["28"]["speedup_vs_torchvision"] is None



def test_bench_startup_reports_that_no_command_imports_torch(capsys):
    code = main(["bench", "startup", "--repeats", "1", "--commands", "--help; detect train --help", "--name", "st"])
    assert code == 0
    rows = json.loads(Path("runs/bench/startup/st/bench.json").read_text())["rows"]
    dcv = [r for r in rows if r["command"].startswith("dcv ")]
    assert [r["command"] for r in dcv] == ["dcv --help", "dcv detect train --help"]
    assert all(r["imports_torch"] is False and r["median_s"] > 0 for r in dcv)
    assert any(r["command"] == "python -c 'import torch'" for r in rows)


def test_bench_streaming_compares_memory_and_files(fashion_mnist, capsys):
    code = main(["bench", "streaming", "--data-dir", str(fashion_mnist), "--images", "8", "--rounds", "1",
                 "--batch-size", "4", "--img-size", "64", "--name", "bs"])
    assert code == 0
    r = json.loads(Path("runs/bench/streaming/bs/bench.json").read_text())
    assert [row["source"] for row in r["rows"]] == ["in memory", "streamed"] and r["streamed_over_memory"] > 0
    assert "the in-memory images/s" in capsys.readouterr().out


def test_peer_needs_its_environment(tmp_path, capsys):
    code, _, err = run(capsys, "bench", "detect", "--peer", "ultralytics", "--train-minutes", "1",
                       "--peer-env", str(tmp_path / "none"), "--scenes", "8", "--test-scenes", "2", "--models", "yolo")
    assert code == 2 and "--install-peer" in err and "AGPL" in err
