"""The house plan in ARCHITECTURE.md holds: no package imports one that sits after it.

Every `import mcode.…` counts, including those inside functions (a lazy import is still a
dependency), so a test fails the moment an arrow points the wrong way.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "mcode"


def layers() -> list[str]:
    """The package order as ARCHITECTURE.md states it: its numbered list of `name/` entries."""
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    return re.findall(r"^\d+\. \*\*`?([a-z_]+)(?:/|\.py)`?\*\*", text, flags=re.MULTILINE)


def unit_of(path: Path) -> str:
    """The package a source file belongs to (a top-level module is its own unit)."""
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imported_units(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module == "mcode":
            names = [f"mcode.{alias.name}" for alias in node.names]  # from mcode import vcs
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found |= {n.split(".")[1] for n in names if n.startswith("mcode.")}
    return found


def test_architecture_lists_every_package_once() -> None:
    order = layers()
    assert len(order) == len(set(order)), order
    present = {unit_of(p) for p in SRC.rglob("*.py")} - {"__init__", "__main__"}
    assert present <= set(order), f"not in ARCHITECTURE.md: {sorted(present - set(order))}"


def test_no_package_imports_one_after_it() -> None:
    order = layers()
    position = {name: i for i, name in enumerate(order)}
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        unit = unit_of(path)
        if unit in ("__init__", "__main__"):
            continue
        for other in imported_units(path) - {unit}:
            if position.get(other, -1) > position[unit]:
                wrong.append(f"{path.relative_to(ROOT)} imports mcode.{other}")
    assert not wrong, "imports against the order of ARCHITECTURE.md:\n" + "\n".join(wrong)
