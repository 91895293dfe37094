"""hebbkit: biologically plausible, feedback-free learning with pluggable components."""

from __future__ import annotations

import importlib.metadata

from hebbkit.hookspecs import hookimpl
from hebbkit.registry import Params

try:
    __version__ = importlib.metadata.version("hebbkit")
except importlib.metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"

__all__ = ["Params", "__version__", "hookimpl"]
