"""(12) The leaderboard site at the scale of a public leaderboard: 10,000 run records (20 methods ×
10 tasks × 5 seeds × 10 variants), generated from a committed record with other names, seeds,
configs and jittered metrics. Reports the build time per record over a fifth of the tasks and over
all of them (ratio goal ≤ 1.3: the build is linear in its input; both after a warm-up build), the
total size of the site, and its largest page (goal ≤ 5 MB: every page stays readable in a browser)."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
from sizing import sized

from mmbench.leaderboard.site import build_site

TEMPLATE = Path(__file__).resolve().parents[1] / "leaderboards" / "runs" / "synth-rgbd-cls" / "fusion"
METHODS, TASKS, SEEDS, VARIANTS = sized((20, 10, 5, 10), (4, 3, 2, 3))


def _jitter(value, rng):
    if isinstance(value, dict):
        return {k: _jitter(v, rng) for k, v in value.items()}
    if isinstance(value, float):
        return min(max(value + rng.normal(0, 0.02), 0.0), 1.0)
    return value


def write_records(root: Path, tasks: int) -> int:
    """The records of ``tasks`` tasks (each METHODS × SEEDS × VARIANTS) under ``root``."""
    template = json.loads(next(iter(sorted(TEMPLATE.glob("*.json")))).read_text())
    rng = np.random.default_rng(0)
    count = 0
    for t in range(tasks):
        for m in range(METHODS):
            for v in range(VARIANTS):
                for seed in range(SEEDS):
                    run_id = hashlib.sha256(f"{t}/{m}/{v}/{seed}".encode()).hexdigest()[:16]
                    record = {**template, "run_id": run_id, "seed": seed,
                              "task": {**template["task"], "name": f"bench-task-{t:02d}"},
                              "method": {**template["method"], "name": f"bench-method-{m:02d}", "plugin": "bench"},
                              "config": {"variant": f"v{v}", "width": 8 * (v + 1)},
                              "metrics": _jitter(template["metrics"], rng),
                              "val_metrics": _jitter(template["val_metrics"], rng),
                              "curves": [_jitter(c, rng) for c in template["curves"]]}
                    path = root / record["task"]["name"] / record["method"]["name"] / f"{run_id}.json"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(json.dumps(record))
                    count += 1
    return count


def timed_build(runs: Path, out: Path) -> float:
    start = time.perf_counter()
    build_site([runs], out, reported_dir=None)
    return time.perf_counter() - start


def test_site_build_scales_linearly(benchmark, report, tmp_path):
    part = tmp_path / "part"
    small = write_records(part, max(TASKS // 5, 1))
    full = write_records(tmp_path / "runs", TASKS)
    timed_build(part, tmp_path / "site-warm-up")  # imports, template compilation
    per_record_small = timed_build(part, tmp_path / "site-part") / small
    seconds = benchmark.pedantic(timed_build, args=(tmp_path / "runs", tmp_path / "site"), rounds=1, iterations=1)
    pages = [p for p in (tmp_path / "site").rglob("*") if p.is_file()]
    largest = max(pages, key=lambda p: p.stat().st_size)
    total_mb = sum(p.stat().st_size for p in pages) / 2**20
    benchmark.extra_info["largest_page"] = str(largest.relative_to(tmp_path / "site"))
    report(benchmark, "site_seconds_per_record_all_over_a_fifth", seconds / full / per_record_small, "<= 1.3",
           records=full, build_seconds=seconds, part_records=small, files=len(pages), site_mb=total_mb)
    report(benchmark, "site_largest_page_mb", largest.stat().st_size / 2**20, "<= 5",
           input_mb=sum(p.stat().st_size for p in (tmp_path / "runs").rglob("*.json")) / 2**20)
