"""Installing dcvkit is quiet: setuptools finds nothing deprecated in pyproject.toml (issue 29: the licence as
a TOML table printed "you need to update your project" on every `pip install -e .`)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_pip_install_editable_prints_no_warning_from_our_files():
    # --dry-run still builds the editable metadata (where setuptools reads and checks pyproject.toml);
    # --no-build-isolation uses the installed setuptools, so nothing is downloaded.
    out = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--dry-run",
                          "-e", str(ROOT)], capture_output=True, text=True, timeout=300)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-2000:]
    assert "Preparing editable metadata" in text or "Would install" in text, text[-2000:]
    noisy = [line for line in text.splitlines() if "warning" in line.lower() or "deprecat" in line.lower()]
    assert noisy == [], "\n".join(noisy)
