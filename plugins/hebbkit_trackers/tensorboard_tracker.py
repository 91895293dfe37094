"""The ``tensorboard`` tracker: TensorBoard event files written by torch's ``SummaryWriter``.

``--track tensorboard`` writes them into the run folder (``trackers/tensorboard/``), so
``tensorboard --logdir runs`` shows every run; ``--track tensorboard:FOLDER`` writes to
``FOLDER/<experiment>/<run name>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hebbkit.errors import TrackerError
from hebbkit.tracking import Status, TrackedRun, TrackerParams

#: seconds between flushes of the event file (TensorBoard shows a live run with this delay)
FLUSH_SECONDS = 10


class TensorBoardParams(TrackerParams):
    pass


class TensorBoardTracker:
    """One hebbkit run as one TensorBoard run (a folder of event files)."""

    def __init__(self, params: TensorBoardParams) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:
            raise TrackerError(
                f"--track tensorboard needs TensorBoard, which is not installed ({error}). "
                "Install it with: pip install 'hebbkit[tensorboard]'."
            ) from None
        self.writer_class = SummaryWriter
        self.root = Path(params.uri.removeprefix("file://")).expanduser() if params.uri else None
        self.writer: Any = None

    def log_dir(self, run: TrackedRun) -> Path:
        if self.root is None:
            return run.files
        return self.root / run.experiment / run.name

    def start(self, run: TrackedRun) -> None:
        self.writer = self.writer_class(log_dir=str(self.log_dir(run)), flush_secs=FLUSH_SECONDS)
        lines = ["| key | value |", "| --- | --- |"]
        lines += [f"| {key} | {value} |" for key, value in run.params.items()]
        self.writer.add_text("recipe", "\n".join(lines))
        tags = [f"- {key}: {value}" for key, value in {**run.tags, "folder": run.folder}.items()]
        self.writer.add_text("run", "\n".join(tags))

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)

    def finish(self, status: Status, summary: Mapping[str, Any]) -> None:
        text = f"{status}: {summary['error']}" if summary.get("error") else status
        self.writer.add_text("status", text)
        self.writer.close()
