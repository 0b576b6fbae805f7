"""A progress bar for the command line: tqdm on a terminal, nothing otherwise.

Long transfers (``dump``, ``load``, ``memory read/write``) show how far they got when a person
is watching, and stay silent in pipes and scripts.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["Progress"]


class Progress:
    """Counts ``update(n)`` steps on a tqdm bar when stderr is a terminal.

    ``total`` may be ``None`` (unknown); with ``at_least``, a known total smaller than that
    shows no bar (a small transfer needs none).  ``unit`` is what is counted; ``"B"`` scales
    to KB/MB.  ``enabled=False`` shows nothing whatever stderr is.
    """

    def __init__(
        self, total: int | None, what: str, unit: str, at_least: int = 0, enabled: bool = True
    ) -> None:
        self._bar: Any = None
        if enabled and sys.stderr.isatty() and (total is None or total > at_least):
            from tqdm import tqdm

            self._bar = tqdm(
                total=total, unit=unit, unit_scale=unit == "B", desc=what, file=sys.stderr
            )

    def update(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
