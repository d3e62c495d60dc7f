"""Running independent jobs in a pool of worker processes."""
from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Dict, Iterator, Sequence

#: Thread-count variables that a worker inherits, so that N workers share the
#: cores instead of each starting one thread per core.
THREAD_VARS = ('OMP_NUM_THREADS', 'DUCC0_NUM_THREADS', 'OPENBLAS_NUM_THREADS',
               'MKL_NUM_THREADS')


@contextlib.contextmanager
def environment(values: Dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of the ``with`` block."""
    saved = {var: os.environ.get(var) for var in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def check_not_bootstrapping(what: str) -> None:
    """Refuse to start a pool from a 'spawn' worker that is importing the
    main module (a script generating data at import time would wait forever
    on the lock its parent holds)."""
    import multiprocessing.process
    if getattr(multiprocessing.process.current_process(), '_inheriting', False):
        raise RuntimeError(f"{what} was called while a worker process was importing the main "
                           f"module. Protect the entry point of your script with "
                           f"`if __name__ == '__main__':`")


def run_jobs(jobs: Sequence[Any], func: Callable[[Any], Any], workers: int) -> Iterator[Any]:
    """Yield ``func(job)`` for each job, in completion order: in this process
    when ``workers == 1`` (or there is one job), else in a pool of 'spawn'
    processes, each limited to its share of the CPU threads.

    ``func`` must be a module-level (picklable) function. A failed job or
    worker raises here; the jobs not started yet are cancelled.
    """
    if workers == 1 or len(jobs) <= 1:
        for job in jobs:
            yield func(job)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = str(max(1, (os.cpu_count() or 1) // workers))
    executor = ProcessPoolExecutor(min(workers, len(jobs)),
                                   mp_context=multiprocessing.get_context('spawn'))
    try:
        # Workers start during submit() and inherit the environment then,
        # before their OpenMP / ducc runtimes read it.
        with environment({var: threads for var in THREAD_VARS}):
            futures = [executor.submit(func, job) for job in jobs]
        for future in as_completed(futures):
            yield future.result()
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
