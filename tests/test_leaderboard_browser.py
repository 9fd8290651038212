"""The example site (built from the committed runs in ``leaderboards/runs``) as headless Chromium
renders it: tables with the expected numbers, the sort script, no console errors, no request
leaving ``file://``, and a screenshot.

Chromium comes from Debian (``apt-get install chromium``); ``.ci/run`` installs it and sets
``MMBENCH_REQUIRE_BROWSER=1`` so that a missing browser fails there instead of skipping.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from mmbench.leaderboard import build_site
from mmbench.leaderboard.tables import percent
from mmbench.results import aggregate, load_runs

REPO = Path(__file__).resolve().parents[1]
RUNS = REPO / "leaderboards" / "runs"
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)

if CHROMIUM is None:
    if os.environ.get("MMBENCH_REQUIRE_BROWSER") == "1":
        raise RuntimeError("MMBENCH_REQUIRE_BROWSER=1 but no Chromium on PATH: apt-get install -y chromium")
    pytest.skip("headless Chromium is not installed (apt-get install -y chromium)", allow_module_level=True)

ALLOWED_SCHEMES = ("file:", "data:", "about:", "chrome:", "chrome-extension:", "blob:", "devtools:")


def chromium(url: str, tmp: Path, *args: str) -> tuple[str, str, list[str]]:
    """Run headless Chromium on ``url``; returns (stdout, stderr, every URL it requested)."""
    netlog = tmp / f"netlog-{len(list(tmp.glob('netlog-*')))}.json"
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=0",
        f"--log-net-log={netlog}", f"--user-data-dir={tmp / 'profile'}", *args, url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr, _requested_urls(netlog)


def _requested_urls(netlog: Path) -> list[str]:
    """URLs of the network requests the page made (Chromium's own background traffic — update
    checks, network time — has no initiating origin and is left out; file:// loads are not
    network requests and never appear)."""
    text = netlog.read_text()
    try:
        log = json.loads(text)
    except ValueError:  # the log of a browser that exits right after the page may lack its closing
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    starts = [e.get("params", {}) for e in log["events"] if e["type"] == start_job]
    return sorted({p["url"] for p in starts if "url" in p and p.get("initiator") != "not an origin"})


def console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines()
            if "CONSOLE" in line and re.search(r"Uncaught|Error|error", line)]


def external(urls: list[str]) -> list[str]:
    return [u for u in urls if not u.startswith(ALLOWED_SCHEMES)]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    assert list(RUNS.rglob("*.json")), f"no committed example runs under {RUNS}"
    out = tmp_path_factory.mktemp("browser") / "site"
    build_site([RUNS], out, reported_dir=REPO / "leaderboards" / "reported")
    return out


@pytest.fixture(scope="module")
def expected():
    frame = load_runs(RUNS)
    table = aggregate(frame, "best")
    return table[table["metric"] == "miou"]


def _body_rows(dom: str) -> list[tuple[str, dict[str, str]]]:
    """(label, {column: data-sort}) of the first row of every tbody of the results table, in DOM
    order (the page's other tables — the fidelity ledger — are not sorted)."""
    table = re.search(r'<table class="sortable leaderboard"[^>]*>(.*?)</table>', dom, re.S).group(1)
    rows = []
    for body in re.findall(r"<tbody>(.*?)</tbody>", table, re.S):
        first = re.search(r"<tr[^>]*>(.*?)</tr>", body, re.S).group(1)
        cells = dict(re.findall(r'<td data-col="([^"]+)" data-sort="([^"]*)"', first))
        rows.append((cells.get("label", ""), cells))
    return rows


def test_task_page_renders_the_expected_numbers(site, expected, tmp_path):
    dom, stderr, urls = chromium((site / "tasks" / "synth-rgbd-seg.html").as_uri(), tmp_path, "--dump-dom")
    assert "<table" in dom and "●" in dom and "○" in dom
    fusion = expected[(expected["task"] == "synth-rgbd-seg") & (expected["method"] == "fusion")]
    assert len(fusion), "the committed runs must include fusion on synth-rgbd-seg"
    for _, cell in fusion.iterrows():
        assert f"{percent(cell['mean'])} ± {percent(cell['std'])}" in dom, cell["subset"]
    assert "<svg" in dom and "Qualitative results" in dom
    assert not console_errors(stderr), console_errors(stderr)
    assert not external(urls), external(urls)


def test_scripted_sort_orders_rows(site, tmp_path):
    page = (site / "tasks" / "synth-rgbdi-pad.html").as_uri()
    before, _, _ = chromium(page, tmp_path, "--dump-dom")
    assert 'data-sorted-by="' not in before
    after, stderr, _ = chromium(page + "#sort=rgb", tmp_path, "--dump-dom")  # the script clicks the header
    assert 'data-sorted-by="rgb:asc"' in after  # ACER: lower is better → best (ascending) first
    values = [float(c["rgb"]) for _, c in _body_rows(after) if c.get("rgb")]
    assert len(values) >= 3 and values == sorted(values)
    filled = [bool(c.get("rgb")) for _, c in _body_rows(after)]
    assert filled == sorted(filled, reverse=True)  # rows without the subset go last
    by_label, _, _ = chromium(page + "#sort=label", tmp_path, "--dump-dom")
    labels = [label for label, _ in _body_rows(by_label)]
    assert labels == sorted(labels) and labels != [label for label, _ in _body_rows(before)]
    assert not console_errors(stderr)


def test_every_page_loads_without_errors_or_network(site, tmp_path):
    pages = [site / "index.html", *sorted((site / "tasks").glob("*.html")), *sorted((site / "methods").glob("*.html"))[:3],
             next((site / "runs").glob("*.html"))]
    for page in pages:
        _, stderr, urls = chromium(page.as_uri(), tmp_path, "--dump-dom")
        assert not console_errors(stderr), (page.name, console_errors(stderr))
        assert not external(urls), (page.name, external(urls))


def test_screenshot(site, tmp_path):
    shot = tmp_path / "task.png"
    chromium((site / "tasks" / "synth-rgbd-seg.html").as_uri(), tmp_path, "--hide-scrollbars",
             "--window-size=1400,2200", f"--screenshot={shot}")
    with Image.open(shot) as image:
        assert image.size == (1400, 2200)
        colours = image.convert("RGB").resize((140, 220)).getcolors(maxcolors=1 << 16)
    assert colours is not None and len(colours) > 50  # a rendered table and plots, not a blank page


def test_the_detectors_catch_errors_and_requests(tmp_path):
    """The console and network checks above can fail: a page with a script error and a remote
    image trips both."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><img src="http://example.invalid/x.png">'
                    '<script>fetch("https://api.example.invalid/data"); undefinedFunction();</script></body></html>')
    _, stderr, urls = chromium(page.as_uri(), tmp_path, "--dump-dom")
    assert console_errors(stderr)
    assert {"http://example.invalid/x.png", "https://api.example.invalid/data"} <= set(external(urls))


def test_site_has_no_remote_resources_in_markup(site):
    for page in site.rglob("*.html"):
        text = page.read_text()
        assert not re.search(r'<(script|link|img|iframe)[^>]+(src|href)="(https?:)?//', text), page
