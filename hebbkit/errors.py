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
    """The run folder cannot be used (exists, claimed by another run, not writable, full)."""


class FolderInUse(RunFolderError):
    """Another live hebbkit process has claimed the output folder."""


class SettingError(HebbkitError):
    """A command-line flag or a ``HEBBKIT_*`` environment variable has a bad value."""


class ShapeError(RecipeError):
    """The recipe's layer stack does not fit the dataset's images (kernel, padding, pool)."""


class ResourceError(HebbkitError):
    """A recipe needs more memory than the machine has (or ``--max-memory`` allows)."""


class ReportError(HebbkitError):
    """Nothing to report, or a folder that cannot be read."""


class TuneSetupError(HebbkitError):
    """Ray could not be started or joined, or cannot give a trial what it asks for."""


class TrackerError(HebbkitError):
    """An experiment tracker cannot be used (unknown, not installed, bad ``--track``)."""


class TrainingDiverged(HebbkitError):
    """Weights or losses became NaN/Inf."""

    exit_code = 3


class SearchFailedError(HebbkitError):
    """A search or grid ran, but no trial succeeded (or some were lost to the cluster)."""

    exit_code = 1


class ClusterLostError(HebbkitError):
    """The Ray cluster went away during a run; the message says how to continue."""

    exit_code = 1


class HebbkitNotice(UserWarning):
    """Not an error: something the user should know happened (an override dropped keys).

    Issued with :func:`warnings.warn`; the CLI prints each as one ``Note:`` line on stderr.
    """


class Terminated(KeyboardInterrupt):
    """The process was asked to stop by a signal (SIGTERM, SIGHUP): handled like Ctrl-C, so
    that an unfinished run keeps its files as ``<out>.failed-<time>``."""

    def __init__(self, signal_name: str, exit_code: int) -> None:
        super().__init__(f"stopped by {signal_name}")
        self.signal_name = signal_name
        self.exit_code = exit_code
