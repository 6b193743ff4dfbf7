"""``dcv bench serve``: ``dcv serve`` under load - requests/s and p50/p95/p99 latency with dynamic batching on
and off, PyTorch vs ONNX Runtime, the same run, the same images, the same clients.

Each configuration is a fresh ``dcv serve`` process on a free loopback port (the server as a user runs it),
loaded once; ``clients`` concurrent connections (keep-alive, one request in flight each, as ``wrk`` does)
send the run's test images as PNG bytes until ``requests`` answers have come back (after ``warmup``
untimed ones). Configurations take turns round after round, the order reversed every other round;
requests/s is the median over rounds, latencies are pooled. The mean batch size is the server's own count
(``GET /v1/runs``).

The clients are a few lines of asyncio over raw HTTP/1.1 rather than httpx or aiohttp: on 2 cores the
clients share the machine with the server, and a client library's per-request CPU (several times these
lines') would be taken from the server being measured.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from dcvkit.config import Bounds, RunConfig, opt, to_dict
from dcvkit.errors import ConfigError, DcvError
from dcvkit.io import atomic_write, new_run_dir, write_json, write_yaml
from dcvkit.viz.report import markdown_table

TARGET_SPEEDUP = 3.0  # the issue's: batching's requests/s over batch-1 serving, cnn, 16 clients, 2 cores


@dataclass
class BenchServeConfig(RunConfig):
    """Benchmark: one run served under concurrent load, batching on and off, each backend."""

    run: str | None = opt(None, "the classify run to serve (default: dcv classify train --model cnn, 1 epoch on "
                                "6,000 Fashion-MNIST images, trained first)")
    clients: int = opt(16, "concurrent clients (connections, one request in flight each)", bounds=Bounds(1, 1024))
    requests: int = opt(2000, "timed requests per configuration and round", bounds=Bounds(1, 10_000_000))
    warmup: int = opt(200, "untimed requests before each measurement", bounds=Bounds(0, 1_000_000))
    rounds: int = opt(2, "rounds over the configurations (order reversed every other round)", bounds=Bounds(1, 100))
    backends: str = opt("torch,onnx", "comma-separated: torch, onnx")
    max_batch: int = opt(32, "the batching server's --max-batch (the other serves one request per pass)",
                         bounds=Bounds(2, 4096))
    max_wait_ms: float = opt(2.0, "the batching server's --max-wait-ms", bounds=Bounds(0.0, 1000.0))
    images: int = opt(64, "distinct test images the clients cycle through", bounds=Bounds(1, 100_000))
    threads: int = opt(0, "the servers' --threads, PyTorch's (0: dcv serve's default, one less than the cores)",
                       bounds=Bounds(0, 1024))
    data_dir: str | None = opt(None, "folder holding Fashion-MNIST's files (for the default run)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A ``dcv serve RUN ... OPTION ...`` process on a free loopback port, ready when its /readyz answers 200
    (``dcv bench serve``'s servers, and the tests' real server)."""

    def __init__(self, runs: list[str], *options: str, timeout: float = 300.0):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "dcvkit", "serve", *runs, "--port", str(self.port), "--device", "cpu", *options]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read() if self.proc.stdout else ""
                raise DcvError(f"dcv serve exited with code {self.proc.returncode}: {out.strip().splitlines()[-1:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.close()
        raise DcvError(f"dcv serve did not become ready in {timeout:.0f} s")

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=10) as r:
            return json.loads(r.read())

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


_LENGTH = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)


def http_request(path: str, body: bytes, ctype: str = "image/png") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def _client(port: int, requests: list[bytes], budget: list[int], latencies: list[float],
                  failures: list[str], offset: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    k = offset
    try:
        while budget[0] > 0:
            budget[0] -= 1
            t0 = time.perf_counter()
            writer.write(requests[k % len(requests)])
            k += 1
            head = await reader.readuntil(b"\r\n\r\n")
            m = _LENGTH.search(head)
            body = await reader.readexactly(int(m.group(1)) if m else 0)
            latencies.append(time.perf_counter() - t0)
            if not head.startswith(b"HTTP/1.1 200"):
                failures.append(head.split(b"\r\n", 1)[0].decode() + " " + body[:120].decode(errors="replace"))
    finally:
        writer.close()


def load(port: int, requests: list[bytes], n: int, clients: int) -> tuple[float, list[float], list[str]]:
    """``n`` requests from ``clients`` connections: (seconds, latencies, failures)."""
    budget, latencies, failures = [n], [], []

    async def main() -> None:
        await asyncio.gather(*(_client(port, requests, budget, latencies, failures, i) for i in range(clients)))

    t0 = time.perf_counter()
    asyncio.run(main())
    return time.perf_counter() - t0, latencies, failures


def png_bytes(images) -> list[bytes]:
    from dcvkit.serve.runs import chw_png

    return [chw_png(img) for img in images]


def default_run(cfg: BenchServeConfig, out_dir: Path, log: Callable[[str], None]) -> Path:
    from dcvkit.tasks.classify import ClassifyConfig, train

    log("cnn: dcv classify train --model cnn --epochs 1 --limit 6000 (the run to serve)")
    c = ClassifyConfig(model="cnn", epochs=1, limit=6000, data_dir=cfg.data_dir, seed=cfg.seed, tensorboard=False,
                       progress=False, project=str(out_dir), name="cnn")
    return train(c, run_dir=out_dir / "cnn").run_dir


def request_images(run: Path, n: int):
    from dcvkit.config import from_dict
    from dcvkit.io import load_checkpoint
    from dcvkit.tasks import task_of_checkpoint

    ckpt = load_checkpoint(run, map_location="cpu")
    spec = task_of_checkpoint(ckpt.get("meta"), where=str(run))
    if spec.name != "classify":
        raise ConfigError(f"--run {run}: a {spec.name} run; dcv bench serve serves a classify run")
    splits = spec.load_splits(from_dict(spec.config, ckpt.get("config", {}), where=str(run)))
    data = splits.test if splits.test is not None else splits.val
    if data is None or not hasattr(data, "images"):
        raise ConfigError(f"--run {run}: its data has no in-memory test or validation split to send")
    return data.images[:n]


def bench_serve(cfg: BenchServeConfig, out_dir: Path | None = None, log: Callable[[str], None] = print
                ) -> dict[str, Any]:
    backends = [b.strip() for b in cfg.backends.split(",") if b.strip()]
    bad = [b for b in backends if b not in ("torch", "onnx")]
    if bad or not backends:
        raise ConfigError(f"--backends {cfg.backends}: choose from torch, onnx")
    out_dir = out_dir or new_run_dir(Path(cfg.project) / "bench" / "serve", cfg.name)
    write_yaml(out_dir / "config.yaml", to_dict(cfg))
    run = Path(cfg.run) if cfg.run else default_run(cfg, out_dir, log)
    if not run.exists():
        raise ConfigError(f"--run {run}: no such run directory")
    bodies = png_bytes(request_images(run, cfg.images))
    requests = [http_request("/v1/runs/bench/predict", b) for b in bodies]
    configs = [(b, mb) for b in backends for mb in (cfg.max_batch, 1)]
    samples: dict[tuple[str, int], dict[str, list]] = {c: {"rps": [], "lat": [], "mean_batch": []} for c in configs}
    for r in range(cfg.rounds):
        for backend, mb in (configs if r % 2 == 0 else configs[::-1]):
            server = Server([f"bench={run}"], "--backend", backend, "--max-batch", str(mb), "--max-wait-ms",
                            str(cfg.max_wait_ms), "--threads", str(cfg.threads))
            try:
                load(server.port, requests, cfg.warmup, cfg.clients)
                before = server.get("/v1/runs")["runs"][0]["batching"]
                seconds, lat, failures = load(server.port, requests, cfg.requests, cfg.clients)
                after = server.get("/v1/runs")["runs"][0]["batching"]
            finally:
                server.close()
            if failures:
                raise DcvError(f"{len(failures)} of {cfg.requests} requests failed ({backend}, max batch {mb}): "
                               f"{failures[0]}")
            s = samples[(backend, mb)]
            s["rps"].append(cfg.requests / seconds)
            s["lat"].extend(lat)
            nb = after["batches"] - before["batches"]
            s["mean_batch"].append((after["requests"] - before["requests"]) / nb if nb else 0.0)
            log(f"round {r + 1}: {backend}, max batch {mb}: {cfg.requests / seconds:,.0f} requests/s, "
                f"p99 {1000 * float(np.percentile(lat, 99)):.1f} ms, mean batch {s['mean_batch'][-1]:.1f}")
    rows = []
    for (backend, mb), s in samples.items():
        lat = np.array(s["lat"]) * 1000
        rows.append({"backend": backend, "batching": mb > 1, "max_batch": mb,
                     "requests_per_s": statistics.median(s["rps"]), "rps_rounds": s["rps"],
                     "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
                     "p99_ms": float(np.percentile(lat, 99)),
                     "mean_batch": statistics.mean(s["mean_batch"])})
    for row in rows:
        base = next(x for x in rows if x["backend"] == row["backend"] and not x["batching"])
        row["speedup_vs_batch1"] = row["requests_per_s"] / base["requests_per_s"]
    from dcvkit.serve.server import compute_threads

    result = {"config": to_dict(cfg), "run": str(run), "clients": cfg.clients, "requests": cfg.requests,
              "rounds": cfg.rounds, "cores": os.cpu_count(), "server_threads": compute_threads(cfg.threads),
              "rows": rows,
              "out_dir": str(out_dir)}
    result["verdicts"] = verdicts(result)
    write_json(out_dir / "bench.json", result)
    atomic_write(out_dir / "table.md", markdown_table(table_rows(result)))
    plot_serve_bench(result, out_dir / "throughput.png")
    return result


def verdicts(result: dict[str, Any]) -> list[str]:
    out = []
    for row in result["rows"]:
        if row["batching"]:
            s = row["speedup_vs_batch1"]
            met = "met" if s >= TARGET_SPEEDUP else "MISSED"
            out.append(f"{row['backend']}: dynamic batching {s:.2f}x the requests/s of batch-1 serving with "
                       f"{result['clients']} clients (target {TARGET_SPEEDUP:.0f}x: {met}); mean batch "
                       f"{row['mean_batch']:.1f}")
    return out


def table_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"backend": r["backend"], "batching": f"max {r['max_batch']}" if r["batching"] else "off (batch 1)",
             "requests/s": f"{r['requests_per_s']:,.0f}", "vs batch 1": f"{r['speedup_vs_batch1']:.2f}x",
             "mean batch": f"{r['mean_batch']:.1f}", "p50 ms": f"{r['p50_ms']:.1f}", "p95 ms": f"{r['p95_ms']:.1f}",
             "p99 ms": f"{r['p99_ms']:.1f}"} for r in result["rows"]]


def plot_serve_bench(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    labels = [f"{r['backend']}\n{'batching' if r['batching'] else 'batch 1'}" for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.bar(labels, [r["requests_per_s"] for r in rows], color=["#2563eb" if r["batching"] else "#9ca3af" for r in rows])
    a.set_ylabel("requests/s (median of rounds)")
    a.set_title(f"{result['clients']} concurrent clients")
    x = np.arange(len(rows))
    for k, (q, col) in enumerate((("p50_ms", "#93c5fd"), ("p95_ms", "#3b82f6"), ("p99_ms", "#1e3a8a"))):
        b.bar(x + (k - 1) * 0.27, [r[q] for r in rows], 0.27, label=q.split("_")[0], color=col)
    b.set_xticks(x, labels)
    b.set_ylabel("latency, ms")
    b.legend()
    b.set_title("latency per request")
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


__all__ = ["BenchServeConfig", "bench_serve", "table_rows", "verdicts", "Server", "load", "free_port"]
