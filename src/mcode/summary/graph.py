"""Which modules use which, from the index's definitions and references (no parsing).

File A depends on file B when A refers to a name B defines at its top level, a public compound name
(`FileRecord`, `encode_refs`) that few files define: a name defined in many places, a method name
(`close`), a private one or a plain word (`index`, which any comment or SQL string may hold) says
nothing about where a use leads. Counting the distinct names that link two files ranks
the strongest ties first.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from mcode.store import Manifest

# A name defined in more files than this links nothing.
MAX_DEFINING_FILES = 2


class ModuleGraph:
    def __init__(self, uses: dict[str, Counter[str]]) -> None:
        self._uses = uses
        used_by: dict[str, Counter[str]] = defaultdict(Counter)
        for user, targets in uses.items():
            for target, names in targets.items():
                used_by[target][user] = names
        self._used_by = dict(used_by)

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> ModuleGraph:
        return cls.from_symbols(
            (path, [d.name for d in defs if "." not in d.symbol and _telling(d.name)], refs)
            for path, defs, refs in manifest.symbols()
        )

    @classmethod
    def from_symbols(cls, files: Iterable[tuple[str, list[str], list[str]]]) -> ModuleGraph:
        """From (path, names it defines, names it refers to) per file."""
        files = list(files)
        defining: dict[str, set[str]] = defaultdict(set)
        for path, names, _ in files:
            for name in names:
                defining[name].add(path)
        useful = {n: ps for n, ps in defining.items() if len(ps) <= MAX_DEFINING_FILES}
        uses: dict[str, Counter[str]] = {}
        for path, _, refs in files:
            targets: Counter[str] = Counter()
            for name in refs:
                for target in useful.get(name, ()):
                    if target != path:
                        targets[target] += 1
            if targets:
                uses[path] = targets
        return cls(uses)

    def depends_on(self, path: str) -> list[str]:
        """The files `path` uses, strongest tie first."""
        return _ranked(self._uses.get(path))

    def used_by(self, path: str) -> list[str]:
        """The files that use `path`, strongest tie first."""
        return _ranked(self._used_by.get(path))


def _telling(name: str) -> bool:
    """A public name that is not a plain lowercase word."""
    return not name.startswith("_") and not (name.isalpha() and name.islower())


def _ranked(counts: Counter[str] | None) -> list[str]:
    if not counts:
        return []
    return sorted(counts, key=lambda p: (-counts[p], p))
