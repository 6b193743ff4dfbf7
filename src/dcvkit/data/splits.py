"""Every task's data as train / val / test splits (:class:`~dcvkit.data.core.DataSplits`), with the format of a
user's dataset recognised here, once:

* :func:`load_dataset`: classification data: named IDX datasets, generated clips, image folders;
* :func:`scene_splits`: FashionScenes for segmentation (class masks) or detection (boxes): train and
  validation scenes from Fashion-MNIST's training items, test scenes from its test items;
* :func:`segmentation_splits`: scenes, a folder of ``images/`` + ``masks/``, or (reconstruction) any
  classification data;
* :func:`detection_splits`: scenes, or COCO / YOLO / VOC annotations, with a YOLO data YAML's own val and
  test entries.

``--limit`` is one function, :func:`~dcvkit.data.core.subset_limit` (a seeded random subset of the training
images); generated scenes are generated that many instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from dcvkit.data import named
from dcvkit.data.core import DataSplits, parse_classes, per_class_subset, select_classes, split_train_val, subset_limit
from dcvkit.data.folders import load_folder, split_folders
from dcvkit.errors import DataError

GENERATED = ("moving-fashion-mnist",)
SCENES = ("scenes", "fashion-scenes")
FIGURES = ("figures",)


def list_datasets() -> list[str]:
    return sorted([*named.NAMED, *GENERATED])


def load_dataset(
    spec: str | os.PathLike,
    *,
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
    val_split: float = 0.1,
    seed: int = 0,
    limit: int | None = None,
    img_size: int | tuple[int, int] | None = None,
    channels: int | None = None,
    skip_bad: bool = False,
    max_memory_mb: float = 2048,
    classes: str | None = None,
    per_class: int | None = None,
) -> DataSplits:
    """Load a named dataset or an image folder and split it.

    Args:
        spec: ``fashion-mnist``, ``mnist``, ``moving-fashion-mnist`` (clips, see
            :mod:`dcvkit.data.sequences`), or a folder path (class subfolders, class-in-file-name, or
            ``train/``, ``val/``, ``test/`` subfolders of either).
        val_split: fraction of the training images held out for validation (a seeded random split),
            unless the folder has its own ``val/``.
        limit: keep a seeded random subset of this many training images (for quick runs).
        img_size, channels: resize / convert folder images (default: the first image's).
        classes: keep only these classes (``"0-4"``, ``"5,7"``, names), relabelled in that order.
        per_class: keep a seeded random subset of this many training images per class (before the
            validation split), e.g. 50 for a few-shot transfer-learning run.
    """
    if not 0 <= val_split < 1:
        raise DataError(f"--val-split must be in [0, 1), got {val_split}")
    size = (img_size, img_size) if isinstance(img_size, int) else (tuple(img_size) if img_size else None)

    def prepare(train, *others):
        """Class selection on every split, then the per-class and total limits on ``train`` (the
        validation split, when it is drawn from ``train``, comes after)."""
        if classes:
            keep = parse_classes(classes, list(train.classes))
            train, *others = (select_classes(d, keep) if d is not None else None for d in (train, *others))
        if per_class:
            train = per_class_subset(train, per_class, seed)
        return (subset_limit(train, limit, seed), *others)

    name = named.canonical_name(str(spec))
    generated = str(spec).lower() in GENERATED
    if (name is not None or generated) and not Path(spec).is_dir():
        train, test = named.load(name or "fashion-mnist", data_dir, download_ok=download)
        if generated:
            from dcvkit.data.sequences import moving_fashion_mnist

            name = str(spec).lower()
            train, test = moving_fashion_mnist(train, test)
        if (size and size != train.img_size) or (channels and channels != train.channels):
            raise DataError(f"{name} images are {train.channels}x{train.img_size[0]}x{train.img_size[1]}; "
                            "--img-size/--channels do not apply")
        train, test = prepare(train, test)
        train, val = split_train_val(train, val_split, seed)
        return DataSplits(name, list(train.classes), train, val, test)

    root = Path(spec)
    if not root.exists():
        known = ", ".join(list_datasets())
        raise DataError(f"{spec}: no such folder and not a named dataset ({known})")
    if not root.is_dir():
        raise DataError(f"{spec}: expected a folder of images (or a named dataset), got a file")
    kw = dict(channels=channels, img_size=size, skip_bad=skip_bad, max_memory_mb=max_memory_mb)
    splits = split_folders(root)
    if splits:
        train = load_folder(splits["train"], **kw)
        kw.update(classes=train.classes, channels=train.channels, img_size=train.img_size)
        val = load_folder(splits["val"], **kw) if "val" in splits else None
        test = load_folder(splits["test"], **kw) if "test" in splits else None
        train, val, test = prepare(train, val, test)
        if val is None:
            train, val = split_train_val(train, val_split, seed)
    else:
        train, = prepare(load_folder(root, **kw))
        train, val = split_train_val(train, val_split, seed)
        test = None
    return DataSplits(root.name, list(train.classes), train, val, test)


def scene_splits(kind: str, *, scenes: int, test_scenes: int, size: int | None = None, seed: int = 0,
                 val_split: float = 0.1, limit: int | None = None, data_dir: str | os.PathLike | None = None,
                 download: bool = False) -> DataSplits:
    """FashionScenes as ``kind`` = ``masks`` (:class:`~dcvkit.data.masks.MaskTensors`, classes with the
    background) or ``boxes`` (:class:`~dcvkit.data.detection.DetectionTensors`, the item classes): ``scenes``
    training scenes (at most ``limit``; the validation split comes out of them) from Fashion-MNIST's training
    items, ``test_scenes`` from its test items, ``size`` x ``size`` pixels (default 128). ``seed`` is the
    scenes' own (the scenes and their split depend on it alone)."""
    from dcvkit.data.scenes import SceneConfig, fashion_scenes

    if kind not in ("masks", "boxes"):
        raise ValueError(f"scene_splits: kind is masks or boxes, not {kind!r}")
    items_train, items_test = named.load("fashion-mnist", data_dir, download_ok=download)
    sc = SceneConfig(size=size or 128)
    n_train = min(scenes, limit) if limit else scenes  # generated data: fewer scenes, not a subset of them
    parts = [fashion_scenes(items_train, n_train, sc, seed=seed),
             fashion_scenes(items_test, test_scenes, sc, seed=seed + 1) if test_scenes else None]
    if kind == "masks":
        from dcvkit.data.masks import MaskTensors

        train, test = (MaskTensors(s.images, s.masks, s.classes) if s is not None else None for s in parts)
    else:
        from dcvkit.data.detection import from_scenes

        train, test = (from_scenes(s) if s is not None else None for s in parts)
    train, val = split_train_val(train, val_split, seed)
    return DataSplits("fashion-scenes", list(train.classes), train, val, test)


def segmentation_splits(data: str, *, target: str = "mask", val_split: float = 0.1, seed: int = 0,
                        img_size: int | None = None, limit: int | None = None, scenes: int = 8000,
                        test_scenes: int = 1000, scene_seed: int = 0, data_dir: str | os.PathLike | None = None,
                        download: bool = False, memory_mb: float = 2048) -> DataSplits:
    """``data`` = ``scenes`` (FashionScenes with class masks), a folder with ``images/`` + ``masks/`` (or
    ``train/``, ``val/``, ``test/`` folders of them), or for ``target="image"`` (reconstruction) anything
    :func:`load_dataset` reads."""
    if data.lower() in SCENES:
        return scene_splits("masks", scenes=scenes, test_scenes=test_scenes, size=img_size, seed=scene_seed,
                            val_split=val_split, limit=limit, data_dir=data_dir, download=download)
    root = Path(data)
    if root.is_dir() and any((root / d / "images").is_dir() for d in (".", "train", "val", "test")):
        from dcvkit.data.masks import load_segmentation

        return load_segmentation(root, val_split, seed, img_size, limit=limit, memory_mb=memory_mb)
    if target == "mask":
        hint = "a FashionScenes dataset" if named.canonical_name(data) else "images/ and masks/"
        raise DataError(f"{data}: segmentation needs masks: use --data scenes or a folder with images/ and "
                        f"masks/ ({hint}); or reconstruct images with --target image")
    return load_dataset(data, data_dir=data_dir, download=download, val_split=val_split, seed=seed, limit=limit,
                        img_size=img_size, max_memory_mb=memory_mb)


def detection_splits(data: str, *, test_data: str | None = None, val_split: float = 0.1, seed: int = 0,
                     img_size: int | None = None, limit: int | None = None, scenes: int = 4000,
                     test_scenes: int = 500, scene_seed: int = 0, data_dir: str | os.PathLike | None = None,
                     download: bool = False, memory_mb: float = 2048) -> DataSplits:
    """``data`` = ``scenes`` (FashionScenes with boxes) or annotations in any format
    (:func:`~dcvkit.data.detection.read_annotations`: a COCO .json, a YOLO data .yaml, a VOC folder...). A YOLO
    YAML's ``val`` entry (when it is not its ``train`` entry) is the validation split, else one is drawn from
    the training images; the test split is ``test_data`` (a YAML: its ``test`` entry, else its ``val``) or the
    YAML's ``test`` entry. Images are letterboxed to one size; all splits are decoded into memory when they
    take at most ``memory_mb`` megabytes decoded, else streamed from their files per batch."""
    if data.lower() in SCENES:
        return scene_splits("boxes", scenes=scenes, test_scenes=test_scenes, size=img_size, seed=scene_seed,
                            val_split=val_split, limit=limit, data_dir=data_dir, download=download)
    from dcvkit.data.detection import decoded_mb, detection_files, hold, read_annotations, yaml_names_split

    train = subset_limit(detection_files(read_annotations(data, "train"), img_size), limit, seed)
    size = train.size
    p = Path(data)
    val_entry = yaml_names_split(p, "val", unlike="train")
    if val_entry:
        val = detection_files(read_annotations(p, "val"), size)
    else:
        train, val = split_train_val(train, val_split, seed)
    test = None
    if test_data:
        t = Path(test_data)
        entry = "test" if yaml_names_split(t, "test") or t.suffix.lower() not in (".yaml", ".yml") else "val"
        test = detection_files(read_annotations(t, entry), size)
    elif yaml_names_split(p, "test"):
        test = detection_files(read_annotations(p, "test"), size)
    for name, split in (("test", test), ("val", val)):
        if split is not None and split.classes != train.classes:
            raise DataError(f"{data}: the {name} annotations name classes {split.classes}, the training ones "
                            f"{train.classes}; they must be the same list")
    stream = decoded_mb(train, val, test) > memory_mb
    splits = DataSplits(Path(data).stem, list(train.classes), hold(train, stream), hold(val, stream),
                        hold(test, stream))
    return splits.val_as_test(data) if val_entry else splits  # a YOLO YAML of train and val only


def pose_splits(data: str, *, test_data: str | None = None, val_split: float = 0.1, seed: int = 0,
                img_size: int | None = None, limit: int | None = None, figures: int = 4000, test_figures: int = 500,
                figure_seed: int = 0, data_dir: str | os.PathLike | None = None, download: bool = False,
                progress: bool = False) -> DataSplits:
    """``data`` = ``figures`` (articulated figures: ``figures`` training images from Fashion-MNIST's training
    items, the validation split out of them, ``test_figures`` from its test items) or a COCO keypoints .json /
    YOLO-pose data .yaml (its ``val`` entry the validation split when it has one, ``test_data`` or its ``test``
    entry the test split), letterboxed to one size and held in memory."""
    from dcvkit.data.keypoints import read_pose
    from dcvkit.data.pose import from_annotations, from_figures

    if data.lower() in FIGURES:
        items_train, items_test = named.load("fashion-mnist", data_dir, download_ok=download)
        n = min(figures, limit) if limit else figures
        train = from_figures(items_train, n, img_size or 128, figure_seed, progress)
        test = (from_figures(items_test, test_figures, img_size or 128, figure_seed + 1, progress)
                if test_figures else None)
        train, val = split_train_val(train, val_split, seed)
        return DataSplits("figures", list(train.classes), train, val, test)
    from dcvkit.data.detection import yaml_names_split

    p = Path(data)
    train = subset_limit(from_annotations(read_pose(p, "train"), (img_size, img_size) if img_size else None), limit,
                         seed)
    size = train.img_size
    val_entry = yaml_names_split(p, "val", unlike="train")
    if val_entry:
        val = from_annotations(read_pose(p, "val"), size)
    else:
        train, val = split_train_val(train, val_split, seed)
    test = None
    if test_data:
        t = Path(test_data)
        test = from_annotations(read_pose(t, "test" if yaml_names_split(t, "test") else "val"), size)
    elif yaml_names_split(p, "test"):
        test = from_annotations(read_pose(p, "test"), size)
    for name, split in (("test", test), ("val", val)):
        if split is not None and split.schema.names != train.schema.names:
            raise DataError(f"{test_data or data}: the {name} split's keypoints {list(split.schema.names)} differ "
                            f"from the training split's {list(train.schema.names)}")
    splits = DataSplits(p.stem, list(train.classes), train, val, test)
    return splits.val_as_test(data) if val_entry else splits  # a YOLO-pose YAML of train and val only


def scenegraph_splits(data: str, *, test_data: str | None = None, val_split: float = 0.1, seed: int = 0,
                      img_size: int | None = None, limit: int | None = None, scenes: int = 3000,
                      test_scenes: int = 500, scene_seed: int = 0, data_dir: str | os.PathLike | None = None,
                      download: bool = False, progress: bool = False) -> DataSplits:
    """``data`` = ``scenes`` (graph scenes: ``scenes`` training images from Fashion-MNIST's training items, the
    validation split out of them, ``test_scenes`` from its test items) or a Visual-Genome-like .json (its
    validation split taken out of it; ``test_data`` another such file), letterboxed to one size, in memory."""
    from dcvkit.data import vg
    from dcvkit.data.scenegraph import check_vocabulary, from_annotations, from_graph_scenes

    if data.lower() in SCENES:
        if img_size not in (None, 128):
            raise DataError(f"--img-size {img_size}: graph scenes are drawn at 128 pixels; give --data FILE for "
                            "other sizes")
        items_train, items_test = named.load("fashion-mnist", data_dir, download_ok=download)
        n = min(scenes, limit) if limit else scenes
        train = from_graph_scenes(items_train, n, scene_seed, progress=progress)
        test = from_graph_scenes(items_test, test_scenes, scene_seed + 1, progress=progress) if test_scenes else None
        train, val = split_train_val(train, val_split, seed)
        return DataSplits("graph scenes", list(train.classes), train, val, test)
    p = Path(data)
    train = subset_limit(from_annotations(vg.read(p), (img_size, img_size) if img_size else None), limit, seed)
    train, val = split_train_val(train, val_split, seed)
    test = None
    if test_data:
        test = from_annotations(vg.read(test_data), train.img_size)
        check_vocabulary(test, train.classes, train.predicates, str(test_data))
    return DataSplits(p.stem, list(train.classes), train, val, test)


__all__ = ["load_dataset", "list_datasets", "scene_splits", "segmentation_splits", "detection_splits", "pose_splits",
           "scenegraph_splits",
           "GENERATED", "SCENES", "FIGURES"]
