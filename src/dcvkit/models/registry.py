"""One registry of models for every task, keyed by the builder's name (timm's ``@register_model``).

>>> from dcvkit.models import create_model, list_models
>>> m = create_model("cnn_tiny", num_classes=10, in_chans=1)
>>> "cnn" in list_models("classify")
True
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

from dcvkit.errors import ConfigError, ModelNotFoundError


@dataclass(frozen=True)
class ModelEntry:
    """A registered builder. Its family (``task``: classify, segment, detect, generate) is where ``--model``
    finds it; the class it returns (its return annotation) carries what the family says about its models
    (a detector's kind and training defaults, a generator's trainer...), read before any model is built."""

    name: str
    task: str
    builder: Callable[..., nn.Module]

    @property
    def summary(self) -> str:
        doc = inspect.getdoc(self.builder) or ""
        return doc.splitlines()[0] if doc else ""

    @property
    def options(self) -> frozenset[str]:
        """The keyword arguments the builder names (those it passes on through ``**kwargs`` not included)."""
        params = inspect.signature(self.builder).parameters.values()
        return frozenset(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))

    @property
    def model_class(self) -> type[nn.Module]:
        """The class of the models the builder returns, from its return annotation (``-> YOLO``)."""
        ann = self.builder.__annotations__.get("return")
        if isinstance(ann, str):  # postponed annotations: resolved in the builder's module
            try:
                ann = eval(ann, getattr(self.builder, "__globals__", {}))  # noqa: S307 (an annotation of our own)
            except Exception:
                ann = None
        if not (isinstance(ann, type) and issubclass(ann, nn.Module)):
            raise ConfigError(f"model '{self.name}': its builder must say which class it returns, e.g. "
                              f"def {self.name}(...) -> MyDetector")
        return ann


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(task: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a builder under its function name for ``task`` (classify, segment, detect, generate)."""

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if fn.__name__ in _REGISTRY:
            raise ValueError(f"model '{fn.__name__}' is already registered")
        _REGISTRY[fn.__name__] = ModelEntry(fn.__name__, task, fn)
        return fn

    return deco


def _entry(name: str) -> ModelEntry:
    _import_all()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ModelNotFoundError(f"unknown model '{name}'; {hint}see `dcv models` for the {len(_REGISTRY)} models")
    return _REGISTRY[name]


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model: ``create_model("cnn", num_classes=10, in_chans=1)``."""
    entry = _entry(name)
    try:
        model = entry.builder(**kwargs)
    except TypeError as e:  # raised by the builder, or by the constructor its **kwargs feed
        if "unexpected keyword argument" not in str(e):
            raise
        options = [p for p in inspect.signature(entry.builder).parameters if p != "kwargs"]
        raise ConfigError(f"model '{name}' takes no option {str(e).split('argument')[-1].strip()}; "
                          f"its options: {', '.join(options)}") from None
    model.model_name = name  # type: ignore[assignment]
    return model


def model_entry(name: str) -> ModelEntry:
    return _entry(name)


def list_models(task: str | None = None, pattern: str = "*") -> list[str]:
    _import_all()
    return sorted(n for n, e in _REGISTRY.items()
                  if (task is None or e.task == task) and fnmatch.fnmatch(n, pattern))


def _import_all() -> None:
    # Model files register themselves on import; importing the task packages here means callers
    # never see a half-filled registry.
    from dcvkit.models import classify, detect, detect3d, generate, pose, scenegraph, segment  # noqa: F401
