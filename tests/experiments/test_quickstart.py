"""``dcv quickstart`` (the HTML report) on synthetic data, and the real Fashion-MNIST path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dcvkit.cli.main import main


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


@pytest.mark.data
def test_real_fashion_mnist_trains_and_baselines_run(fashion_mnist):
    """A short run on the real data (a 3,000-image subset) learns, and the baselines run on it."""
    from dcvkit.classical import run_baselines
    from dcvkit.tasks.classify import ClassifyConfig, train

    r = train(ClassifyConfig(model="cnn_tiny", epochs=2, limit=3000, progress=False, tensorboard=False))
    assert r.test is not None and r.test["images"] == 10_000 and r.test["accuracy"] > 0.6
    results = run_baselines(r.splits.train, r.splits.test, "nb,lr")
    assert results[1].test_accuracy > 0.75 > results[0].test_accuracy > 0.4
