"""How many CPU threads a run's torch operations use.

Nothing in torch looks at the process's CPU affinity or at its neighbours: two runs side by side on
a 2-core machine each start one intra-op thread per core and oversubscribe the cores (epoch times
were seen to swing from 9 s to 159 s). ``mmbench run --threads`` sets torch's intra-op threads;
the default is the cores this process may run on (its CPU affinity, as ``taskset`` / Slurm /
containers set it) divided among the processes of a ``torchrun`` on this node. The local sweep
executor gives each of its ``--jobs`` runs an equal share.
"""

from __future__ import annotations

import os

from mmbench.errors import MMBenchError, echo


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask; the machine's count elsewhere)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):  # not Linux
        return max(os.cpu_count() or 1, 1)


def default_threads() -> int:
    """The cores available to this process, shared among the local ranks of a torchrun."""
    try:
        local_processes = max(int(os.environ.get("LOCAL_WORLD_SIZE", "1")), 1)
    except ValueError:
        local_processes = 1
    return max(available_cores() // local_processes, 1)


def share_of_cores(jobs: int) -> int:
    """Threads per run when ``jobs`` runs share this process's cores (at least one)."""
    return max(available_cores() // max(jobs, 1), 1)


def check_threads(threads: int | None, oversubscribe: bool = False) -> None:
    """A thread count the user gave must be at least one and at most the cores this process may
    use (``None``: the default): more threads than cores only slow a run down — on a shared
    machine, by orders of magnitude for everyone. ``oversubscribe``: allow more (``mmbench
    reproduce`` re-runs a record with the thread count it was made with, which decides its
    floating-point sums)."""
    if threads is None:
        return
    if threads < 1:
        raise MMBenchError(f"invalid --threads {threads}: use a number of threads >= 1.")
    cores = available_cores()
    if threads > cores and not oversubscribe:
        raise MMBenchError(f"--threads {echo(threads, 20)[1:-1]} is more than the {cores} core(s) this process may "
                           f"use; use at most {cores} (more threads than cores only slow the run down).")


def check_parallel(what: str, count: int, per_item: int = 1) -> None:
    """``count`` processes side by side (sweep ``--jobs``, ``recipe.num_workers``) must fit the
    cores this process may use."""
    cores = available_cores()
    if count * per_item > cores:
        raise MMBenchError(f"{what}={count} runs more processes side by side than the {cores} core(s) this process "
                           f"may use; use at most {max(cores // per_item, 1)}.")


def set_threads(threads: int | None, oversubscribe: bool = False) -> int:
    """Set torch's intra-op threads (``None``: :func:`default_threads`); returns the count set."""
    check_threads(threads, oversubscribe)
    import torch

    count = threads or default_threads()
    torch.set_num_threads(count)
    return count
