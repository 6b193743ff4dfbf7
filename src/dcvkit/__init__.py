"""dcvkit: deep computer vision on PyTorch.

>>> import dcvkit
>>> model = dcvkit.create_model("cnn", num_classes=10, in_chans=1)
>>> sorted(dcvkit.list_models("classify"))[:2]
['cnn', 'cnn_small']

The names below are imported on first use, so ``import dcvkit`` (and ``dcv --help``) stays light: torch comes
in with the first model, dataset or task.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_LAZY = {
    "create_model": "dcvkit.models", "list_models": "dcvkit.models", "load_dataset": "dcvkit.data",
    "train": "dcvkit.tasks.classify", "evaluate": "dcvkit.tasks.classify", "predict": "dcvkit.tasks.classify",
    "ClassifyConfig": "dcvkit.tasks.configs", "TASKS": "dcvkit.tasks", "get_task": "dcvkit.tasks",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dcvkit' has no attribute '{name}'")


__all__ = [*_LAZY, "__version__"]
