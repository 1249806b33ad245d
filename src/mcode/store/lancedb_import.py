"""Importing lancedb without its REST-namespace client.

`import lancedb` pulls in `lance_namespace_urllib3_client`, an OpenAPI-generated package of some 150
pydantic models for LanceDB's remote namespace service, which costs 1.5–2 s of start-up on every
`mcode search`. mcode only opens local tables, so that package is replaced by inert stand-ins before
lancedb loads: any model it names becomes an empty, permissive pydantic model. The store's tests run
everything mcode does with LanceDB (create, merge, delete, FTS, vector index, optimize) through this.

It also sizes Lance's compute pool. Lance keeps cores back for I/O and, on a machine of two cores,
leaves one thread for compute: a full-text index then builds on one core while the other idles
(1.7 s against 1.1 s for the standard library's 66k chunks). Unless the user set it, the pool gets
a thread per core; indexes are built when nothing else is running, and a query uses few threads.

On Python 3.11 lancedb marks its methods with the `overrides` package, whose decorator reads the
bytecode of the calling class to find its bases and checks each signature: ~0.2 s of every start-up
here (a fifth of lancedb's import). On 3.12 lancedb uses `typing.override`, a bare marker, and an
empty `EnforceOverrides`; while lancedb loads, it gets those on 3.11 too.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import sys
import threading
import types
from collections.abc import Iterator
from typing import Any

_STUBBED = "lance_namespace_urllib3_client"
_IMPORTING = threading.Lock()


class _StubModule(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        import pydantic

        stand_in = type(
            name,
            (pydantic.BaseModel,),
            {"__module__": self.__name__, "model_config": pydantic.ConfigDict(extra="allow")},
        )
        setattr(self, name, stand_in)
        return stand_in


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname == _STUBBED or fullname.startswith(_STUBBED + "."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = _StubModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        return None


def _override(method: Any = None, **_: Any) -> Any:
    """What `typing.override` does on Python 3.12: mark the method, check nothing."""

    def mark(function: Any) -> Any:
        with contextlib.suppress(AttributeError, TypeError):
            function.__override__ = True
        return function

    return mark if method is None else mark(method)


@contextlib.contextmanager
def _bare_overrides() -> Iterator[None]:
    """`overrides` as lancedb has it on Python 3.12, for as long as lancedb loads."""
    if sys.version_info >= (3, 12):
        yield
        return
    real = sys.modules.get("overrides")
    stand_in = types.ModuleType("overrides")
    stand_in.override = _override  # type: ignore[attr-defined]
    stand_in.EnforceOverrides = type("EnforceOverrides", (), {})  # type: ignore[attr-defined]
    sys.modules["overrides"] = stand_in
    try:
        yield
    finally:
        if real is None:
            sys.modules.pop("overrides", None)
        else:
            sys.modules["overrides"] = real


def import_lancedb() -> types.ModuleType:
    # One thread at a time: a session imports lancedb on its indexing thread while the main thread
    # opens its memory stores, and a module found in sys.modules may still be half imported.
    with _IMPORTING:
        if "lancedb" not in sys.modules and _STUBBED not in sys.modules:
            sys.meta_path.insert(0, _StubFinder())
        # Read once, when Lance first runs a query or build; setting it before the import is enough.
        if not os.environ.get("LANCE_CPU_THREADS"):
            os.environ["LANCE_CPU_THREADS"] = str(os.cpu_count() or 1)
        if "lancedb" in sys.modules:
            return sys.modules["lancedb"]
        with _bare_overrides():
            import lancedb

        return lancedb
