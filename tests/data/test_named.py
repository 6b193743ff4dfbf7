"""Named datasets: search order, clear errors when missing, checksum-verified download, the real data."""

from __future__ import annotations

import hashlib
import io

import pytest
import torch

from dcvkit.data import load_dataset, named
from dcvkit.errors import DataError


def test_data_dir_comes_first(idx_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("DCV_DATA", str(tmp_path / "elsewhere"))
    assert named.find("fashion-mnist", idx_dir) == idx_dir
    assert named.search_dirs("mnist", idx_dir)[:2] == [idx_dir / "mnist", idx_dir]
    assert named.search_dirs("mnist")[-1].as_posix() == "/usr/share/datasets/mnist"


def test_dcv_data_env(idx_dir, monkeypatch):
    monkeypatch.setenv("DCV_DATA", str(idx_dir))
    splits = load_dataset("fashion-mnist", val_split=0.2)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (480, 120, 200)


def test_missing_dataset_says_what_to_do():
    with pytest.raises(DataError) as e:
        load_dataset("mnist")
    msg = str(e.value)
    for hint in ("--data-dir", "$DCV_DATA", "~/.cache/dcvkit", "/usr/share/datasets/mnist", "--download"):
        assert hint in msg


def test_split_is_seeded_and_disjoint(idx_dir):
    a = load_dataset("fashion-mnist", data_dir=idx_dir, val_split=0.25, seed=3)
    b = load_dataset("fashion-mnist", data_dir=idx_dir, val_split=0.25, seed=3)
    assert torch.equal(a.val.images, b.val.images)
    assert len(a.train) + len(a.val) == 600
    train_rows = {bytes(x.numpy()) for x in a.train.images}
    assert not any(bytes(x.numpy()) in train_rows for x in a.val.images)


def _fake_urlopen(payloads):
    def urlopen(url, timeout=None):
        name = url.rsplit("/", 1)[1]
        return io.BytesIO(payloads[name])
    return urlopen


def test_download_verifies_checksums(tmp_path, monkeypatch, idx_dir):
    payloads = {p.name: p.read_bytes() for p in idx_dir.iterdir()}
    monkeypatch.setattr(named.urllib.request, "urlopen", _fake_urlopen(payloads))
    # The official checksums do not match our synthetic files: refused, nothing kept.
    with pytest.raises(DataError, match="checksum"):
        named.download("mnist", tmp_path / "dl")
    assert not list((tmp_path / "dl").rglob("*.gz"))
    # With matching checksums the files land and load.
    md5 = {k: hashlib.md5(v).hexdigest() for k, v in payloads.items()}
    ds = named.NAMED["mnist"]
    monkeypatch.setitem(named.NAMED, "mnist", named.IdxDataset(ds.name, ds.classes, ds.base_urls, md5))
    with pytest.raises(DataError, match="not found"):
        load_dataset("mnist", data_dir=tmp_path / "dl")  # no download unless asked
    splits = load_dataset("mnist", data_dir=tmp_path / "dl", download=True, val_split=0)
    assert len(splits.train) == 600 and (tmp_path / "dl" / "mnist").is_dir()


def test_real_fashion_mnist(fashion_mnist):
    splits = load_dataset("fashion-mnist", val_split=0.1)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (54_000, 6_000, 10_000)
    assert splits.train.images.shape[1:] == (1, 28, 28) and splits.train.images.dtype == torch.uint8
    assert torch.bincount(splits.test.labels).tolist() == [1000] * 10
    assert splits.classes[0] == "T-shirt/top" and splits.classes[9] == "Ankle boot"
