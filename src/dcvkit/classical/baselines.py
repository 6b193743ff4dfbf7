"""The course's classical methods, with the Fashion-MNIST benchmark's settings, on flattened pixels.

Each baseline is a scikit-learn estimator fit on standardised pixel values, as the benchmark did. ``paper`` is the accuracy
the Fashion-MNIST benchmark (Xiao et al. 2017, zalandoresearch/fashion-mnist) reports for the same
estimator and settings, shown beside ours so the reproduction can be checked at a glance.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from sklearn.base import ClassifierMixin

from dcvkit.config import ImageDataConfig, RunConfig, opt, to_dict
from dcvkit.data.core import ImageTensors
from dcvkit.errors import ConfigError, DataError
from dcvkit.io import new_run_dir, write_csv, write_json, write_yaml


def _logreg(seed: int) -> ClassifierMixin:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0, max_iter=200, random_state=seed)


def _tree(seed: int) -> ClassifierMixin:
    from sklearn.tree import DecisionTreeClassifier

    return DecisionTreeClassifier(criterion="entropy", max_depth=100, random_state=seed)


def _forest(seed: int) -> ClassifierMixin:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=100, criterion="entropy", max_depth=100, n_jobs=-1, random_state=seed)


def _svm(seed: int) -> ClassifierMixin:
    from sklearn.svm import SVC

    return SVC(C=10.0, kernel="rbf", random_state=seed)


def _nb(seed: int) -> ClassifierMixin:
    from sklearn.naive_bayes import GaussianNB

    return GaussianNB()


@dataclass(frozen=True)
class Baseline:
    name: str
    build: Callable[[int], ClassifierMixin]
    settings: str
    paper: float  # Fashion-MNIST benchmark accuracy for these settings
    aliases: tuple[str, ...] = ()


BASELINES: dict[str, Baseline] = {b.name: b for b in (
    Baseline("logistic_regression", _logreg, "C=1, L2, lbfgs", 0.842, ("logreg", "lr")),
    Baseline("decision_tree", _tree, "entropy, max_depth=100", 0.789, ("tree", "dt")),
    Baseline("random_forest", _forest, "100 trees, entropy, max_depth=100", 0.873, ("forest", "rf")),
    Baseline("svm", _svm, "RBF kernel, C=10", 0.897, ("svc",)),
    Baseline("naive_bayes", _nb, "Gaussian", 0.511, ("nb", "gnb", "gaussian_nb")),
)}


def resolve_names(names: Sequence[str] | str | None) -> list[str]:
    """Canonical baseline names from names or aliases (comma-separated string allowed); None -> all."""
    if names is None or names == "all" or names == ["all"]:
        return list(BASELINES)
    if isinstance(names, str):
        names = [n for n in names.split(",") if n]
    out = []
    for n in names:
        key = n.strip().lower().replace("-", "_")
        match = next((b.name for b in BASELINES.values() if key == b.name or key in b.aliases), None)
        if match is None:
            valid = ", ".join(f"{b.name} ({'/'.join(b.aliases)})" for b in BASELINES.values())
            raise ConfigError(f"unknown baseline '{n}'; choose from {valid}")
        out.append(match)
    return out


@dataclass
class BaselineResult:
    model: str
    settings: str
    train_images: int
    test_accuracy: float
    paper_accuracy: float | None  # the benchmark's figure, on Fashion-MNIST only (None on any other data)
    fit_s: float
    predict_s: float

    def row(self) -> dict[str, Any]:
        return asdict(self)


def features(train: ImageTensors, test: ImageTensors) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Flattened pixels standardised with the training set's statistics (the benchmark's ``StandardScaler``;
    it matters for Gaussian naive Bayes, whose variance smoothing is relative to the largest variance)."""
    from sklearn.preprocessing import StandardScaler

    x = train.images.reshape(len(train), -1).numpy().astype(np.float32)
    xt = test.images.reshape(len(test), -1).numpy().astype(np.float32)
    scaler = StandardScaler().fit(x)
    return scaler.transform(x), train.labels.numpy(), scaler.transform(xt), test.labels.numpy()


def run_baselines(train: ImageTensors, test: ImageTensors, names: Sequence[str] | str | None = None, *,
                  limit: int | None = None, limits: dict[str, int] | None = None, seed: int = 0,
                  on_result: Callable[[BaselineResult], None] | None = None, dataset: str = "fashion-mnist"
                  ) -> list[BaselineResult]:
    """Fit each baseline on ``train`` (optionally a seeded subset of ``limit`` images; ``limits`` per
    model) and measure test accuracy, fit time and predict time. The benchmark's published accuracy comes
    along only when ``dataset`` is Fashion-MNIST, the data it was measured on."""
    x_all, y_all, x_test, y_test = features(train, test)
    results = []
    for name in resolve_names(names):
        n = min(x for x in (limit, (limits or {}).get(name), len(y_all)) if x)
        idx = np.random.default_rng(seed).permutation(len(y_all))[:n] if n < len(y_all) else slice(None)
        est = BASELINES[name].build(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # lbfgs ConvergenceWarning at the benchmark's iteration cap
            t0 = time.perf_counter()
            est.fit(x_all[idx], y_all[idx])
            t1 = time.perf_counter()
            pred = est.predict(x_test)
            t2 = time.perf_counter()
        r = BaselineResult(name, BASELINES[name].settings, int(n), float((pred == y_test).mean()),
                           BASELINES[name].paper if dataset == "fashion-mnist" else None, round(t1 - t0, 2),
                           round(t2 - t1, 2))
        results.append(r)
        if on_result:
            on_result(r)
    return results


# --- the `dcv baseline` job -----------------------------------------------------------------------


@dataclass
class BaselineConfig(RunConfig, ImageDataConfig):
    """Baselines: which scikit-learn models, on how many images."""

    models: str = opt("all", "comma-separated: logistic_regression (lr), decision_tree (dt), random_forest (rf), "
                             "svm, naive_bayes (nb); or all")
    svm_limit: int | None = opt(10_000, "train the SVM on at most this many images (its cost grows ~quadratically)")


def baseline(cfg: BaselineConfig, run_dir: Path | None = None,
             on_result: Callable[[BaselineResult], None] | None = None) -> tuple[Path, list[BaselineResult]]:
    """Run the baselines on the configured dataset's train/test split; writes ``results.json``/``.csv``."""
    names = resolve_names(cfg.models)
    splits = cfg.load_splits(cfg.seed)
    if splits.test is None or not isinstance(splits.train, ImageTensors) or not isinstance(splits.test, ImageTensors):
        raise DataError(f"{cfg.data}: baselines need an in-memory dataset with a test split (e.g. fashion-mnist, "
                        "or a folder with train/ and test/)")
    run_dir = run_dir or new_run_dir(Path(cfg.project) / "baseline", cfg.name)
    write_yaml(run_dir / "config.yaml", to_dict(cfg))
    limits = {"svm": cfg.svm_limit} if cfg.svm_limit else {}
    results = run_baselines(splits.train, splits.test, names, limits=limits, seed=cfg.seed, on_result=on_result,
                            dataset=splits.name)
    write_json(run_dir / "results.json", [r.row() for r in results])
    write_csv(run_dir / "results.csv", [r.row() for r in results])
    return run_dir, results
