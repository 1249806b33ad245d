"""Waiting for something to happen without sleeping for a guessed time."""

from __future__ import annotations

import time
from collections.abc import Callable


def poll(condition: Callable[[], bool], timeout: float) -> bool:
    """Whether `condition` became true before `timeout` seconds passed (a ceiling: a pass returns
    as soon as it holds)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.01)
    return condition()
