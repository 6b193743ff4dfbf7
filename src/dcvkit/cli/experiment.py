"""``dcv experiment dropout|augmentation|lr-annealing|plain-vs-residual|transfer|kl-annealing|gan-loss``: the
course's claims, measured."""

from __future__ import annotations

import argparse

from dcvkit.config import add_config_arguments, resolve


def build(p: argparse.ArgumentParser, command: str) -> None:
    from dcvkit.experiments import experiments

    p.description = ("Each experiment trains variants that differ in one thing and writes "
                     "runs/experiment/<name>/<run>/{results.json, <name>.png, verdict.md}; the verdict is computed "
                     "from the measured numbers.")
    kinds = p.add_subparsers(dest="experiment", metavar="NAME", required=True)
    for name, (cfg_cls, _, summary) in experiments().items():
        e = kinds.add_parser(name, help=summary, description=f"{summary}.\nexample: dcv experiment {name} --seed 1",
                             formatter_class=argparse.RawDescriptionHelpFormatter)
        add_config_arguments(e, cfg_cls)
        e.set_defaults(func=cmd_experiment, experiment_name=name)


def cmd_experiment(args: argparse.Namespace) -> int:
    from dcvkit.cli.output import err, out, print_table
    from dcvkit.experiments import experiments

    cfg_cls, fn, _ = experiments()[args.experiment_name]
    exp = fn(resolve(cfg_cls, args), log=lambda s: err.print(s))
    rows = [{k: v for k, v in r.items() if not isinstance(v, list)} for r in exp.rows]
    print_table(rows, title=exp.name)
    out.print(f"{exp.verdict}\nwrote {exp.out_dir}/results.json, {exp.figure.name}, verdict.md")
    return 0
