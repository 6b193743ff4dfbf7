"""The classical baselines: names and aliases, and ``dcv baseline`` on synthetic data."""

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

