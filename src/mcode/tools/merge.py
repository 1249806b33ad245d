"""A line-level three-way merge, so `/undo` can reverse a turn's change on top of the user's edits.

`merge3(base, ours, theirs)` takes both sides' changes to `base` when they touch separate lines.
Changes that overlap, or sit on adjacent lines, are a conflict unless both sides made the same
one: that is what `git merge-file` does, minus the conflict markers, because undo never writes
half a merge into the user's file. Pure Python (difflib), so it works outside git too.
"""

from __future__ import annotations

import difflib

Lines = list[bytes]
# A change to base lines [i1, i2) by one side, which has lines [j1, j2) there instead.
Hunk = tuple[int, int, int, int, int]  # i1, i2, j1, j2, side


def merge3(base: bytes, ours: bytes, theirs: bytes) -> bytes | None:
    """`base` with the changes of `ours` and of `theirs`; None when they conflict or a side is
    binary (a NUL byte), where lines mean nothing."""
    if any(b"\0" in text for text in (base, ours, theirs)):
        return None
    old = base.splitlines(keepends=True)
    sides = (ours.splitlines(keepends=True), theirs.splitlines(keepends=True))
    hunks = sorted(
        (i1, i2, j1, j2, side)
        for side, new in enumerate(sides)
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(
            None, old, new, autojunk=False
        ).get_opcodes()
        if tag != "equal"
    )
    merged: Lines = []
    done = 0  # base lines up to here are in `merged`
    k = 0
    while k < len(hunks):
        group = [hunks[k]]
        low, high = hunks[k][0], hunks[k][1]
        k += 1
        while k < len(hunks) and hunks[k][0] <= high:  # touching counts as overlapping
            group.append(hunks[k])
            high = max(high, hunks[k][1])
            k += 1
        results = {
            _apply(old, low, high, [h for h in group if h[4] == side], sides[side])
            for side in {h[4] for h in group}
        }
        if len(results) > 1:
            return None
        merged += old[done:low]
        merged += results.pop()
        done = high
    merged += old[done:]
    return b"".join(merged)


def _apply(old: Lines, low: int, high: int, hunks: list[Hunk], new: Lines) -> tuple[bytes, ...]:
    """What one side made of base lines [low, high)."""
    out: Lines = []
    at = low
    for i1, i2, j1, j2, _ in hunks:
        out += old[at:i1]
        out += new[j1:j2]
        at = i2
    out += old[at:high]
    return tuple(out)
