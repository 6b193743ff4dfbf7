"""``dcv quickstart``: what ``make demo`` runs."""

from __future__ import annotations

import argparse

from dcvkit.config import add_config_arguments, resolve


def build(p: argparse.ArgumentParser, command: str) -> None:
    from dcvkit.experiments.quickstart import QuickstartConfig

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.description = (
        "Train the prototypical CNN on Fashion-MNIST, run the classical baselines on the same split and write "
        "runs/quickstart/<name>/report.html: comparison table, training curves, confusion matrix, sample "
        "predictions. About 6 minutes on 2 CPU cores.\nexample: dcv quickstart --epochs 3 --baselines nb,lr")
    add_config_arguments(p, QuickstartConfig)
    p.set_defaults(func=cmd_quickstart)


def cmd_quickstart(args: argparse.Namespace) -> int:
    from dcvkit.cli.output import out, print_table
    from dcvkit.experiments.quickstart import QuickstartConfig, quickstart

    result = quickstart(resolve(QuickstartConfig, args))
    print_table(result.rows, title="test accuracy, same split")
    out.print(f"report: {result.report}")
    return 0
