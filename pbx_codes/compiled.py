"""Which build of the hot modules runs: the pure-Python one, or the optional compiled one (mypyc, see setup.py).

A compiled build installs a C extension beside each hot module's ``.py``; the import system loads the extension
first. Nothing here imports the hot modules themselves (they live in higher layers): a module already imported
tells by its ``__file__``, any other by the file its import would load.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import sys

#: The modules ``PBX_CODES_COMPILE=1`` compiles (setup.py's ``HOT_MODULES``, as module names).
HOT_MODULES: tuple[str, ...] = ("pbx_codes.protocols.ami", "pbx_codes.observers.asterisk")


def _origin(name: str) -> str | None:
    module = sys.modules.get(name)
    if module is not None:
        return getattr(module, "__file__", None)
    spec = importlib.util.find_spec(name)
    return spec.origin if spec is not None else None


def is_compiled(name: str) -> bool:
    """True when module `name` is (or would be) loaded from a C extension rather than its ``.py`` source."""
    origin = _origin(name)
    return origin is not None and origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def compiled_modules() -> dict[str, bool]:
    """Each hot module -> whether its compiled build is the one that runs."""
    return {name: is_compiled(name) for name in HOT_MODULES}


def hot_modules_compiled() -> bool:
    """True when every hot module runs compiled."""
    return all(compiled_modules().values())


def build_description() -> str:
    """One phrase for ``--version``: ``compiled with mypyc``, ``pure Python``, or which hot modules are compiled."""
    modules = compiled_modules()
    if all(modules.values()):
        return "compiled with mypyc"
    if not any(modules.values()):
        return "pure Python"
    return "partly compiled: " + ", ".join(name for name, compiled in modules.items() if compiled)


__all__ = ["HOT_MODULES", "build_description", "compiled_modules", "hot_modules_compiled", "is_compiled"]
