"""Coarse, dynamically balanced parallelism for the CPU kernels.

The CPU filter works on blocks of maps, each a few small products. Running
every product with OpenMP's intra-op threads starts thousands of short
parallel regions per training step, each ending in a barrier that waits for
its slowest thread: when another process holds one of the cores, every
barrier waits for the descheduled thread (measured: 2 threads 2-30x slower
than 1). Instead, :func:`run_blocks` hands whole blocks to ``T`` participants
(the calling thread and ``T - 1`` persistent workers), each running PyTorch
single-threaded, and each taking the next block when it is done with one: a
participant slowed down by another process takes fewer blocks, and the call
waits for one block at most, never for a barrier per product.

``T`` is :func:`torch.get_num_threads` of the calling thread (set it with
:func:`torch.set_num_threads`, as for PyTorch itself); :func:`kernel_threads`
overrides it for a ``with`` block.

The workers never share the calling thread's CPU: each call restricts them to
the caller's own affinity mask less the CPU the caller is on (where the mask
has another). Without this, when another process holds one of two cores, the
scheduler keeps the caller and the worker together on the free one (its run
queues are 2:1 either way), and 2 threads get what 1 gets; apart, the caller
keeps a core and the worker takes its share of the busy one, and the blocks
follow. Only the library's own worker threads are ever restricted, never the
caller. ``PYG_SPHERE_SEPARATE_CPUS=0`` turns it off.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import queue
import threading
from typing import Callable, Iterator, List, Optional

import torch

_override: Optional[int] = None
_workers: List['_Worker'] = []
_lock = threading.Lock()
_local = threading.local()  # .outer: the caller's setting inside one_thread()


class _Worker(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True, name='pyg_sphere-kernel')
        self.tasks: 'queue.SimpleQueue' = queue.SimpleQueue()
        self.cpus: Optional[frozenset] = None  # the affinity this thread last set
        self.start()

    def run(self):
        torch.set_num_threads(1)  # this thread's own OpenMP / MKL setting
        while True:
            cpus, job = self.tasks.get()
            if cpus is not None and cpus != self.cpus:
                try:
                    os.sched_setaffinity(0, cpus)  # 0: this thread
                    self.cpus = cpus
                except OSError:
                    pass
            job()


def _forget_workers() -> None:  # a forked child has none of the parent's threads
    global _workers, _lock
    _workers = []
    _lock = threading.Lock()


if hasattr(os, 'register_at_fork'):
    os.register_at_fork(after_in_child=_forget_workers)


def _get_workers(count: int) -> List[_Worker]:
    with _lock:
        if len(_workers) < count:
            threads = torch.get_num_threads()
            while len(_workers) < count:
                _workers.append(_Worker())
            # A worker's set_num_threads(1) also sets the default of threads
            # created later; give the process its setting back.
            torch.set_num_threads(threads)
        return _workers[:count]


def _separate_cpus() -> bool:
    value = os.environ.get('PYG_SPHERE_SEPARATE_CPUS', '1')
    if value not in ('0', '1'):
        raise ValueError(f"PYG_SPHERE_SEPARATE_CPUS: expected '0' or '1', got {value!r}")
    return value == '1'


SEPARATE_CPUS = _separate_cpus()


def _sched_getcpu() -> Callable[[], int]:
    try:
        import ctypes
        fn = ctypes.CDLL(None).sched_getcpu
        fn.restype, fn.argtypes = ctypes.c_int, []
        return fn
    except (OSError, AttributeError):  # not glibc / not Linux: no separation
        return lambda: -1


_getcpu = _sched_getcpu()


def _worker_cpus() -> Optional[frozenset]:
    """The CPUs the workers of this call may use: the caller's own mask, less the
    CPU the caller runs on (where there is another); None where the platform
    has no affinity."""
    if not hasattr(os, 'sched_getaffinity'):
        return None
    allowed = frozenset(os.sched_getaffinity(0))  # 0: the calling thread
    if not SEPARATE_CPUS or len(allowed) < 2:
        return allowed
    cpu = _getcpu()
    return allowed - {cpu} if cpu in allowed else allowed


def num_participants() -> int:
    """Threads the kernels use: :func:`kernel_threads` or ``torch.get_num_threads()``."""
    if _override is not None:
        return max(1, _override)
    return max(1, getattr(_local, 'outer', None) or torch.get_num_threads())


@contextlib.contextmanager
def kernel_threads(threads: int) -> Iterator[None]:
    """Run the CPU kernels of :class:`~pyg_sphere.nn.SphericalChebConv` on ``threads``
    threads in this block (default: ``torch.get_num_threads()``)."""
    global _override
    from .._validation import check_int
    previous, _override = _override, check_int('threads', threads, minimum=1)
    try:
        yield
    finally:
        _override = previous


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """PyTorch single-threaded in this thread for a ``with`` block: for the small
    ops around the kernels, which would otherwise each start a parallel region."""
    threads = torch.get_num_threads()
    if threads == 1 or getattr(_local, 'outer', None):
        yield
        return
    _local.outer = threads
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        _local.outer = None


def coarse_threads() -> contextlib.AbstractContextManager:
    """The thread policy of a CPU training step: PyTorch's own ops run on one
    thread in this ``with`` block, while the kernels of
    :class:`~pyg_sphere.nn.SphericalChebConv` and the fused blocks keep
    ``torch.get_num_threads()`` participants (whole blocks of maps each).

    A step of a DeepSphere network is thousands of small ops around a few
    large kernels; with PyTorch's intra-op threads each small op starts a
    parallel region, and the OpenMP threads that keep spinning after it take
    the cores the kernels' participants need (measured on 2 cores, SHREC'17
    preset, forward + backward: 2 threads slower than 1 without this policy).
    :func:`pyg_sphere.training.train_model` applies it to every step on CPU,
    and ``DeepSphere`` and ``SphericalUNet`` to their own forward on CPU
    tensors (inference needs nothing more); wrap your own ``loss.backward()``
    in it likewise. It is re-entrant, and a no-op with one thread.

    A single large block (one map of at least 2^17 pixels) runs with PyTorch's
    own intra-op threads, as many as the participants, inside this block too.
    """
    return one_thread()


def forward_threads(x: torch.Tensor) -> contextlib.AbstractContextManager:
    """The policy of :func:`coarse_threads` around a model's forward on CPU
    tensors (what ``DeepSphere`` and ``SphericalUNet`` apply themselves); nothing
    on other devices or under ``torch.compile``, which cannot trace thread settings."""
    if x.device.type != 'cpu' or torch.compiler.is_compiling():
        return contextlib.nullcontext()
    return one_thread()


def run_blocks(fn: Callable[[int, int], None], num_blocks: int,
               participants: Optional[int] = None, intra_op: bool = False) -> None:
    """Call ``fn(block, participant)`` for every block in ``range(num_blocks)``.

    Participants ``0 .. T - 1`` (0 is the calling thread) run PyTorch with one
    thread, without autograd, and take blocks in order as they become free;
    ``fn`` may use per-participant buffers. Exceptions are re-raised in the
    caller. With ``intra_op`` (for one large block) the blocks run in the
    calling thread instead, with PyTorch's own intra-op threads: few, long
    parallel regions.
    """
    if intra_op:  # with all participants' threads, also inside one_thread()
        threads = torch.get_num_threads()
        torch.set_num_threads(num_participants() if participants is None else participants)
        try:
            with torch.no_grad():
                for i in range(num_blocks):
                    fn(i, 0)
        finally:
            torch.set_num_threads(threads)
        return
    T = max(1, min(num_participants() if participants is None else participants, num_blocks))
    counter = itertools.count()
    errors: List[BaseException] = []
    done = threading.Semaphore(0)

    def work(p: int) -> None:
        try:
            with torch.no_grad():  # grad mode is per thread
                while not errors:
                    i = next(counter)
                    if i >= num_blocks:
                        break
                    fn(i, p)
        except BaseException as err:  # noqa: B902 - re-raised by the caller
            errors.append(err)

    def job(p: int) -> Callable[[], None]:
        def run() -> None:
            try:
                work(p)
            finally:
                done.release()
        return run

    workers = _get_workers(T - 1) if T > 1 else []
    cpus = _worker_cpus() if workers else None
    for p, worker in enumerate(workers, start=1):
        worker.tasks.put((cpus, job(p)))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        work(0)
    finally:
        torch.set_num_threads(threads)
        for _ in workers:
            done.acquire()
    if errors:
        raise errors[0]
