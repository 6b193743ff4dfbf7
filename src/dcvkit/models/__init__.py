"""Models for every task behind one registry: ``create_model(name, **kwargs)``, ``list_models(task)``."""

from dcvkit.models.registry import create_model, list_models, model_entry, register_model

__all__ = ["create_model", "list_models", "model_entry", "register_model"]
