"""dcvkit: deep computer vision on PyTorch.

>>> import dcvkit
>>> model = dcvkit.create_model("cnn", num_classes=10, in_chans=1)
>>> sorted(dcvkit.list_models("classify"))[:2]
['cnn', 'cnn_small']
"""

from dcvkit.data import load_dataset
from dcvkit.models import create_model, list_models

__version__ = "0.1.0"


def __getattr__(name: str):
    # The task API is imported lazily so `import dcvkit` stays light.
    if name in ("train", "evaluate", "predict", "ClassifyConfig"):
        from dcvkit.tasks import classify

        return getattr(classify, name)
    raise AttributeError(name)


__all__ = ["create_model", "list_models", "load_dataset", "train", "evaluate", "predict", "ClassifyConfig",
           "__version__"]
