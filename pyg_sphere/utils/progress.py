"""One progress-bar helper: tqdm when it is installed and wanted, else silence."""
from __future__ import annotations

from typing import Any


class _Silent:
    """A progress bar that shows nothing."""
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


def progress(total: int, desc: str, enabled: bool, leave: bool = True) -> Any:
    """A tqdm bar of ``total`` steps when ``enabled`` and tqdm is installed,
    otherwise a bar that shows nothing (same methods: ``update``,
    ``set_postfix``, ``close``)."""
    if enabled:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return _Silent()
        return tqdm(total=total, desc=desc, leave=leave)
    return _Silent()
