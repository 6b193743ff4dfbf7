"""IDX reading: round trip, and every kind of damage named in a one-line DataError."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from dcvkit.data.idx import read_idx, write_idx
from dcvkit.errors import DataError


@pytest.mark.parametrize("name", ["x-idx3-ubyte", "x-idx3-ubyte.gz"])
def test_round_trip(tmp_path, name):
    a = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / name, a)
    np.testing.assert_array_equal(read_idx(tmp_path / name), a)


def test_truncated_file_is_named(tmp_path):
    a = np.zeros((10, 28, 28), np.uint8)
    p = write_idx(tmp_path / "t.gz", a)
    raw = gzip.decompress(p.read_bytes())
    p.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(DataError, match=r"t\.gz: truncated"):
        read_idx(p)


def test_corrupt_gzip_and_bad_magic(tmp_path):
    p = tmp_path / "c.gz"
    p.write_bytes(b"\x1f\x8b\x08\x00garbage-garbage")
    with pytest.raises(DataError, match=r"c\.gz: corrupt gzip"):
        read_idx(p)
    q = tmp_path / "m"
    q.write_bytes(b"PK\x03\x04 not idx at all")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(q)
    with pytest.raises(DataError, match="file not found"):
        read_idx(tmp_path / "nope")


def test_header_only_is_truncated(tmp_path):
    p = tmp_path / "h"
    p.write_bytes(bytes([0, 0, 8, 3]) + (2).to_bytes(4, "big"))
    with pytest.raises(DataError, match="truncated IDX header"):
        read_idx(p)
