"""``dcv bench tune``: TPE vs random search vs a grid on one small fixed problem, the same number of trials.

Each sampler runs its own ``dcv tune`` study (no pruning, so every trial trains to the end) over the same
search space, data, model and epochs; the table gives the best validation accuracy each found and the trial
that found it, and ``best_so_far.png`` the best value against the number of trials. The default space has two
parameters at 4 grid points each, so 16 trials are exactly the full grid (TPE starts with 10 random trials,
Optuna's default, then models the results).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from dcvkit.config import RunConfig, opt, to_dict
from dcvkit.io import atomic_write, new_run_dir, write_json, write_yaml
from dcvkit.viz.report import markdown_table

SPACE = {"lr": {"type": "float", "low": 1e-3, "high": 0.3, "log": True},
         "dropout": {"type": "float", "low": 0.0, "high": 0.5}}


@dataclass
class BenchTuneConfig(RunConfig):
    """Benchmark: samplers, trials, and the small problem every trial trains."""

    samplers: str = opt("tpe,random,grid", "samplers to compare")
    trials: int = opt(16, "trials per sampler (16 = the full 4 x 4 grid of the default space; TPE's first 10 are "
                          "random, Optuna's default)")
    grid_points: int = opt(4, "grid sampler: points per range")
    space: str | None = opt(None, "search space YAML (default: lr log 1e-3..0.3, dropout 0..0.5)")
    fixed: str = opt("model=cnn_small, epochs=2, limit=5000", "the problem: task options every trial shares")
    data_dir: str | None = opt(None, "folder holding Fashion-MNIST's files")
    progress: bool = opt(False, "show each trial's progress bars")


def bench_tune(cfg: BenchTuneConfig, out_dir: Path | None = None, log: Callable[[str], None] = print
               ) -> dict[str, Any]:
    from dcvkit.config import load_yaml
    from dcvkit.tune import TuneConfig, tune

    out_dir = out_dir or new_run_dir(Path(cfg.project) / "bench" / "tune", cfg.name)
    write_yaml(out_dir / "config.yaml", to_dict(cfg))
    space_path = out_dir / "space.yaml"
    write_yaml(space_path, load_yaml(cfg.space) if cfg.space else SPACE)
    fixed = cfg.fixed + (f", data_dir={cfg.data_dir}" if cfg.data_dir else "")
    rows, curves = [], {}
    for sampler in [s.strip() for s in cfg.samplers.split(",") if s.strip()]:
        log(f"--- {sampler} ---")
        r = tune(TuneConfig(space=str(space_path), fixed=fixed, trials=cfg.trials, sampler=sampler, pruner="none",
                            grid_points=cfg.grid_points, seed=cfg.seed, project=str(out_dir), name=sampler,
                            progress=cfg.progress), log=log)
        trials = sorted((t for t in r.study.trials if t.value is not None), key=lambda t: t.number)
        best, curve, at = float("-inf"), [], None
        for t in trials:
            if t.value > best:
                best, at = t.value, t.number + 1
            curve.append(best)
        curves[sampler] = curve
        rows.append({"sampler": sampler, "trials": len(trials), "best_val_acc": round(best, 4),
                     "found_at_trial": at,
                     "median_val_acc": round(sorted(t.value for t in trials)[len(trials) // 2], 4),
                     "best_params": {k: round(v, 5) if isinstance(v, float) else v
                                     for k, v in r.study.best_params.items()}})
    ranked = sorted(rows, key=lambda r: (-r["best_val_acc"], r["found_at_trial"]))
    verdict = (f"best after {cfg.trials} trials: " + ", ".join(f"{r['sampler']} {r['best_val_acc']:.4f} (trial "
                                                                  f"{r['found_at_trial']})" for r in ranked))
    results = {"fixed": fixed, "space": load_yaml(space_path), "rows": rows, "curves": curves, "verdict": verdict,
               "out_dir": str(out_dir)}
    write_json(out_dir / "bench.json", results)
    atomic_write(out_dir / "table.md", markdown_table(table_rows(results)) + "\n" + verdict + "\n")
    plot_curves(curves, out_dir / "best_so_far.png")
    return results


def table_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"sampler": r["sampler"], "trials": r["trials"], "best val_acc": f"{r['best_val_acc']:.4f}",
             "found at trial": r["found_at_trial"], "median trial": f"{r['median_val_acc']:.4f}",
             "best params": ", ".join(f"{k}={v}" for k, v in r["best_params"].items())} for r in results["rows"]]


def plot_curves(curves: dict[str, list[float]], path: Path) -> None:
    from dcvkit.viz.plots import plt, save_figure

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, c in curves.items():
        ax.plot(range(1, len(c) + 1), c, marker="o", label=name)
    ax.set_xlabel("trials")
    ax.set_ylabel("best validation accuracy so far")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("samplers on the same problem", fontsize=10)
    save_figure(fig, path)
