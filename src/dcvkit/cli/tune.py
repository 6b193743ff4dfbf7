"""``dcv tune``: hyperparameter optimisation on Optuna over any task's ``train``."""

from __future__ import annotations

import argparse

from dcvkit.config import add_config_arguments, resolve


def build(p: argparse.ArgumentParser, command: str) -> None:
    from dcvkit.tune import TuneConfig

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.description = (
        "Optuna study over a task's training options: each trial trains `dcv <task> train` with values from the "
        "search space (--space YAML: float/int with low, high, log, step; categorical with choices) and returns "
        "the best validation metric (--monitor, default the task's). Bad trials are pruned from their per-epoch "
        "metric (--pruner median|hyperband|none). The study is a journal file in the run directory (several "
        "processes on one machine: start more with --resume RUN) or --storage postgresql://... for workers on "
        "several machines. Writes runs/tune/<name>: tune.yaml, study.journal, trials/trial_<n>/ (each a normal run "
        "directory), trials.csv (ranked), best.yaml (runs as is with dcv <task> train --config best.yaml), "
        "study.json, history.png, importances.png, parallel.png. See docs/tuning.md.\n"
        "examples:\n"
        "  dcv tune --fixed 'epochs=3, limit=10000' --trials 20       # classify: lr, dropout, weight decay, batch\n"
        "  dcv tune --space space.yaml --sampler random --pruner hyperband --n-jobs 2\n"
        "  dcv tune --resume runs/tune/exp                               # a second worker on the same study\n"
        "  dcv classify train --config runs/tune/exp/best.yaml")
    add_config_arguments(p, TuneConfig)
    p.set_defaults(func=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    from dcvkit.cli.output import err, out, print_table
    from dcvkit.tune import TuneConfig, tune

    result = tune(resolve(TuneConfig, args), log=lambda s: err.print(s, highlight=False))
    print_table(result.rows[:15], title=f"{len(result.rows)} trials, best first")
    if result.best_config is not None:
        out.print(f"best: trial {result.study.best_trial.number}, {result.study.best_value:.4f}\n"
                  f"wrote {result.run_dir}/trials.csv, best.yaml, study.json and the plots")
    return 0


__all__ = ["build"]
