"""A self-contained HTML report: headings, tables and PNGs embedded as base64 (one file to share)."""

from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from dcvkit.io import atomic_write

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;color:#222;
padding:0 1em}h1{font-size:1.6em}h2{margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.3em .7em;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}tr.best td{font-weight:bold;background:#eef7ee}
img{max-width:100%;border:1px solid #eee;margin:.4em 0}.note{color:#666;font-size:.9em}code{background:#f4f4f4;
padding:0 .3em}
"""


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of ``rows`` (dicts with the same keys): what every ``dcv bench`` writes as table.md."""
    if not rows:
        return ""
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def format_value(value: Any, floatfmt: str = ".4f") -> str:
    """Table cells: fractions (accuracy, ratios) with ``floatfmt``; seconds and rates (>= 10) with one decimal."""
    if isinstance(value, float):
        return format(value, floatfmt if abs(value) < 10 else ".1f")
    return "" if value is None else str(value)


@dataclass
class Report:
    title: str
    parts: list[str] = field(default_factory=list)

    def heading(self, text: str) -> None:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def text(self, text: str, note: bool = False) -> None:
        cls = ' class="note"' if note else ""
        self.parts.append(f"<p{cls}>{html.escape(text)}</p>")

    def table(self, rows: Sequence[dict[str, Any]], highlight: int | None = None, floatfmt: str = ".4f") -> None:
        if not rows:
            return
        cols = list(rows[0])
        out = ["<table><tr>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in cols) + "</tr>"]
        for i, r in enumerate(rows):
            cells = "".join(
                f"<td>{html.escape(format_value(r[c], floatfmt))}</td>"
                for c in cols)
            attr = ' class="best"' if i == highlight else ""
            out.append(f"<tr{attr}>{cells}</tr>")
        self.parts.append("\n".join(out) + "</table>")

    def image(self, path: str | os.PathLike, caption: str = "") -> None:
        path = Path(path)
        if not path.is_file():
            return
        data = base64.b64encode(path.read_bytes()).decode()
        self.parts.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
                          f"<figcaption class=\"note\">{html.escape(caption)}</figcaption></figure>")

    def write(self, path: str | os.PathLike) -> Path:
        body = "\n".join(self.parts)
        doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
               f"<style>{_CSS}</style></head><body><h1>{html.escape(self.title)}</h1>\n{body}\n</body></html>\n")
        return atomic_write(path, doc)
