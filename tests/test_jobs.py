"""The jobs on top: baselines, quickstart (HTML report), the throughput benchmark; and real data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dcvkit.cli.main import main
from dcvkit.errors import ConfigError


def test_baseline_names_and_aliases():
    from dcvkit.classical import resolve_names

    assert resolve_names("lr,rf,nb") == ["logistic_regression", "random_forest", "naive_bayes"]
    assert len(resolve_names("all")) == 5
    with pytest.raises(ConfigError, match="unknown baseline 'knn'"):
        resolve_names("knn")


def test_baseline_cli_on_synthetic_data(idx_dir, capsys):
    code = main(["baseline", "--data-dir", str(idx_dir), "--models", "nb,lr,dt", "--name", "b"])
    out = capsys.readouterr().out
    assert code == 0 and "logistic_regression" in out
    rows = json.loads(Path("runs/baseline/b/results.json").read_text())
    assert [r["model"] for r in rows] == ["naive_bayes", "logistic_regression", "decision_tree"]
    # synthetic classes are bars in different bands: linear models separate them
    assert rows[1]["test_accuracy"] > 0.9 and all(r["fit_s"] >= 0 for r in rows)


def test_quickstart_writes_the_report(idx_dir, capsys):
    code = main(["quickstart", "--data-dir", str(idx_dir), "--model", "cnn_tiny", "--epochs", "1",
                 "--baselines", "nb,lr", "--no-progress", "--no-tensorboard"])
    assert code == 0
    html = Path("runs/quickstart/exp/report.html").read_text()
    # curves, confusion matrix, predictions, saliency overlay, feature maps, filters
    assert html.count("data:image/png;base64,") >= 6
    for name in ("cnn_tiny (CNN)", "naive_bayes", "logistic_regression", "Confusion matrix", "What the CNN looks at",
                 "Perturbation", "first conv block", "dcv explain saliency"):
        assert name in html
    d = Path("runs/quickstart/exp/explain")
    assert len(list(d.glob("*_perturbation.npy"))) == 1 and (d / "filters.png").is_file()
    summary = json.loads(Path("runs/quickstart/exp/summary.json").read_text())
    assert {r["model"] for r in summary["rows"]} == {"cnn_tiny (CNN)", "naive_bayes", "logistic_regression"}


def test_bench_classify_runs_all_contenders(idx_dir, capsys):
    code = main(["bench", "classify", "--data-dir", str(idx_dir), "--models", "mlp_tiny", "--steps", "3",
                 "--warmup", "1", "--rounds", "1", "--batch-size", "32", "--workers", "0", "--name", "bb"])
    assert code == 0
    res = json.loads(Path("runs/bench/classify/bb/bench.json").read_text())["models"]["mlp_tiny"]
    assert set(res["images_per_s"]) == {"dcvkit", "bare", "bare (NCHW)", "torchvision"}
    assert all(v > 0 for v in res["images_per_s"].values()) and res["dcvkit_vs_bare"] > 0
    assert "dcvkit/bare" in capsys.readouterr().out


@pytest.mark.data
def test_real_fashion_mnist_trains_and_baselines_run(fashion_mnist):
    """A short run on the real data (a 3,000-image subset) learns, and the baselines run on it."""
    from dcvkit.classical import run_baselines
    from dcvkit.tasks.classify import ClassifyConfig, train

    r = train(ClassifyConfig(model="cnn_tiny", epochs=2, limit=3000, progress=False, tensorboard=False))
    assert r.test is not None and r.test["images"] == 10_000 and r.test["accuracy"] > 0.6
    results = run_baselines(r.splits.train, r.splits.test, "nb,lr")
    assert results[1].test_accuracy > 0.75 > results[0].test_accuracy > 0.4
