"""Datasets: named IDX datasets (``fashion-mnist``, ``mnist``), generated clips (``moving-fashion-mnist``),
image folders, FashionScenes and the annotation formats (COCO, YOLO, VOC, mask folders), split and batched.

>>> from dcvkit.data import load_dataset
>>> splits = load_dataset("fashion-mnist", val_split=0.1)   # doctest: +SKIP
>>> splits.summary()                                         # doctest: +SKIP
'fashion-mnist: train 54,000, val 6,000, test 10,000 images, 1x28x28, 10 classes'

Where things are: :mod:`~dcvkit.data.splits` (every task's train / val / test splits, formats recognised),
:mod:`~dcvkit.data.core` (in-memory tensors, loaders, seeded splits and subsets), :mod:`~dcvkit.data.folders`
(image folders, streamed when large), :mod:`~dcvkit.data.named` (IDX datasets on disk),
:mod:`~dcvkit.data.scenes` (FashionScenes), :mod:`~dcvkit.data.annotations` with ``coco``, ``yolo``, ``voc``
(detection formats), :mod:`~dcvkit.data.detection` and :mod:`~dcvkit.data.masks` (their tensors).
"""

from __future__ import annotations

from dcvkit.data.core import DataSplits, ImageTensors, TensorLoader
from dcvkit.data.folders import ImageFiles
from dcvkit.data.splits import list_datasets, load_dataset

__all__ = ["load_dataset", "DataSplits", "ImageTensors", "ImageFiles", "TensorLoader", "list_datasets"]
