"""Devices, seeds and determinism."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from dcvkit.errors import ConfigError


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> cuda when available, else cpu. Asking for cuda without one is a clear error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available here; use --device cpu or auto")
    try:
        return torch.device(device)
    except RuntimeError:
        raise ConfigError(f"--device {device}: not a device; use auto, cpu or cuda") from None


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch; optionally restrict torch to deterministic algorithms."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        # warn_only: an op without a deterministic kernel (on CUDA, e.g. adaptive average pooling's backward)
        # warns, naming itself, instead of stopping the run
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's random draws (augmentation, dropout), different on each distributed rank."""
    from dcvkit.engine.distributed import world

    return seed * 1_000_003 + epoch + 7919 * world().rank


def rng_state() -> dict[str, object]:
    """Every RNG state a training step can consume, as tensors (checkpoint-safe)."""
    state: dict[str, object] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, object]) -> None:
    torch.set_rng_state(state["torch"])  # type: ignore[arg-type]
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])  # type: ignore[arg-type]
