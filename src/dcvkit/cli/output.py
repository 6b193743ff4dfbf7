"""Printing for the CLI: rich tables on stdout, notices on stderr."""

from __future__ import annotations

import sys
from typing import Any, Sequence

from rich.console import Console
from rich.table import Table

from dcvkit.viz.report import format_value

# Piped or captured output (CI logs, files) gets a wide console so tables keep one row per line.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)


def print_table(rows: Sequence[dict[str, Any]], title: str | None = None, floatfmt: str = ".4f") -> None:
    if not rows:
        return
    table = Table(title=title, title_justify="left")
    for col in rows[0]:
        numeric = all(isinstance(r[col], (int, float)) or str(r[col]).replace(",", "").replace(".", "").isdigit()
                      for r in rows)
        table.add_column(str(col), justify="right" if numeric else "left", no_wrap=col == next(iter(rows[0])))
    for r in rows:
        table.add_row(*(format_value(v, floatfmt) for v in r.values()))
    out.print(table)
