"""Printing for the CLI: rich tables on stdout, notices on stderr."""

from __future__ import annotations

from typing import Any, Sequence

from rich.console import Console
from rich.table import Table

import sys

# Piped or captured output (CI logs, files) gets a wide console so tables keep one row per line.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)


def fmt(value: Any, floatfmt: str = ".4f") -> str:
    if isinstance(value, float):  # fractions (accuracy, ratios) keep 4 decimals; seconds and rates fewer
        return format(value, floatfmt if abs(value) < 10 else ".1f")
    return "" if value is None else str(value)


def print_table(rows: Sequence[dict[str, Any]], title: str | None = None, floatfmt: str = ".4f") -> None:
    if not rows:
        return
    table = Table(title=title, title_justify="left")
    for col in rows[0]:
        numeric = all(isinstance(r[col], (int, float)) or str(r[col]).replace(",", "").replace(".", "").isdigit()
                      for r in rows)
        table.add_column(str(col), justify="right" if numeric else "left", no_wrap=col == next(iter(rows[0])))
    for r in rows:
        table.add_row(*(fmt(v, floatfmt) for v in r.values()))
    out.print(table)
