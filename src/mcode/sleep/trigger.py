"""Running the sleep pass once edits pause: what `mcode watch` (and a session) hands its changes to.

`mark()` says files changed; once `quiet` seconds pass without another mark, and nothing the owner
calls busy is under way (an agent's turn), `action` runs on a thread of its own. A mark during the
run makes `edited()` true, which the pass asks between summaries: it stops, keeping what it wrote,
and runs again after the next quiet period. An error is reported and the trigger goes on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mcode.config import Settings
    from mcode.sleep.run import PassReport

BUSY_POLL_SECONDS = 0.5  # how often a busy owner is asked again


class QuietTrigger:
    def __init__(
        self,
        action: Callable[[], None],
        quiet: float,
        *,
        busy: Callable[[], bool] = lambda: False,
        on_error: Callable[[BaseException], None] = lambda exc: None,
    ) -> None:
        self.action = action
        self.quiet = quiet
        self.busy = busy
        self.on_error = on_error
        self.runs = 0  # passes started
        self._cond = threading.Condition()
        self._last_mark: float | None = None  # monotonic time of the newest unserved mark
        self._running_since: float | None = None
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="mcode-sleep", daemon=True)

    def start(self) -> QuietTrigger:
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """No pass starts after this; one under way is asked to stop and waited for."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def mark(self) -> None:
        """Files changed: (re)start the quiet period."""
        with self._cond:
            self._last_mark = time.monotonic()
            self._cond.notify_all()

    def edited(self) -> bool:
        """Whether the pass under way should stop: files changed since it began, or stopping."""
        with self._cond:
            if self._stopped:
                return True
            since = self._running_since
            return since is not None and self._last_mark is not None and self._last_mark > since

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and not self._due():
                    self._cond.wait(self._wait_time())
                if self._stopped:
                    return
                self._running_since = time.monotonic()
                self._last_mark = None
            try:
                self.runs += 1
                self.action()
            except Exception as exc:
                self.on_error(exc)
            finally:
                with self._cond:  # a mark made meanwhile stays, for the next quiet period
                    self._running_since = None

    def _due(self) -> bool:
        """Marked, quiet long enough, and the owner is not busy (called holding the lock)."""
        if self._last_mark is None or time.monotonic() - self._last_mark < self.quiet:
            return False
        return not self.busy()

    def _wait_time(self) -> float | None:
        if self._last_mark is None:
            return None
        left = self.quiet - (time.monotonic() - self._last_mark)
        return max(left, 0.0) if left > 0 else BUSY_POLL_SECONDS


def pass_when_quiet(
    settings: Settings,
    purpose: str,
    *,
    on_report: Callable[[PassReport], None],
    on_skip: Callable[[str], None],
    on_error: Callable[[BaseException], None],
    busy: Callable[[], bool] = lambda: False,
) -> QuietTrigger:
    """A started trigger whose action is one sleep pass, stopped early when files change again:
    what `mcode watch` and a session run. `on_skip` hears why a pass could not start (another
    pass runs, no index yet); `on_report` what each pass did."""

    def action() -> None:
        from mcode.retrieval.workspace import IndexMissingError
        from mcode.sleep.run import PassOptions, run_pass
        from mcode.store import IndexLockedError

        try:
            report = run_pass(settings, PassOptions(purpose=purpose), should_stop=trigger.edited)
        except (IndexLockedError, IndexMissingError) as exc:
            on_skip(str(exc))
            return
        on_report(report)

    trigger = QuietTrigger(action, settings.sleep_quiet_seconds, busy=busy, on_error=on_error)
    return trigger.start()
