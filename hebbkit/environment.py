"""The ``HEBBKIT_*`` environment variables: every name hebbkit reads, and strict parsing.

Each variable is read where it is used (``runs/run.py``: data, offline, device, memory, precision;
``runs/folder.py``: runs; ``plugins.py``: the plugin switches) but parsed here, so that a bad
value is refused with the variable's name, never blamed on a flag nobody passed.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping

from hebbkit.errors import SettingError

PREFIX = "HEBBKIT_"

#: Every variable hebbkit reads, and what it sets.
VARIABLES: dict[str, str] = {
    "HEBBKIT_DATA": "dataset folder (default ./data); --data-root wins",
    "HEBBKIT_OFFLINE": "1: never download data; --offline",
    "HEBBKIT_DEVICE": "cpu, cuda or cuda:N; --device wins",
    "HEBBKIT_RUNS": "folder of run, grid and search folders (default ./runs)",
    "HEBBKIT_MAX_MEMORY": "most memory a run may plan to use, e.g. 8GiB; --max-memory wins",
    "HEBBKIT_PRECISION": "auto (default), fp32, bf16, bf16-auto or tf32: numerics of the "
    "Hebbian phase; --precision wins",
    "HEBBKIT_LOAD_PLUGINS": "comma-separated third-party plugins to load (default: all)",
    "HEBBKIT_DISABLE_PLUGIN_AUTOLOAD": "1: load no third-party plugin",
    "HEBBKIT_TRACE_PLUGINS": "1: log plugin loading and hook calls to stderr",
    "HEBBKIT_TRACK": "experiment trackers, NAME[:URI] separated by commas; --track wins",
    "HEBBKIT_TEST_DATA": "hebbkit's own tests: the folder holding real MNIST",
}

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"", "0", "false", "no", "off"})


def env_value(name: str) -> str | None:
    """The variable's value without surrounding blanks; None when unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or None


def env_flag(name: str) -> bool:
    """A yes/no variable: 1/true/yes/on or 0/false/no/off (unset: no); anything else is a
    :class:`~hebbkit.errors.SettingError` naming the variable."""
    raw = os.environ.get(name)
    if raw is None:
        return False
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise SettingError(
        f"{name}={raw!r} is not a yes/no value: set it to 1 (or true, yes, on) or 0 (or false, "
        f"no, off), or unset it. {name}: {VARIABLES.get(name, '')}."
    )


def describe_setting(source: str, value: str) -> str:
    """How the user wrote a setting: ``--device 'tpu'`` or ``HEBBKIT_DEVICE='tpu'``."""
    return f"{source}={value!r}" if source.startswith(PREFIX) else f"{source} {value!r}"


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """One sentence per ``HEBBKIT_*`` variable hebbkit does not know (a typo reads nothing)."""
    environ = os.environ if environ is None else environ
    notes = []
    for name in sorted(environ):
        if name.startswith(PREFIX) and name not in VARIABLES:
            close = difflib.get_close_matches(name, list(VARIABLES), n=1, cutoff=0.7)
            hint = f" Did you mean {close[0]}?" if close else ""
            notes.append(
                f"{name} is set but is not a hebbkit setting, so nothing reads it.{hint} "
                f"Known: {', '.join(VARIABLES)}."
            )
    return notes
