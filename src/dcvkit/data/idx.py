"""Reader for the IDX format of MNIST and Fashion-MNIST (optionally gzip-compressed).

IDX layout: two zero bytes, a type code (0x08 = uint8), the number of dimensions, then one big-endian
uint32 per dimension, then the data. We read it with one ``numpy.frombuffer`` (no per-sample Python work)
and check every header field, so a truncated or corrupt file is named in a one-line error.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from dcvkit.errors import DataError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw) into a numpy array of its declared shape.

    Raises:
        DataError: the file is missing, not IDX, or shorter/longer than its header says.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: corrupt gzip data ({e}); delete it and reinstall or re-download") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number); expected MNIST-format data")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path}: truncated IDX header; delete it and reinstall or re-download")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "has trailing data"
        raise DataError(
            f"{path}: {what}: header says {shape} ({expected} bytes), file has {len(raw)} bytes; "
            "delete it and reinstall or re-download"
        )
    try:
        return np.frombuffer(raw, dtype, offset=header).reshape(shape)
    except ValueError:  # e.g. a zero dimension beside absurd others
        raise DataError(f"{path}: implausible IDX shape {shape}; delete it and reinstall or re-download") from None


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write a uint8 array as IDX (gzip if ``compress`` or the name ends in ``.gz``). Used by tests and
    by users converting their own data to MNIST format."""
    from dcvkit.io import atomic_write

    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    data = header + array.tobytes()
    if compress or (compress is None and path.suffix == ".gz"):
        data = gzip.compress(data, mtime=0)
    return atomic_write(path, data)
