"""Names a package exports but loads on first use (PEP 562), so importing a light module of the package, or the
package itself for ``--version``, does not load the heavy ones (aiohttp, the HTTP client, the server routes)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(package: str, modules: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that loads each name of ``modules`` (name -> module) when first
    asked for; any other name is an AttributeError, as for a plain module."""

    def getattr_(name: str) -> Any:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    return getattr_
