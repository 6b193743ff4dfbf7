"""``dcv models``: the registry."""

from __future__ import annotations

import argparse


def build(p: argparse.ArgumentParser, command: str) -> None:
    from dcvkit.tasks import TASKS

    families = sorted({t.family for t in TASKS.values()})
    p.description = "Every model `--model` accepts, with its family (the task it serves), size and summary."
    p.add_argument("--task", choices=families, help=f"only this family ({', '.join(families)})")
    p.add_argument("pattern", nargs="?", default="*", help="glob on names, e.g. 'cnn*'")
    p.set_defaults(func=cmd_models)


def cmd_models(args: argparse.Namespace) -> int:
    from dcvkit.cli.output import print_table
    from dcvkit.errors import DcvError
    from dcvkit.models import create_model, list_models, model_entry

    rows = []
    for name in list_models(args.task, args.pattern):
        e = model_entry(name)
        try:
            params = f"{sum(p.numel() for p in create_model(name).parameters()):,}"
        except DcvError:  # an optional dependency is missing (the summary says which)
            params = "-"
        rows.append({"model": name, "task": e.task, "parameters": params, "summary": e.summary})
    print_table(rows)
    return 0
