"""User-facing errors: the CLI prints their message and exits with code 2, no traceback."""

from __future__ import annotations


class HebbkitError(Exception):
    """A problem with the user's input (recipe, flag, data, plugin), not a bug in hebbkit."""

    exit_code = 2


class RecipeError(HebbkitError):
    """A recipe file, key or value is invalid."""


class UnknownComponentError(HebbkitError):
    """A component name is not registered in its family."""


class PluginError(HebbkitError):
    """A plugin failed to load or registered something invalid."""


class DataError(HebbkitError):
    """A dataset is missing or unreadable."""


class RunFolderError(HebbkitError):
    """The run folder cannot be used (exists, not writable)."""
