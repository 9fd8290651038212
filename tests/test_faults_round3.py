"""Faults, round three: each test is named after its point (resources without bounds, wrong
results, raw errors); every fault ends as one ``error:`` line with a remedy and exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmbench.cli import main
from mmbench.threads import available_cores

COMMITTED = Path(__file__).resolve().parents[1] / "leaderboards" / "runs"


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize("threads", ["1000", "99999999999", "9" * 40])
def test_3_threads_above_the_cores_are_refused_in_one_line(threads, tmp_path, capsys):
    assert main(["run", "--threads", threads, "--out", str(tmp_path)]) == 2
    line = error_line(capsys)
    assert f"is more than the {available_cores()} core(s) this process may use; use at most {available_cores()}" in line
    assert "Overflow" not in line and len(line) < 300
    assert not any(tmp_path.iterdir())


def test_3_num_workers_above_the_cores_is_refused(tmp_path, capsys):
    workers = available_cores() + 1
    assert main(["run", "--set", f"recipe.num_workers={workers}", "--out", str(tmp_path / "runs")]) == 2
    assert f"recipe.num_workers={workers} runs more processes side by side than the" in error_line(capsys)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.json"))


def test_3_sweep_jobs_above_the_cores_is_refused(tmp_path, capsys):
    jobs = available_cores() + 1
    assert main(["sweep", "--methods", "fusion", "--tasks", "synth-rgbd-cls", "--jobs", str(jobs),
                 "--out", str(tmp_path / "runs")]) == 2
    assert f"--jobs={jobs} runs more processes side by side than the" in error_line(capsys)


def test_3_reproduce_may_use_the_recorded_threads_beyond_the_cores():
    from mmbench.threads import check_threads

    check_threads(available_cores() + 1, oversubscribe=True)  # no error: a record's own thread count


def _committed_pair(tmp_path: Path) -> tuple[Path, dict]:
    source = sorted((COMMITTED / "cls-mfeat" / "fusion").glob("*.json"))[0]
    return source, json.loads(source.read_text())


def test_4_two_completed_records_of_one_run_with_other_numbers_are_refused(tmp_path, capsys):
    source, data = _committed_pair(tmp_path)
    for folder, delta in (("a", 0.0), ("b", 0.01)):
        copy = json.loads(json.dumps(data))
        subset = next(iter(copy["metrics"]["best"]))
        copy["metrics"]["best"][subset]["accuracy"] += delta
        (tmp_path / folder / "cls-mfeat" / "fusion").mkdir(parents=True)
        (tmp_path / folder / "cls-mfeat" / "fusion" / source.name).write_text(json.dumps(copy))
    assert main(["leaderboard", "build", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "site"),
                 "--reported", "none"]) == 2
    line = error_line(capsys)
    assert f"run {data['run_id']} has two records with different numbers" in line
    assert str(tmp_path / "a") in line and str(tmp_path / "b") in line
    assert not (tmp_path / "site").exists()


def test_4_a_failed_record_never_hides_the_completed_one(tmp_path):
    from mmbench.leaderboard.site import collect_records

    source, data = _committed_pair(tmp_path)
    failed = {**data, "status": "failed", "failure": {"message": "nan loss", "epoch": 1}}
    for folder, record in (("a", failed), ("b", data)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / source.name).write_text(json.dumps(record))
    ((path, record),) = collect_records([tmp_path / "a", tmp_path / "b"], None)
    assert record.status == "completed" and path.parent.name == "b"
    assert len(collect_records([tmp_path / "b", tmp_path / "b"], None)) == 1  # one folder given twice


@pytest.mark.parametrize(("seeds", "message"), [
    ("[4294967296]", "'seeds': invalid seed range '4294967296': seeds must be between 0 and 4294967295"),
    ("[-1]", "'seeds': invalid seed range '-1'"),
    ("[true]", "'seeds' must list whole numbers, got 'True'"),
    ('["x"]', "'seeds' must list whole numbers, got 'x'"),
    ("{a = 1}", "'seeds' must be a whole number, a range such as \"0-4\" or a list of whole numbers, got"),
    ("1.5", "'seeds' must be a whole number, a range such as \"0-4\" or a list of whole numbers, got '1.5'"),
])
def test_6_and_9_sweep_file_seeds_are_checked_as_the_cli_checks_them(seeds, message, tmp_path, capsys):
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(f'methods = ["fusion"]\ntasks = ["synth-rgbd-cls"]\nseeds = {seeds}\n')
    assert main(["sweep", str(sweep), "--dry-run", "--out", str(tmp_path / "runs")]) == 2
    assert message in error_line(capsys)


def test_9_a_sweep_file_that_is_not_utf8_is_one_line(tmp_path, capsys):
    sweep = tmp_path / "sweep.toml"
    sweep.write_bytes(b'methods = ["fusion\xff"]\n')
    assert main(["sweep", str(sweep), "--dry-run", "--out", str(tmp_path / "runs")]) == 2
    assert f"sweep file {sweep} is not UTF-8 text (at byte offset 18); save it as UTF-8." in error_line(capsys)


@pytest.mark.parametrize("tflops", ["inf", "nan", "0", "-3"])
def test_7_a_non_finite_or_non_positive_throughput_is_refused(tflops, tmp_path, capsys):
    assert main(["sweep", "--methods", "fusion", "--tasks", "synth-rgbd-cls", "--estimate", "--sustained-tflops", tflops,
                 "--out", str(tmp_path / "runs")]) == 2
    assert "--sustained-tflops must be a positive number of TFLOP/s" in error_line(capsys)


def test_smaller_a_dangling_out_symlink_is_named_a_broken_symlink(tmp_path, capsys):
    link = tmp_path / "out"
    link.symlink_to(tmp_path / "gone")
    assert main(["run", "--out", str(link / "runs")]) == 2
    line = error_line(capsys)
    assert f"is a broken symbolic link ({link} → {tmp_path / 'gone'}, which does not exist or loops)" in line
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    assert main(["run", "--out", str(loop)]) == 2
    assert "is a broken symbolic link" in error_line(capsys)


def test_smaller_a_waiting_student_says_what_it_waits_for(tmp_path):
    import fcntl
    import threading

    from mmbench.artifacts import ArtifactCache

    cache, said = ArtifactCache(tmp_path), []
    (tmp_path / "teacher.lock").touch()
    with open(tmp_path / "teacher.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        waiter = threading.Thread(target=lambda: cache.lock("teacher", on_wait=lambda: said.append("waiting")).__enter__())
        waiter.start()
        waiter.join(timeout=0.5)
        assert said == ["waiting"] and waiter.is_alive()  # it said so, then blocked
        fcntl.flock(held, fcntl.LOCK_UN)
    waiter.join(timeout=5)
    assert not waiter.is_alive()
    with cache.lock("free", on_wait=lambda: said.append("never")):
        pass
    assert said == ["waiting"]


def test_smaller_dry_run_checks_a_cached_artifacts_checksum(tmp_path):
    import torch

    from mmbench.artifacts import ArtifactCache

    cache = ArtifactCache(tmp_path)
    cache.store("teacher", {"w": torch.ones(3)})
    assert cache.status("teacher") == "cached" and cache.status("other") == "missing"
    data = bytearray(cache.path("teacher").read_bytes())
    data[-5] ^= 0xFF
    cache.path("teacher").write_bytes(bytes(data))
    assert cache.status("teacher") == (f"corrupt: {cache.path('teacher')} is corrupt (its sha256 does not match the one "
                                       "stored with it); delete it to retrain")


def test_10_the_site_builds_from_non_finite_metrics_and_mathtext_labels(tmp_path):
    from mmbench.leaderboard import build_site

    runs = tmp_path / "runs"
    for method in ("fusion", "fusion-dropout"):
        for source in sorted((COMMITTED / "cls-mfeat" / method).glob("*.json")):
            data = json.loads(source.read_text())
            if method == "fusion" and data["seed"] == 1:
                data["metrics"]["best"]["fac"]["accuracy"] = float("nan")
                data["metrics"]["best"]["pix"]["accuracy"] = float("inf")
            if method == "fusion-dropout":
                data["config"]["p"] = "$\\frac{$"  # a label matplotlib would parse as mathtext
            (runs / method).mkdir(parents=True, exist_ok=True)
            (runs / method / source.name).write_text(json.dumps(data))
    build_site([runs], tmp_path / "site", reported_dir=None)
    html = (tmp_path / "site" / "tasks" / "cls-mfeat.html").read_text()
    assert "non-finite metric (seed 1: nan)" in html and "non-finite metric (seed 1: inf)" in html
    rows = json.loads((tmp_path / "site" / "tasks" / "cls-mfeat" / "leaderboard.json").read_text())["rows"]
    assert any(r["subset"] == "fac" and r["row"] == "fusion" and r["mean"] is None for r in rows)


def test_8_cached_teacher_weights_of_another_network_are_one_line(registry, tmp_path):
    import torch

    from conftest import FAST_OVERRIDES, make_runner
    from mmbench.errors import MMBenchError
    from mmbench.plan import plan_run

    plan = plan_run(registry, "kdv2", "synth-mssar-cls", 0, {**FAST_OVERRIDES, "recipe.epochs": "1"})
    runner = make_runner(registry, tmp_path)
    for dependency in plan.dependencies:  # valid checksums, another network's weights
        runner.artifacts.store(dependency.plan.run_id, {"elsewhere.weight": torch.zeros(2)})
    teacher = plan.dependencies[0].plan
    with pytest.raises(MMBenchError) as caught:
        runner.run(plan)
    message = str(caught.value)
    assert f"the cached weights of {teacher.method.name} (run {teacher.run_id}), needed by kdv2, do not fit" in message
    assert f"delete {runner.artifacts.path(teacher.run_id)} to retrain it" in message
    assert "\n" not in message and len(message) < 600


def test_smaller_serve_answers_a_nul_byte_path_with_400(tmp_path):
    import http.server
    import threading
    import urllib.error
    import urllib.request

    from mmbench.cli.leaderboard import site_handler

    (tmp_path / "index.html").write_text("<p>site</p>")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), site_handler(tmp_path))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(f"{base}/%00", timeout=5)
        assert caught.value.code == 400
        assert urllib.request.urlopen(f"{base}/index.html", timeout=5).read() == b"<p>site</p>"
    finally:
        server.shutdown()
        server.server_close()


def test_2_a_sweep_of_more_than_100_runs_asks_for_yes_before_planning(tmp_path, capsys):
    args = ["sweep", "--methods", "fusion", "--tasks", "synth-rgbd-cls", "--seeds", "0-99999", "--dry-run",
            "--out", str(tmp_path / "runs")]
    assert main(args) == 2
    assert "this sweep asks for 100000 runs; add --yes to confirm more than 100" in error_line(capsys)
    assert not (tmp_path / "runs").exists()  # before: minutes of planning and 660 MB, then a 100,000-row table
    import mmbench

    with pytest.raises(mmbench.MMBenchError, match="asks for 101 runs"):
        mmbench.sweep("fusion", "synth-rgbd-cls", seeds="0-100", out=tmp_path / "runs")
