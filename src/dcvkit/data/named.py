"""Named datasets in MNIST's IDX format: ``fashion-mnist`` and ``mnist``.

Files are looked up, in order, in ``--data-dir``, ``$DCV_DATA``, ``~/.cache/dcvkit`` and
``/usr/share/datasets/<name>/`` (Debian's ``dataset-fashion-mnist`` installs there). Each folder may hold
the files directly or in a ``<name>/`` subfolder, gzipped or not. Nothing is fetched unless the user asks
(``download=True``); a download is checked against the official MD5 sums before it is kept.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch

from dcvkit.data.core import ImageTensors
from dcvkit.data.idx import read_idx
from dcvkit.errors import DataError
from dcvkit.io import atomic_write


@dataclass(frozen=True)
class IdxDataset:
    name: str
    classes: tuple[str, ...]
    base_urls: tuple[str, ...]
    md5: dict[str, str]  # official MD5 of each .gz file

    def files(self, split: str) -> tuple[str, str]:
        prefix = "train" if split == "train" else "t10k"
        return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


NAMED: dict[str, IdxDataset] = {
    "fashion-mnist": IdxDataset(
        name="fashion-mnist",
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        base_urls=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        md5={
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    ),
    "mnist": IdxDataset(
        name="mnist",
        classes=tuple(str(i) for i in range(10)),
        base_urls=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        md5={
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    ),
}
ALIASES = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist", "fmnist": "fashion-mnist"}


def canonical_name(name: str) -> str | None:
    key = name.lower()
    key = ALIASES.get(key, key)
    return key if key in NAMED else None


def search_dirs(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Where ``name`` is looked for, in order."""
    roots: list[Path] = []
    if data_dir:
        roots.append(Path(data_dir))
    if os.environ.get("DCV_DATA"):
        roots.append(Path(os.environ["DCV_DATA"]))
    roots.append(Path.home() / ".cache" / "dcvkit")
    dirs = [d for r in roots for d in (r / name, r)]
    dirs.append(Path("/usr/share/datasets") / name)
    return dirs


def _find_file(folder: Path, stem: str) -> Path | None:
    for cand in (folder / f"{stem}.gz", folder / stem):
        if cand.is_file():
            return cand
    return None


def find(name: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """The first folder that holds all four IDX files of ``name``, or None."""
    ds = NAMED[name]
    stems = [*ds.files("train"), *ds.files("test")]
    for folder in search_dirs(name, data_dir):
        if all(_find_file(folder, s) for s in stems):
            return folder
    return None


def md5sum(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(name: str, data_dir: str | os.PathLike | None = None) -> Path:
    """Fetch ``name`` from its official source into ``data_dir`` (or ``$DCV_DATA``, or
    ``~/.cache/dcvkit``)/``name``, verifying each file's MD5; returns the folder."""
    ds = NAMED[name]
    root = Path(data_dir or os.environ.get("DCV_DATA") or Path.home() / ".cache" / "dcvkit")
    dest = root / name
    for fname, md5 in ds.md5.items():
        target = dest / fname
        if target.is_file() and md5sum(target) == md5:
            continue
        errors = []
        for base in ds.base_urls:
            try:
                with urllib.request.urlopen(base + fname, timeout=60) as r:  # noqa: S310 (fixed https/http URLs)
                    payload = r.read()
            except OSError as e:
                errors.append(f"{base}: {e}")
                continue
            got = hashlib.md5(payload, usedforsecurity=False).hexdigest()
            if got != md5:
                errors.append(f"{base}{fname}: checksum {got} != expected {md5}")
                continue
            atomic_write(target, payload)
            break
        else:
            raise DataError(f"{name}: download of {fname} failed ({'; '.join(errors)})")
    return dest


def load(name: str, data_dir: str | os.PathLike | None = None, *, download_ok: bool = False
         ) -> tuple[ImageTensors, ImageTensors]:
    """(train, test) of a named IDX dataset as in-memory uint8 tensors of shape (N, 1, 28, 28)."""
    folder = find(name, data_dir)
    if folder is None and download_ok:
        folder = download(name, data_dir)
    if folder is None:
        where = ", ".join(["--data-dir", "$DCV_DATA", "~/.cache/dcvkit", f"/usr/share/datasets/{name}"])
        hint = "install the Debian package dataset-fashion-mnist (make setup), " if name == "fashion-mnist" else ""
        raise DataError(
            f"dataset '{name}' not found (looked in {where}); {hint}pass --data-dir DIR or add --download"
        )
    ds = NAMED[name]
    parts = []
    for split in ("train", "test"):
        img_stem, lab_stem = ds.files(split)
        img_path, lab_path = _find_file(folder, img_stem), _find_file(folder, lab_stem)
        images, labels = read_idx(img_path), read_idx(lab_path)  # type: ignore[arg-type]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(
                f"{img_path}: {images.shape} images do not match {labels.shape} labels in {lab_path}"
            )
        if labels.size and int(labels.max()) >= len(ds.classes):
            raise DataError(f"{lab_path}: label {int(labels.max())} outside 0..{len(ds.classes) - 1}")
        parts.append(ImageTensors(
            torch.from_numpy(images.copy()).unsqueeze(1),
            torch.from_numpy(labels.astype("int64")),
            list(ds.classes),
        ))
    return parts[0], parts[1]
