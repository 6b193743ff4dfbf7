"""``dcv bench startup``: how long ``dcv`` takes to answer (``--help``, a train command's ``--help``, an
argument error), in fresh processes, side by side with ``python -c "import torch"`` and a bare interpreter.

Each round starts every command once, in turn (interleaved, so the machine's drift is spread over all of
them); the medians are reported and, as the machines are noisy, each as a ratio of ``import torch``. Each
command's process also reports whether torch was imported (it must not be: the parser and the task configs
import no torch) and how many modules it loaded.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from dcvkit.config import RunConfig, opt, to_dict
from dcvkit.io import atomic_write, new_run_dir, write_json, write_yaml
from dcvkit.viz.report import markdown_table

#: runs ``dcv ARGV`` as the console script does and reports what it imported
PROBE = """
import json, sys
from dcvkit.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps({"torch": "torch" in sys.modules, "modules": len(sys.modules)}), file=sys.__stderr__)
"""


@dataclass
class BenchStartupConfig(RunConfig):
    """Benchmark: which command lines, how many fresh processes each."""

    commands: str = opt("--help; detect train --help; classify train --help; tune --help; classify train --lrr 1",
                        "semicolon-separated dcv command lines to time")
    repeats: int = opt(10, "rounds: each command starts once per round (medians reported)")


def _time(argv: list[str]) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    try:
        info = json.loads(p.stderr.strip().splitlines()[-1])
    except (ValueError, IndexError):
        info = {}
    return seconds, info


def bench_startup(cfg: BenchStartupConfig, out_dir: Path | None = None,
                  log: Callable[[str], None] = print) -> dict[str, Any]:
    """Time the command lines and the references; returns (and writes as ``bench.json``) one row each."""
    lines = [c.strip() for c in cfg.commands.split(";") if c.strip()]
    runs: dict[str, list[str]] = {f"dcv {c}": [sys.executable, "-c", PROBE, *c.split()] for c in lines}
    runs["python -c 'import torch'"] = [sys.executable, "-c", "import torch"]
    runs["python -c 'pass'"] = [sys.executable, "-c", "pass"]
    out_dir = out_dir or new_run_dir(Path(cfg.project) / "bench" / "startup", cfg.name)
    write_yaml(out_dir / "config.yaml", to_dict(cfg))
    times: dict[str, list[float]] = {k: [] for k in runs}
    info: dict[str, dict[str, Any]] = {}
    for r in range(max(1, cfg.repeats)):
        for name, argv in runs.items():
            seconds, info[name] = _time(argv)
            times[name].append(seconds)
        log(f"round {r + 1}/{cfg.repeats}: " + ", ".join(f"{k} {v[-1]:.3f}s" for k, v in times.items()))
    ref = statistics.median(times["python -c 'import torch'"])
    rows = [{"command": name, "median_s": statistics.median(t), "min_s": min(t),
             "vs_import_torch": statistics.median(t) / ref, "imports_torch": info[name].get("torch"),
             "modules": info[name].get("modules")} for name, t in times.items()]
    dcv = [r for r in rows if r["command"].startswith("dcv ")]
    slowest = max(dcv, key=lambda r: r["median_s"])
    verdicts = [f"slowest dcv command: {slowest['command']!r} in {slowest['median_s']:.3f} s median "
                f"({slowest['vs_import_torch']:.2f}x the time of importing torch, {ref:.2f} s); "
                f"{'none' if not any(r['imports_torch'] for r in dcv) else 'some'} of them import torch"]
    result = {"config": to_dict(cfg), "python": sys.version.split()[0], "rows": rows, "verdicts": verdicts,
              "out_dir": str(out_dir)}
    write_json(out_dir / "bench.json", result)
    atomic_write(out_dir / "table.md", markdown_table(table_rows(result)))
    return result


def table_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"command": r["command"], "median s": f"{r['median_s']:.3f}", "min s": f"{r['min_s']:.3f}",
             "vs import torch": f"{r['vs_import_torch']:.2f}x",
             "imports torch": "-" if r["imports_torch"] is None else ("yes" if r["imports_torch"] else "no"),
             "modules": r["modules"] if r["modules"] is not None else "-"} for r in result["rows"]]


__all__ = ["BenchStartupConfig", "bench_startup", "table_rows"]
