"""One progress bar helper for the dataset generators."""
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


def progress(total: int, desc: str, enabled: bool) -> Any:
    """A tqdm bar of ``total`` steps when ``enabled`` and tqdm is installed,
    otherwise a bar that shows nothing."""
    if enabled:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return _Silent()
        return tqdm(total=total, desc=desc)
    return _Silent()
