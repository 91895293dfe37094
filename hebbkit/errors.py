"""User-facing errors: the CLI prints their message and exits with their code, no traceback.

Every error a user can cause lives here, whichever layer raises it, so that the CLI's error
printer and a plugin's tests need one import.
"""

from __future__ import annotations


class HebbkitError(Exception):
    """A problem with the user's input (recipe, flag, data, plugin), not a bug in hebbkit."""

    exit_code = 2


class RecipeError(HebbkitError):
    """A recipe file, key or value is invalid."""


class GridError(RecipeError):
    """A grid file, one of its keys, or one of its runs' recipes is invalid."""


class UnknownComponentError(HebbkitError):
    """A component name is not registered in its family."""


class PluginError(HebbkitError):
    """A plugin failed to load or registered something invalid."""


class DataError(HebbkitError):
    """A dataset is missing or unreadable."""


class RunFolderError(HebbkitError):
    """The run folder cannot be used (exists, not writable)."""


class ReportError(HebbkitError):
    """Nothing to report, or a folder that cannot be read."""


class TuneSetupError(HebbkitError):
    """Ray could not be started or joined, or cannot give a trial what it asks for."""


class TrackerError(HebbkitError):
    """An experiment tracker cannot be used (unknown, not installed, bad ``--track``)."""


class TrainingDiverged(HebbkitError):
    """Weights or losses became NaN/Inf."""

    exit_code = 3


class HebbkitNotice(UserWarning):
    """Not an error: something the user should know happened (an override dropped keys).

    Issued with :func:`warnings.warn`; the CLI prints each as one ``Note:`` line on stderr.
    """
