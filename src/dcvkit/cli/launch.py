"""``dcv <task> train --devices N [--num-nodes M]``: the training processes, started by torch's launcher."""

from __future__ import annotations

import argparse
from typing import Any


def launched(cfg: Any, args: argparse.Namespace) -> int | None:
    """With ``--devices``/``--num-nodes`` above 1 and outside torchrun: run this same command line in the
    training processes (:func:`dcvkit.engine.distributed.launch`) and return their exit code. Otherwise None:
    train in this process (which may itself be one of torchrun's)."""
    if cfg.devices <= 1 and cfg.num_nodes <= 1:
        return None
    from dcvkit.engine import distributed

    if distributed.world().distributed:  # already one of the processes (torchrun, or launched by dcv)
        return None
    return distributed.launch(args.argv, cfg.devices, cfg.num_nodes, cfg.device, cfg.batch_size)
