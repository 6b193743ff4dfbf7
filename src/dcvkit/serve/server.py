"""``dcv serve RUN [RUN ...]``: the runs named and loaded (once), the address checked, uvicorn started."""

from __future__ import annotations

import errno
import ipaddress
import os
import re
import socket
import warnings
from pathlib import Path
from typing import Any, Sequence

from dcvkit.errors import ConfigError

LOOPBACK = ("127.0.0.1", "::1", "localhost")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def run_names(specs: Sequence[str]) -> dict[str, Path]:
    """``RUN`` or ``NAME=RUN`` -> {name: path}; a run's name defaults to its folder's (``runs/detect/yolo``:
    ``yolo``), made unique with its task folder (``detect-yolo``) when two runs share it."""
    out: dict[str, Path] = {}
    for spec in specs:
        name, _, path = spec.rpartition("=") if "=" in spec and not Path(spec).exists() else ("", "", spec)
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"{path}: no such run directory or checkpoint; give runs as RUN or NAME=RUN")
        run_dir = p if p.is_dir() else p.parent
        if not name:
            name = run_dir.name
            if name in out:
                name = f"{run_dir.parent.name}-{name}"
        if not _NAME.match(name):
            raise ConfigError(f"run name '{name[:40]}': use letters, digits, '.', '_' or '-' (NAME=RUN to choose one)")
        if name in out:
            raise ConfigError(f"two runs are named '{name}'; name them with NAME=RUN")
        out[name] = p
    if not out:
        raise ConfigError("give at least one run to serve (a run directory of dcv <task> train)")
    return out


def load_runs(specs: Sequence[str], device: str = "cpu", backend: str = "torch") -> dict[str, Any]:
    """Every run loaded once (weights only), by its task's serving class."""
    from dcvkit.serve.runs import load_run

    return {name: load_run(name, path, device, backend) for name, path in run_names(specs).items()}


def check_address(host: str, port: int, api_key: str | None) -> None:
    """Refuse a port in use with one line; warn when a non-loopback address has no API key."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise ConfigError(f"--port {port}: {host}:{port} is in use; pass another --port (0: any free one)")
            raise ConfigError(f"--host {host}: cannot bind ({e.strerror}); use 127.0.0.1 or an address of this "
                              "machine") from None
    try:
        local = host in LOOPBACK or ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = False
    if not local and not api_key:
        warnings.warn(f"serving on {host}: anyone who reaches this address can use the API; pass --api-key "
                      "(or set DCV_API_KEY)", stacklevel=2)


def compute_threads(threads: int = 0) -> int:
    """The threads PyTorch computes with in a server: ``threads``, or (0) one core less than the machine has,
    at least 1: the event loop and the decoding of uploads need a core of their own. Measured on 2 cores
    (``dcv bench serve``, cnn, 16 clients): 1 thread 579 requests/s at batch 1 and 1,306 batched, torch's
    default 2 threads 421 and 1,300 (its intra-op threads compete with the event loop). ONNX Runtime keeps
    its own default: limited to 1 thread it fell from 1,442 to 868 requests/s at batch 1."""
    return threads if threads > 0 else max(1, (os.cpu_count() or 2) - 1)


def serve(runs: Sequence[str], host: str = "127.0.0.1", port: int = 8000, backend: str = "torch",
          device: str = "cpu", max_batch: int = 32, max_wait_ms: float = 2.0, max_upload_mb: float = 16.0,
          api_key: str | None = None, threads: int = 0, log: Any = print) -> None:
    """Load ``runs`` and serve them until interrupted (Ctrl-C)."""
    import torch
    import uvicorn

    from dcvkit.serve.app import create_app

    torch.set_num_threads(compute_threads(threads))

    api_key = api_key or os.environ.get("DCV_API_KEY") or None
    if port != 0:
        check_address(host, port, api_key)
    loaded = load_runs(runs, device, backend)
    app = create_app(loaded, max_batch=max_batch, max_wait_ms=max_wait_ms, max_upload_mb=max_upload_mb,
                     api_key=api_key)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    for name, r in loaded.items():
        log(f"{name}: {r.task} ({r.meta['model']}, {r.backend}, {torch.get_num_threads()} threads) <- {r.weights}")
    where = f"[{host}]" if ":" in host else host

    original = server.startup

    async def startup(sockets=None):  # print the real port (--port 0 picks one) once it is bound
        await original(sockets)
        bound = [s.getsockname()[1] for srv in server.servers for s in srv.sockets] or [port]
        log(f"serving on http://{where}:{bound[0]}/ (the page; the API: /v1/runs, /docs) - Ctrl-C stops",
            flush=True)

    server.startup = startup  # type: ignore[method-assign]
    server.run()


__all__ = ["serve", "load_runs", "run_names", "check_address", "compute_threads", "LOOPBACK"]
