"""What every task's ``train`` shares: resuming a run with its saved config."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

from dcvkit.config import from_dict
from dcvkit.errors import CheckpointError
from dcvkit.io import load_checkpoint

C = TypeVar("C")


def resume_config(cls: type[C], cfg: C) -> tuple[C, dict[str, Any], Path]:
    """The saved config of the run to resume (``cfg.resume``), with the explicitly changed options of
    ``cfg`` on top; returns (config, checkpoint, run directory)."""
    path = Path(cfg.resume)  # type: ignore[attr-defined]
    ckpt_path = path / "last.pt" if path.is_dir() else path
    ckpt = load_checkpoint(ckpt_path)
    if "config" not in ckpt or "optimizer" not in ckpt:
        raise CheckpointError(f"{ckpt_path}: not a resumable dcvkit checkpoint (no optimizer state)")
    defaults = cls()
    changed = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)  # type: ignore[arg-type]
               if getattr(cfg, f.name) != getattr(defaults, f.name) and f.name != "resume"}
    saved = from_dict(cls, ckpt["config"], where=str(ckpt_path))
    resumed = from_dict(cls, changed, base=saved, where="resume options")
    resumed.resume = str(cfg.resume)  # type: ignore[attr-defined]
    return resumed, ckpt, ckpt_path.parent


__all__ = ["resume_config"]
