"""The page in a real browser: Debian's Chromium, driven by Playwright (executable_path: no browser is
downloaded; `make test` installs chromium), opens the page that a real `dcv serve` process serves on a free
loopback port, uploads an image to a classifier run and one to a detector run, and reads the class and the
number of boxes off the page; they are the in-process predict's, and the page asked nothing of anyone but
the server (the browser's network log)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import missing, need_run

pytestmark = pytest.mark.data

# as the brief prescribes for Chromium in this sandbox: no sandbox as root, no GPU, no background traffic
FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic"]


def _chromium() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        missing("Debian's chromium is not installed (`make test` installs chromium and chromium-driver as root)")
    return path


def test_the_page_predicts_in_a_real_browser(served, scene_image, tmp_path):
    chromium = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is not installed (make setup installs dcvkit[dev])")
    from dcvkit.bench.serve import Server
    from dcvkit.tasks.classify import predict as classify
    from dcvkit.tasks.detect import predict as detect

    det = need_run(served, "det")
    shirt = sorted((served["cls"].parent.parent / "pngs" / "c2").glob("*.png"))[0]
    requests: list[str] = []
    errors: list[str] = []
    with Server([f"cls={served['cls']}", f"det={det}"]) as server, sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=chromium,
                                                   headless=True, args=FLAGS)
        try:
            ctx.on("request", lambda r: requests.append(r.url))
            page = ctx.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server.url + "/")
            page.wait_for_selector("#run option[value=det]", state="attached", timeout=30_000)
            page.select_option("#run", "cls")
            page.set_input_files("#file", str(shirt))
            page.wait_for_selector("#result-class", timeout=30_000)
            predicted = page.inner_text("#result-class")
            probability = float(page.inner_text("#result-probability"))
            page.select_option("#run", "det")
            page.set_input_files("#file", str(scene_image))
            page.wait_for_selector("#box-count", timeout=30_000)
            boxes = int(page.inner_text("#box-count"))
            status = page.inner_text("#status")
        finally:
            ctx.close()
    want = classify(served["cls"], [shirt], device="cpu")[0].top[0]
    assert predicted == want[0] and abs(probability - want[1]) < 1e-4, (predicted, probability, want)
    found = detect(det, [scene_image], tmp_path / "det", device="cpu")[0].detections
    assert boxes == len(found) > 0, (boxes, len(found), status)
    assert not errors, errors
    assert any(u.startswith(f"{server.url}/v1/runs/det/predict") for u in requests), requests
    outside = [u for u in requests if not u.startswith((server.url + "/", "data:", "blob:"))]
    assert not outside, f"the page reached outside the server: {outside}"
