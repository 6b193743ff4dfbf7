"""Benchmarks: comparisons run side by side in one process, reported as ratios (machines are noisy)."""

from __future__ import annotations

from dcvkit.errors import ConfigError


def run_pairs(spec: str | None) -> dict[str, str]:
    """``--runs model=RUN_DIR,...`` -> {model: run dir} (the benches that load runs instead of training)."""
    out = {}
    for part in (spec or "").split(","):
        if part.strip():
            name, sep, path = part.partition("=")
            if not sep or not path.strip():
                raise ConfigError(f"--runs '{part}': give model=RUN_DIR")
            out[name.strip()] = path.strip()
    return out


__all__ = ["run_pairs"]
