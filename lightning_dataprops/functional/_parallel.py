"""Block-parallel CPU work that a busy machine cannot stall: one single-threaded task at a time
per worker, as many workers as CPUs this process may actually use.

Each block of the neighbour pass is dozens of short torch operations. Run with several OpenMP
threads, every one of them ends at a barrier, and a thread the OS has descheduled (another
process wants the core) holds up all the others at each barrier: on 2 cores with 2 competing
busy processes the pass took 4.7x its quiet time where a fair share is 2x. Here every block runs
on one thread from start to end, and the workers take the next block as soon as they are done
(dynamic scheduling): a descheduled worker delays its own block only, the others take the rest.
The decision adapts per block to the CPU time the workers actually get; nothing is guessed from
the load average.

For the same reason a whole search runs inside :func:`worker_pool`: the pool's size is fixed once
(:func:`available_cpus`), and the calling thread itself runs on one torch thread in between the
pooled stages too, so that no stage is a multi-threaded region with barriers. Work that would
otherwise run there on several threads (the kernel's operands, re-searches) is split into row
ranges (:func:`row_ranges`) and pooled as well.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from pathlib import Path
from typing import TypeVar

import torch

__all__ = ["available_cpus", "map_tasks", "row_ranges", "run_tasks", "worker_pool"]

T = TypeVar("T")
R = TypeVar("R")
# The size of the pool of the search in progress (set by ``worker_pool``), seen by its helpers.
_POOL_SIZE: contextvars.ContextVar[int | None] = contextvars.ContextVar("pool_size", default=None)
# True while a thread runs a pooled task: work it starts runs in order, not on a second pool.
_IN_WORKER: contextvars.ContextVar[bool] = contextvars.ContextVar("in_worker", default=False)
# torch's thread count is process-wide: searches running at once from several user threads share
# one saved value, restored when the last of them ends.
_STATE = threading.Lock()
_active_pools = 0
_threads_outside = 1
_CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
_CGROUP_V1 = (
    Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
    Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
)


def _cgroup_cpus() -> float | None:
    """The container's CPU quota in CPUs (cgroup v2 ``cpu.max`` or v1 CFS), ``None`` if none."""
    try:
        if _CGROUP_V2.exists():
            quota, period = _CGROUP_V2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        quota_path, period_path = _CGROUP_V1
        if quota_path.exists() and period_path.exists():
            quota_us = int(quota_path.read_text())
            return None if quota_us <= 0 else quota_us / int(period_path.read_text())
    except (OSError, ValueError):
        return None
    return None


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup CPU quota (rounded up)
    and by ``torch.get_num_threads()`` (the user's own limit, as it is outside every running
    search); at least 1. Inside :func:`worker_pool`: the pool's size, fixed when it was
    entered."""
    pool = _POOL_SIZE.get()
    if pool is not None:
        return pool
    affinity = getattr(os, "sched_getaffinity", None)
    cpus = len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)
    quota = _cgroup_cpus()
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    with _STATE:
        threads = _threads_outside if _active_pools else torch.get_num_threads()
    return max(1, min(cpus, threads))


@contextlib.contextmanager
def worker_pool(device: torch.device) -> Iterator[None]:
    """Run a whole search as pooled single-threaded work (on the CPU; elsewhere a no-op).

    The pool's size is :func:`available_cpus` as of entering; the calling thread then runs on
    one torch thread until the block ends (restored after, whatever happens), and
    :func:`run_tasks` spreads the heavy stages over the pool. Nested pools keep the outer one;
    searches run at once from several threads restore the user's thread count when the last of
    them ends.
    """
    global _active_pools, _threads_outside
    if device.type != "cpu" or _POOL_SIZE.get() is not None:
        yield
        return
    with _STATE:
        if _active_pools == 0:
            _threads_outside = torch.get_num_threads()
        _active_pools += 1
    token = _POOL_SIZE.set(available_cpus())
    try:
        torch.set_num_threads(1)
        yield
    finally:
        _POOL_SIZE.reset(token)
        with _STATE:
            _active_pools -= 1
            if _active_pools == 0:
                torch.set_num_threads(_threads_outside)


def row_ranges(
    n_rows: int, min_rows: int = 1, max_rows: int | None = None, tasks_per_worker: int = 4
) -> list[range]:
    """``range(0, n_rows)`` cut into about ``tasks_per_worker`` ranges per worker of the pool
    (:func:`available_cpus`), each of at least ``min_rows`` rows and at most ``max_rows`` (more
    ranges then; it bounds each task's memory): a few tasks per worker, so that a worker the OS
    deschedules leaves the rest to the others."""
    per_task = max(1, min_rows, -(-n_rows // (tasks_per_worker * available_cpus())))
    if max_rows is not None:
        per_task = max(1, min(per_task, max_rows))
    return [range(a, min(a + per_task, n_rows)) for a in range(0, n_rows, per_task)]


def run_tasks(tasks: Iterable[T], work: Callable[[T], None], device: torch.device) -> None:
    """Call ``work(task)`` for every task.

    On the CPU with more than one :func:`available_cpus`, a pool of that many workers (the
    calling thread and helper threads) each runs its tasks on one torch thread and takes the
    next task when done; ``work`` must then be safe to run concurrently on different tasks.
    Elsewhere (one CPU, a GPU, a task of a pool starting more tasks) the tasks run in order in
    the calling thread. The first exception of any task stops the pool and is raised here; the
    torch thread count is restored (:func:`worker_pool`).
    """
    with worker_pool(device):
        workers = available_cpus() if device.type == "cpu" and not _IN_WORKER.get() else 1
        if isinstance(tasks, Sized) and len(tasks) <= 1:
            workers = 1
        if workers <= 1:
            for task in tasks:
                work(task)
            return
        _run_pooled(tasks, work, workers)


def map_tasks(tasks: Sequence[T], work: Callable[[T], R], device: torch.device) -> list[R]:
    """``[work(task) for task in tasks]`` run as :func:`run_tasks` does, results in the tasks'
    order whatever order the workers finish them in."""
    slots: dict[int, R] = {}

    def one(numbered: tuple[int, T]) -> None:
        slots[numbered[0]] = work(numbered[1])

    run_tasks(list(enumerate(tasks)), one, device)
    return [slots[number] for number in range(len(tasks))]


def _run_pooled(tasks: Iterable[T], work: Callable[[T], None], workers: int) -> None:
    """:func:`run_tasks` on ``workers`` threads (the calling one and helpers)."""
    iterator = iter(tasks)
    lock = threading.Lock()
    errors: list[BaseException] = []
    stop = threading.Event()
    done = object()

    def loop() -> None:
        token = _IN_WORKER.set(True)
        try:
            # Threads do not inherit the caller's grad mode: neighbour searches never need it.
            torch.set_num_threads(1)
            with torch.no_grad():
                take_tasks()
        finally:
            _IN_WORKER.reset(token)

    def take_tasks() -> None:
        while not stop.is_set():
            with lock:
                task = next(iterator, done)
            if task is done:
                return
            try:
                work(task)  # type: ignore[arg-type]
            except BaseException as error:  # re-raised in the calling thread
                errors.append(error)
                stop.set()
                return

    # Each helper runs in a copy of the caller's context, so config_context settings hold there.
    helpers = [
        threading.Thread(target=contextvars.copy_context().run, args=(loop,), daemon=True)
        for _ in range(workers - 1)
    ]
    try:
        for helper in helpers:
            helper.start()
        loop()
    finally:
        stop.set()  # nothing is left to take unless the calling thread was interrupted
        for helper in helpers:
            helper.join()
    if errors:
        raise errors[0]
