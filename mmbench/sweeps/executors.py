"""Where the runs of a sweep execute. Every executor runs one ``mmbench run`` per job (one run
per process: a crash or out-of-memory error takes down one run, never the sweep) and reports
``(job, returncode, log)``. Records are written atomically by the runs themselves, so a killed
sweep loses nothing that finished and a re-run finds it.

* ``local``: a pool of ``--jobs`` subprocesses on this machine, each with ``--threads`` set to its
  share of the cores (no oversubscription); with ``CUDA_VISIBLE_DEVICES`` set, jobs get its GPUs
  round-robin. Subprocesses die with the sweep (``PR_SET_PDEATHSIG``).
Every executor passes the sweep's plugins (``--plugin`` and ``MMBENCH_PLUGINS``) to each run as
``--plugin`` options (file paths made absolute) and threads equal to the CPUs a run is given.

* ``ray``: one Ray task per run with ``num_cpus`` / ``num_gpus``; ``--address`` joins a cluster,
  otherwise a local Ray instance is started. Needs ``pip install 'mmbench[ray]'``.
* ``slurm``: a submitit job array (partition, time limit, GPUs per run), logs per run under
  ``<out>/.sweep/slurm``. Needs ``pip install 'mmbench[slurm]'``.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from mmbench.errors import MMBenchError
from mmbench.interrupts import Terminated
from mmbench.sweeps.grid import PlannedJob
from mmbench.threads import check_parallel, share_of_cores


@dataclass
class RunResult:
    entry: PlannedJob
    returncode: int
    log: Path


class Executor(Protocol):
    def run(self, entries: list[PlannedJob], done: Callable[[RunResult], None]) -> None: ...


def command(entry: PlannedJob, out: Path, extra: Iterable[str]) -> list[str]:
    """The ``mmbench run`` command of a job. A job resumes its checkpoint (a killed sweep re-run
    continues each interrupted run from its last epoch) unless the sweep forces re-runs; a
    dependency keeps its weights for the runs that need it."""
    weights = ["--save-weights"] if entry.save_weights else []
    resume = [] if "--force" in extra else ["--resume"]
    return [sys.executable, "-m", "mmbench", *entry.job.run_args(), *weights, *resume, "--out", str(out), *extra]


def _die_with_parent() -> None:  # runs in the child before exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _spawn(argv: list[str], handle: Any, env: dict[str, str] | None) -> subprocess.Popen:
    """Start one run, its output to ``handle``, in a process group of its own (a terminal's Ctrl-C
    reaches the sweep, which passes it on once) and killed if the sweep dies."""
    return subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                            start_new_session=True,
                            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)


def _passed_on(interrupt: BaseException) -> int:
    """The signal a run gets for ``interrupt``: SIGTERM for SIGTERM, else SIGINT (Ctrl-C's)."""
    return signal.SIGTERM if isinstance(interrupt, Terminated) else signal.SIGINT


class Children:
    """The runs a local executor has started and not yet seen finish. Each child is the leader of
    its own process group, so a terminal's Ctrl-C reaches the sweep alone, which then forwards one
    signal to every child (a second one could interrupt a child while it writes its checkpoint)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen] = set()
        self._stopping = False

    def run(self, argv: list[str], log: Path, env: dict[str, str] | None = None) -> int:
        """Run one job, its output appended to ``log``; the child is killed if the sweep dies."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as handle, self._lock:
            if self._stopping:  # the sweep was stopped while this job waited for a slot
                return INTERRUPTED
            process = _spawn(argv, handle, env)
            self._running.add(process)
        try:
            return process.wait()
        finally:
            with self._lock:
                self._running.discard(process)

    def stop(self, signum: int, grace: float = 60.0) -> int:
        """Send ``signum`` to every running child and wait up to ``grace`` seconds for each to
        keep its checkpoint and exit (then kill it); start no new child. Returns how many ran."""
        with self._lock:
            self._stopping = True
            running = list(self._running)
        for process in running:
            try:
                process.send_signal(signum)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        for process in running:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return len(running)


#: The return code of a job the sweep stopped before it started.
INTERRUPTED = -signal.SIGINT


def run_logged(argv: list[str], log: Path, env: dict[str, str] | None = None) -> int:
    """Run one job, its output appended to ``log``; the child is killed if the sweep dies, and an
    interrupt of this process (Ctrl-C, SIGTERM, a cancelled Ray task) is passed on to it."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as handle:
        process = _spawn(argv, handle, env)
        try:
            return process.wait()
        except BaseException as exc:
            process.send_signal(_passed_on(exc))
            try:
                process.wait(timeout=60)  # the run keeps its last checkpoint for --resume
            except subprocess.TimeoutExpired:
                process.kill()
            raise


class SweepInterrupted(KeyboardInterrupt):
    """The sweep was stopped (Ctrl-C or SIGTERM) with ``runs`` runs under way, each told to stop
    at its last checkpoint (local), cancelled (Ray) or cancelled through the scheduler (Slurm)."""

    def __init__(self, runs: int, how: str = "stopped"):
        super().__init__(runs, how)
        self.runs, self.how = runs, how


def last_error(log: Path) -> str:
    """The run's ``error:`` line (or its last line) for the sweep summary."""
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or ["no output"])[-1]


class LocalExecutor:
    """``jobs`` runs at once, each with an equal share of this process's cores as its threads."""

    def __init__(self, out: Path, jobs: int = 1, extra: Iterable[str] = (), env: dict[str, str] | None = None):
        if jobs < 1:
            raise MMBenchError(f"--jobs must be at least 1, got {jobs}.")
        check_parallel("--jobs", jobs)  # each run needs a core of its own
        self.out, self.jobs = out, jobs
        self.extra = [*extra, "--threads", str(share_of_cores(jobs))]
        self.env = dict(env or {})
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
        self.gpus = [g for g in visible.split(",") if g.strip()] if visible else []

    def _env(self, index: int) -> dict[str, str]:
        gpu = {"CUDA_VISIBLE_DEVICES": self.gpus[index % len(self.gpus)]} if self.gpus else {}
        return {**self.env, **gpu}

    def run(self, entries: list[PlannedJob], done: Callable[[RunResult], None]) -> None:
        logs = self.out / ".sweep" / "logs"
        children = Children()
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.jobs)
        futures = {}
        try:
            for index, entry in enumerate(entries):
                log = logs / f"{entry.run_id}.log"
                future = pool.submit(children.run, command(entry, self.out, self.extra), log, self._env(index))
                futures[future] = (entry, log)
            for future in concurrent.futures.as_completed(futures):
                entry, log = futures[future]
                done(RunResult(entry, future.result(), log))
        except BaseException as exc:
            pool.shutdown(wait=False, cancel_futures=True)  # start nothing new
            stopped = children.stop(_passed_on(exc))
            pool.shutdown(wait=True)
            if isinstance(exc, KeyboardInterrupt):
                raise SweepInterrupted(stopped, "stopped at their last checkpoint") from exc
            raise
        pool.shutdown(wait=True)


def _remote_run(argv: list[str], log: str, env: dict[str, str] | None = None) -> int:
    return run_logged(argv, Path(log), env)


class RayExecutor:
    def __init__(self, out: Path, address: str | None = None, cpus_per_run: float = 1, gpus_per_run: float = 0,
                 extra: Iterable[str] = (), env: dict[str, str] | None = None):
        try:
            import ray
        except ImportError:
            raise MMBenchError("--executor ray needs Ray: pip install 'mmbench[ray]'.") from None
        self.ray, self.out, self.env = ray, out, dict(env or {})
        self.extra = [*extra, "--threads", str(max(int(cpus_per_run), 1))]
        self.address, self.cpus, self.gpus = address, cpus_per_run, gpus_per_run

    def run(self, entries: list[PlannedJob], done: Callable[[RunResult], None]) -> None:
        ray = self.ray
        if not ray.is_initialized():
            ray.init(address=self.address) if self.address else ray.init()
        remote = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus)(_remote_run)
        logs = self.out / ".sweep" / "logs"
        pending = {remote.remote(command(e, self.out, self.extra), str(logs / f"{e.run_id}.log"), self.env): e
                   for e in entries}
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                entry = pending.pop(ready[0])
                done(RunResult(entry, ray.get(ready[0]), logs / f"{entry.run_id}.log"))
        except BaseException as exc:
            for ref in pending:
                ray.cancel(ref)  # the task passes the interrupt on to its run, which keeps its checkpoint
            if isinstance(exc, KeyboardInterrupt):
                raise SweepInterrupted(len(pending), "cancelled as Ray tasks") from exc
            raise


class SlurmExecutor:
    def __init__(self, out: Path, partition: str | None = None, time_min: int = 240, gpus_per_run: int = 0,
                 cpus_per_run: int = 4, parallelism: int = 64, cluster: str | None = None, extra: Iterable[str] = (),
                 env: dict[str, str] | None = None):
        try:
            import submitit
        except ImportError:
            raise MMBenchError("--executor slurm needs submitit: pip install 'mmbench[slurm]'.") from None
        self.out, self.env = out, dict(env or {})
        self.extra = [*extra, "--threads", str(max(cpus_per_run, 1))]
        self.executor = submitit.AutoExecutor(folder=str(out / ".sweep" / "slurm" / "%j"), cluster=cluster)
        params = {"timeout_min": time_min, "cpus_per_task": cpus_per_run, "slurm_array_parallelism": parallelism}
        if gpus_per_run:
            params["gpus_per_node"] = gpus_per_run
        if partition:
            params["slurm_partition"] = partition
        self.executor.update_parameters(**params)

    def run(self, entries: list[PlannedJob], done: Callable[[RunResult], None]) -> None:
        logs = self.out / ".sweep" / "logs"
        argvs = [command(e, self.out, self.extra) for e in entries]
        jobs = self.executor.map_array(_remote_run, argvs, [str(logs / f"{e.run_id}.log") for e in entries],
                                       [self.env] * len(entries))
        try:
            for job, entry in zip(jobs, entries, strict=True):
                try:
                    code = job.result()
                except Exception as exc:  # the job itself died (timeout, node failure)
                    (logs / f"{entry.run_id}.log").parent.mkdir(parents=True, exist_ok=True)
                    with open(logs / f"{entry.run_id}.log", "a") as handle:
                        handle.write(f"error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}\n")
                    code = 1
                done(RunResult(entry, code, logs / f"{entry.run_id}.log"))
        except BaseException as exc:
            unfinished = [job for job in jobs if not job.done()]
            for job in unfinished:
                job.cancel(check=False)  # scancel: Slurm sends the run SIGTERM, it keeps its checkpoint
            if isinstance(exc, KeyboardInterrupt):
                raise SweepInterrupted(len(unfinished), "cancelled as Slurm jobs") from exc
            raise
