"""Files that are never half-written: atomic writes, run directories, safe checkpoints.

Every file dcvkit writes goes through :func:`atomic_write` (write a temp file beside the target, fsync,
rename), so a crash or a full disk leaves either the old file or the new one, never a torn one.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import yaml

from dcvkit.errors import CheckpointError, ConfigError, DcvError, ResourceError


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | os.PathLike | Sequence[str | os.PathLike],
                 data: bytes | str | Callable[[io.BufferedWriter], None]) -> Path:
    """Write ``data`` (bytes, text, or a function that writes to a binary file) to ``path`` atomically.

    ``path`` may be a list of paths in one folder: the data is written once and hard-linked into each
    name (each rename still atomic), e.g. ``last.pt`` and ``best.pt`` of the same epoch.
    """
    paths = [Path(p) for p in ([path] if isinstance(path, (str, os.PathLike)) else path)]
    folder = paths[0].parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{paths[0].name}.", suffix=".tmp", dir=folder)
    links: list[str] = []
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the user's usual mode
        for extra in paths[1:]:
            links.append(f"{tmp}.{len(links)}")
            os.link(tmp, links[-1])
            os.replace(links[-1], extra)
        os.replace(tmp, paths[0])
    except BaseException as e:
        for t in (tmp, *links):
            Path(t).unlink(missing_ok=True)
        if isinstance(e, OSError):
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise ResourceError(f"{paths[0]}: could not write, the disk is full ({e.strerror}); the previous "
                                    "file, if any, is intact; free some space (or use another --project) and "
                                    "--resume") from None
            raise DcvError(f"{paths[0]}: could not write ({e.strerror or e}); the previous file, if any, "
                           "is intact") from None
        raise
    return paths[0]


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write(path, json.dumps(obj, indent=2, default=str) + "\n")


def write_yaml(path: str | os.PathLike, obj: Mapping[str, Any]) -> Path:
    return atomic_write(path, yaml.safe_dump(dict(obj), sort_keys=False))


def write_csv(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write dict rows as CSV; the header is the union of keys in first-seen order."""
    rows = list(rows)
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return atomic_write(path, buf.getvalue())


def read_csv(path: str | os.PathLike) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def new_run_dir(project: str | os.PathLike, name: str = "exp") -> Path:
    """Create and return a fresh run directory ``project/name``, ``name2``, ``name3``, ... .

    ``mkdir`` without ``exist_ok`` is atomic, so two runs started at once never share a directory
    and an existing run is never overwritten.
    """
    from dcvkit.config import plain_name

    project = Path(project)
    if (why := plain_name(name)) is not None:  # the config checks it first; this is the last line of defence
        raise ConfigError(f"--name {name!r}: a run name {why}")
    try:
        project.mkdir(parents=True, exist_ok=True)
        for i in range(1, 100_000):
            path = project / (name if i == 1 else f"{name}{i}")
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
    except OSError as e:
        raise DcvError(f"{project}: cannot create a run directory there ({e.strerror or e}); choose a writable "
                       "--project") from None
    raise DcvError(f"{project}: too many runs named {name!r}; choose another --name")


def save_checkpoint(path: str | os.PathLike | Sequence[str | os.PathLike], state: Mapping[str, Any]) -> Path:
    """Save a checkpoint atomically (to one path, or serialised once to several). ``state`` must hold only
    tensors, numbers, strings, lists and dicts, so that :func:`load_checkpoint` can read it back with
    ``weights_only=True``."""
    import torch  # here, not at the top: the CLI imports this module to parse and print, torch only to train

    return atomic_write(path, lambda f: torch.save(dict(state), f))


def check_archive(path: Path) -> None:
    """Refuse a zip checkpoint that could inflate beyond its size before torch reads a byte of it: torch.save
    stores every entry uncompressed, so a compressed entry (a zip bomb: megabytes that inflate to gigabytes,
    which torch would inflate whole before comparing a tensor's shape) is refused, and the stored entries may
    declare no more bytes than the file holds."""
    import zipfile

    if not zipfile.is_zipfile(path):
        return  # torch's legacy format, or not a checkpoint: torch.load says which
    try:
        with zipfile.ZipFile(path) as z:
            entries = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a loadable checkpoint (a damaged zip archive: {e})") from None
    for info in entries:
        if info.compress_type != zipfile.ZIP_STORED:
            raise CheckpointError(f"{path}: entry '{info.filename[:80]}' is compressed; torch.save stores every "
                                  "entry as is, and a compressed one could inflate to any size: refused")
    declared, size = sum(i.file_size for i in entries), path.stat().st_size
    if declared > size:
        raise CheckpointError(f"{path}: its entries declare {declared:,} bytes, more than the file's {size:,}; "
                              "refused")


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``: a file whose pickle would run code is refused.
    ``map_location``: a device name or ``torch.device``."""
    import torch

    path = Path(path)
    if path.is_dir():
        for cand in (path / "best.pt", path / "last.pt", path / "weights" / "best.pt"):
            if cand.is_file():
                path = cand
                break
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint; pass a run directory or a .pt file")
    check_archive(path)
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError... for bad files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"{path}: not a loadable checkpoint ({first[:200]}); only weights-only checkpoints are accepted"
        ) from e
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict checkpoint, got {type(obj).__name__}")
    return obj
