"""hebbkit: biologically plausible, feedback-free learning with pluggable components.

``hebbkit.run(recipe, overrides=..., out=...)`` and ``hebbkit.load_run(folder)`` (both
returning a :class:`~hebbkit.runs.api.RunResult`) are the Python API; they are loaded on first
use, so that ``import hebbkit`` (what every plugin does) never imports torch.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import Any

from hebbkit.hookspecs import hookimpl
from hebbkit.registry import Params

try:
    __version__ = importlib.metadata.version("hebbkit")
except importlib.metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"

#: Names loaded on first use (PEP 562), from the module that defines them.
_LAZY = {"run": "hebbkit.runs.api", "load_run": "hebbkit.runs.api", "RunResult": "hebbkit.runs.api"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hebbkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["Params", "RunResult", "__version__", "hookimpl", "load_run", "run"]
