"""The loaded case of the benchmarks: a busy process on one CPU, the CPU pressure."""
import os
import subprocess
import sys
import time


class Busy:
    """A ``while True: pass`` process for a ``with`` block, the case of a machine
    shared with one other busy job: pinned to the last CPU (``pinned``), or left to
    the scheduler as another user's job would be."""

    def __init__(self, pinned: bool = True):
        self.pinned = pinned

    def __enter__(self):
        self.cpu = max(os.sched_getaffinity(0)) if self.pinned else None
        code = 'while True: pass'
        if self.pinned:
            code = f'import os\nos.sched_setaffinity(0, {{{self.cpu}}})\n' + code
        self.proc = subprocess.Popen([sys.executable, '-c', code])
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


def cpu_pressure() -> str:
    """Linux PSI: share of time some task waited for a CPU (other users of the machine)."""
    try:
        with open('/proc/pressure/cpu') as f:
            return f.readline().strip()
    except OSError:
        return 'n/a'


def loaded_conv_cases(args, common, env, results, spawn, entry_name) -> None:
    """bench_conv.py --loaded: each nside at 1 and 2 threads beside a busy process,
    --rounds times in alternating order (fresh subprocesses). With twice the
    threads, a robust layer gets faster, or at worst stays as fast, when one of
    the cores is taken."""
    import statistics
    pinned = args.busy == 'pinned'
    where = f'pinned to CPU {max(os.sched_getaffinity(0))}' if pinned else 'not pinned'
    print(f'loaded: a busy process {where}; each case at 1 and 2 threads (fresh '
          f'subprocesses, in turn), {args.rounds} round(s) in alternating order')
    print(f'{"entry":>44} {"threads":>7} {"fwd+bwd ms":>11} {"(min)":>8} {"fwd ms":>8}')
    with Busy(pinned):
        for nside in args.nside:
            ratios = {impl: ([], []) for impl in args.impls}
            for rnd in range(args.rounds):
                rows = {}
                for threads in ((1, 2) if rnd % 2 == 0 else (2, 1)):
                    case = dict(impls=args.impls, nside=nside, repeat=args.repeat, **common)
                    for r in spawn('time', case, env, threads=threads):
                        r['threads'], r['loaded'], r['round'] = threads, True, rnd
                        rows[r['impl'], threads] = r
                        results.append(r)
                        name = entry_name(r['impl'], nside, args.batch, args.dtype, args.device)
                        print(f'{name:>44} {threads:>7} {r["fwd_bwd"] * 1e3:>11.1f} '
                              f'{r["fwd_bwd_min"] * 1e3:>8.1f} {r["fwd"] * 1e3:>8.1f}')
                for impl in args.impls:
                    one, two = rows[impl, 1], rows[impl, 2]
                    ratios[impl][0].append(two['fwd_bwd'] / one['fwd_bwd'])
                    ratios[impl][1].append(two['fwd'] / one['fwd'])
            for impl, (fb, fw) in ratios.items():
                spread = ('' if len(fb) < 2 else
                          f' (per-round mean {statistics.mean(fb):.2f} +- '
                          f'{statistics.stdev(fb):.2f})')
                print(f'nside {nside} {impl}, loaded: 2 threads / 1 thread = '
                      f'{statistics.median(fb):.2f} forward+backward{spread}, '
                      f'{statistics.median(fw):.2f} forward (medians over rounds; '
                      f'< 1: faster on 2)')


def add_busy_argument(parser) -> None:
    parser.add_argument('--busy', choices=('pinned', 'free'), default='pinned',
                        help="--loaded: the busy process pinned to the last CPU, or left to "
                             "the scheduler (default: pinned)")


def thread_ratios(fns: dict, threads: int, rounds: int, calls: int = 3) -> dict:
    """Each of ``fns`` (name -> callable) at 1 thread, at ``threads`` threads, and at
    ``threads`` with the kernel workers allowed on the caller's CPU (as with
    ``PYG_SPHERE_SEPARATE_CPUS=0``), round after round in alternating order, so that
    all three share whatever else the machine does; for each name and case, the
    per-round time ratios against 1 thread: ``{name: {case: [ratio, ...]}}``.
    Run it beside a :class:`Busy`: sequential blocks of rounds per thread count
    drift apart on a shared machine more than the effect measured."""
    import torch
    from pyg_sphere.nn import _threads
    cases = [('1', 1, True), (str(threads), threads, True),
             (f'{threads}-shared', threads, False)]
    saved, previous = _threads.SEPARATE_CPUS, torch.get_num_threads()
    times = {name: {case: [] for case, _, _ in cases} for name in fns}
    try:
        for r in range(-1, rounds):  # round -1: a warm-up of every case
            for case, T, separate in (cases if r % 2 == 0 else cases[::-1]):
                torch.set_num_threads(T)
                _threads.SEPARATE_CPUS = separate
                for name, fn in fns.items():
                    t = time.perf_counter()
                    for _ in range(calls):
                        fn()
                    if r >= 0:
                        times[name][case].append((time.perf_counter() - t) / calls)
    finally:
        _threads.SEPARATE_CPUS = saved
        torch.set_num_threads(previous)
    return {name: {case: [b / a for a, b in zip(t['1'], t[case])] for case in t if case != '1'}
            for name, t in times.items()}
