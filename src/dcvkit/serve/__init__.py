"""``dcv serve``: trained runs as a web page and an HTTP API (FastAPI + uvicorn), with dynamic batching.

:mod:`~dcvkit.serve.runs` (a run loaded once: request -> network input -> answer, one class per task),
:mod:`~dcvkit.serve.batching` (one worker per run gathering concurrent requests into one forward pass),
:mod:`~dcvkit.serve.app` (the routes, the limits, the errors), :mod:`~dcvkit.serve.schemas` (the JSON),
:mod:`~dcvkit.serve.server` (runs named and loaded, the port checked, uvicorn started), ``page.html`` (the
page). Install with ``pip install 'dcvkit[serve]'``.
"""

from __future__ import annotations

__all__ = ["serve", "load_runs", "create_app"]


def __getattr__(name: str):
    if name in ("serve", "load_runs"):
        from dcvkit.serve import server

        return getattr(server, name)
    if name == "create_app":
        from dcvkit.serve.app import create_app

        return create_app
    raise AttributeError(name)
