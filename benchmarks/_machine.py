"""Describe the machine a benchmark ran on (printed beside every result)."""
import os
import platform

import torch


def describe() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ''
    try:
        pages = os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')
        mem = f', {pages / 2**30:.0f} GiB RAM'
    except (ValueError, OSError):
        pass
    gpu = ''
    if torch.cuda.is_available():
        gpu = f', GPU {torch.cuda.get_device_name(0)}'
    return (f'{platform.platform()}; {cpu}; {os.cpu_count()} CPUs{mem}{gpu}; '
            f'python {platform.python_version()}, torch {torch.__version__}, '
            f'{torch.get_num_threads()} torch threads')
