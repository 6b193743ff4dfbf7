"""Jobs that combine tasks and measure the course's claims (the quickstart comparison first).

:func:`experiments` is the one list ``dcv experiment`` shows: the training claims (claims.py) and the
generative ones (generative.py)."""

from __future__ import annotations

from typing import Any


def experiments() -> dict[str, tuple[type, Any, str]]:
    """name -> (config class, function(cfg, log) -> Experiment, one-line summary)."""
    from dcvkit.experiments import claims, generative

    return {**claims.EXPERIMENTS, **generative.EXPERIMENTS}
