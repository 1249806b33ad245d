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
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import types
from typing import Any

_STUBBED = "lance_namespace_urllib3_client"


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


def import_lancedb() -> types.ModuleType:
    if "lancedb" not in sys.modules and _STUBBED not in sys.modules:
        sys.meta_path.insert(0, _StubFinder())
    # Read once, when Lance first runs a query or build; setting it before the import is enough.
    if not os.environ.get("LANCE_CPU_THREADS"):
        os.environ["LANCE_CPU_THREADS"] = str(os.cpu_count() or 1)
    import lancedb

    return lancedb
