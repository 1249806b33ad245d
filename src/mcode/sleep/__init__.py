"""The sleep-time pass: while the user is idle, module summaries are brought up to date with
the index, within a token budget whose every use is logged.

`run_pass` runs one pass (what `mcode sleep` does in the foreground); `QuietTrigger` runs one once
edits have paused (what `mcode watch` does); `sleep_status` says what is spent and what waits;
`background.BackgroundConsolidation` consolidates a live session's memory (the REPL, `mcode -p`).
"""

from mcode.sleep.run import PassOptions, PassReport, run_pass
from mcode.sleep.status import sleep_status

__all__ = ["PassOptions", "PassReport", "run_pass", "sleep_status"]
