"""``dcv tune`` on Optuna: two worker processes share one journal-file study and together run exactly the
trials asked for; a pruned trial is recorded as pruned; the best config re-runs with ``dcv classify train
--config`` to the same value; bad spaces give one-line errors."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import assert_one_line_error
from dcvkit.cli.main import main


def _fixed(idx_dir: Path, epochs: int = 2) -> str:
    return f"data_dir={idx_dir}, model=cnn_tiny, epochs={epochs}, limit=200, batch_size=32"


def _space(tmp_path: Path, **extra) -> Path:
    space = {"lr": {"type": "float", "low": 0.01, "high": 0.2, "log": True},
             "dropout": {"type": "categorical", "choices": [0.0, 0.2]}, **extra}
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space))
    return path


def test_two_workers_share_one_journal_study(idx_dir, tmp_path):
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    exe = [sys.executable, "-m", "dcvkit"]
    args = ["tune", "--space", str(_space(tmp_path)), "--fixed", _fixed(idx_dir, 1), "--trials", "6",
            "--pruner", "none", "--name", "shared"]
    first = subprocess.Popen([*exe, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    run = Path("runs/tune/shared")
    for _ in range(600):  # the second worker joins once the first has written its run directory
        if (run / "tune.yaml").is_file() or first.poll() is not None:
            break
        time.sleep(0.1)
    second = subprocess.Popen([*exe, "tune", "--resume", str(run)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    for p in (first, second):
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    study = optuna.load_study(study_name="shared",
                              storage=JournalStorage(JournalFileBackend(str(run / "study.journal"))))
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE"] * 6  # exactly the six asked for: none lost, none extra
    assert sorted(t.number for t in study.trials) == list(range(6))
    dirs = {t.user_attrs["run_dir"] for t in study.trials}
    assert len(dirs) == 6 and all(Path(d, "last.pt").is_file() for d in dirs)
    rows = list(csv.DictReader(open(run / "trials.csv")))
    assert len(rows) == 6


def test_pruned_trial_is_recorded_as_pruned(idx_dir, tmp_path):
    import optuna

    from dcvkit.tune import TuneConfig, tune

    # a threshold nobody reaches after epoch 1: the first trial is pruned there, not trained to epoch 3
    cfg = TuneConfig(space=str(_space(tmp_path)), fixed=_fixed(idx_dir, 3), trials=2)
    result = tune(cfg, pruner=optuna.pruners.ThresholdPruner(lower=1.01), log=lambda s: None)
    assert [t.state for t in result.study.trials] == [optuna.trial.TrialState.PRUNED] * 2
    assert all(list(t.intermediate_values) == [1] for t in result.study.trials)
    assert [r["state"] for r in result.rows] == ["pruned", "pruned"] and result.best_config is None


def test_best_config_reruns_with_classify_train(idx_dir, tmp_path, capsys):
    assert main(["tune", "--space", str(_space(tmp_path)), "--fixed", _fixed(idx_dir), "--trials", "3",
                 "--sampler", "random"]) == 0
    run = Path("runs/tune/exp")
    assert {"best.yaml", "trials.csv", "study.json", "history.png", "parallel.png"} <= {p.name for p in run.iterdir()}
    import json

    study = json.loads((run / "study.json").read_text())
    assert study["complete"] == 3 and study["direction"] == "maximize"
    best = yaml.safe_load((run / "best.yaml").read_text())
    assert best["lr"] == pytest.approx(study["best_params"]["lr"]) and best["epochs"] == 2
    capsys.readouterr()
    assert main(["classify", "train", "--config", str(run / "best.yaml"), "--no-progress"]) == 0
    rerun = list(csv.DictReader(open("runs/classify/exp/metrics.csv")))
    assert max(float(r["val_acc"]) for r in rerun) == pytest.approx(study["best_value"])  # the same run again


def test_grid_sampler_values():
    from dcvkit.tune.space import grid

    g = grid({"lr": {"type": "float", "low": 0.001, "high": 0.1, "log": True},
              "batch_size": {"type": "int", "low": 32, "high": 128, "step": 32},
              "model": {"type": "categorical", "choices": ["cnn", "mlp"]}}, points=3)
    assert g["lr"] == pytest.approx([0.001, 0.01, 0.1]) and g["batch_size"] == [32, 64, 96, 128]
    assert g["model"] == ["cnn", "mlp"]


def test_bad_spaces_are_one_line(tmp_path, capsys):
    cases = [({"lrr": {"type": "float", "low": 0.1, "high": 1}}, "'lrr' is not an option"),
             ({"lr": {"type": "float", "low": 1, "high": 0.1}}, "need low < high"),
             ({"lr": {"type": "beta"}}, "needs a mapping with type"),
             ({"model": {"type": "categorical", "choices": []}}, "non-empty list")]
    for i, (space, fragment) in enumerate(cases):
        path = tmp_path / f"s{i}.yaml"
        path.write_text(yaml.safe_dump(space))
        code = main(["tune", "--space", str(path), "--trials", "1"])
        assert_one_line_error(code, capsys.readouterr().err, fragment)
    code = main(["tune", "--task", "segment", "--trials", "1"])
    assert_one_line_error(code, capsys.readouterr().err, "give a search space")


def test_bench_tune(idx_dir, capsys):
    assert main(["bench", "tune", "--data-dir", str(idx_dir), "--trials", "2", "--samplers", "random,grid",
                 "--fixed", "model=cnn_tiny, epochs=1, limit=120"]) == 0
    import json

    res = json.loads(Path("runs/bench/tune/exp/bench.json").read_text())
    assert [r["sampler"] for r in res["rows"]] == ["random", "grid"] and all(r["trials"] == 2 for r in res["rows"])
    for name, curve in res["curves"].items():
        assert curve == sorted(curve) and len(curve) == 2  # best so far never falls
    assert Path("runs/bench/tune/exp/best_so_far.png").stat().st_size > 1000
    assert "best after 2 trials" in capsys.readouterr().out


def test_grid_covers_the_whole_grid_and_stops_by_count(idx_dir, tmp_path):
    """2 x 2 grid, 4 trials: every point once, and the study ends cleanly (Optuna's own grid sampler calls
    study.stop(), which only works inside study.optimize)."""
    from dcvkit.tune import TuneConfig, tune

    space = tmp_path / "grid.yaml"
    space.write_text(yaml.safe_dump({"lr": {"type": "categorical", "choices": [0.01, 0.1]},
                                     "dropout": {"type": "categorical", "choices": [0.0, 0.2]}}))
    r = tune(TuneConfig(space=str(space), fixed=_fixed(idx_dir, 1), trials=4, sampler="grid", pruner="none"),
             log=lambda s: None)
    points = sorted((t.params["lr"], t.params["dropout"]) for t in r.study.trials)
    assert points == [(0.01, 0.0), (0.01, 0.2), (0.1, 0.0), (0.1, 0.2)]
    assert all(t.state.name == "COMPLETE" for t in r.study.trials)


def test_two_workers_share_one_postgresql_study(idx_dir, tmp_path, postgres_url):
    """Workers as on two machines: separate run directories, one RDB study on a PostgreSQL server (started on
    loopback by the fixture), exactly the trials asked for, each run by one worker."""
    import optuna

    exe = [sys.executable, "-m", "dcvkit"]
    args = ["tune", "--space", str(_space(tmp_path)), "--fixed", _fixed(idx_dir, 1), "--trials", "6",
            "--pruner", "none", "--storage", postgres_url, "--study", "pg-shared"]
    workers = [subprocess.Popen([*exe, *args, "--project", f"worker{i}"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True) for i in range(2)]
    for p in workers:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    study = optuna.load_study(study_name="pg-shared", storage=postgres_url)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 6
    assert sorted(t.number for t in study.trials) == list(range(6))
    ran = [sorted(int(d.name.removeprefix("trial_")) for d in Path(f"worker{i}/tune/exp/trials").iterdir())
           for i in range(2)]
    assert sorted(ran[0] + ran[1]) == list(range(6))  # no trial run twice, none lost
    assert all(ran), f"one worker ran every trial: {ran}"
    for i in range(2):  # each worker's table and best config cover the whole study
        assert len(list(csv.DictReader(open(f"worker{i}/tune/exp/trials.csv")))) == 6
        assert Path(f"worker{i}/tune/exp/best.yaml").is_file()


def test_unreachable_database_is_one_line(tmp_path, capsys):
    code = main(["tune", "--trials", "1", "--storage", "postgresql://nobody@127.0.0.1:1/none"])
    assert_one_line_error(code, capsys.readouterr().err, "cannot open the study database")
