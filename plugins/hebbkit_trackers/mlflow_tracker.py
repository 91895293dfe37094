"""The ``mlflow`` tracker: one MLflow run per hebbkit run, through MLflow's tracking client.

``--track mlflow`` logs where MLflow's own settings say (``MLFLOW_TRACKING_URI``, else
MLflow's default store); ``--track mlflow:URI`` names the store: ``sqlite:///path/mlflow.db``,
``http://host:5000``, or a ``file:`` folder (MLflow 3 needs ``MLFLOW_ALLOW_FILE_STORE=true``
for those). Experiments of a SQLite store keep their artifacts beside the database.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hebbkit.errors import TrackerError
from hebbkit.tracking import Status, TrackedRun, TrackerParams

#: MLflow's limits: entries per log_batch call, characters per param value
PARAMS_PER_CALL = 100
METRICS_PER_CALL = 1000
PARAM_LENGTH = 6000
STATUSES = {"finished": "FINISHED", "failed": "FAILED", "stopped": "KILLED"}


class MlflowParams(TrackerParams):
    pass


class MlflowTracker:
    """One hebbkit run as one MLflow run."""

    def __init__(self, params: MlflowParams) -> None:
        try:
            from mlflow import MlflowClient
        except ImportError as error:
            raise TrackerError(
                f"--track mlflow needs MLflow, which is not installed ({error}). Install it "
                "with: pip install 'hebbkit[mlflow]'."
            ) from None
        self.uri = params.uri
        # building the client opens a local store now, so a refused URI stops the run early
        self.client = MlflowClient(tracking_uri=params.uri)
        self.run_id: str | None = None
        self.run: TrackedRun | None = None

    def start(self, run: TrackedRun) -> None:
        from mlflow.entities import Param

        self.run = run
        experiment = self._experiment(run.experiment)
        tags = {**run.tags, "hebbkit.folder": str(run.folder)}
        created = self.client.create_run(experiment, run_name=run.name, tags=tags)
        self.run_id = created.info.run_id
        params = [Param(k, str(v)[:PARAM_LENGTH]) for k, v in run.params.items()]
        for start in range(0, len(params), PARAMS_PER_CALL):
            self.client.log_batch(self.run_id, params=params[start : start + PARAMS_PER_CALL])

    def _experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        try:
            return str(self.client.create_experiment(name, artifact_location=self._artifacts()))
        except Exception:
            # another process (a parallel trial) created it first
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return str(found.experiment_id)

    def _artifacts(self) -> str | None:
        # MLflow puts a SQLite store's artifacts under the working folder: keep them beside it
        uri = self.uri or ""
        if uri.startswith("sqlite:///") and uri != "sqlite:///:memory:":
            database = Path(uri.removeprefix("sqlite:///"))
            return (database.expanduser().resolve().parent / "mlartifacts").as_uri()
        return None

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        assert self.run_id is not None
        now = int(time.time() * 1000)
        points = [Metric(key, value, now, step) for key, value in metrics.items()]
        for start in range(0, len(points), METRICS_PER_CALL):
            self.client.log_batch(self.run_id, metrics=points[start : start + METRICS_PER_CALL])

    def finish(self, status: Status, summary: Mapping[str, Any]) -> None:
        assert self.run_id is not None and self.run is not None
        if status == "finished":
            self.client.log_artifacts(self.run_id, str(self.run.live_folder))
        elif summary.get("error"):
            self.client.set_tag(self.run_id, "hebbkit.error", str(summary["error"])[:5000])
        self.client.set_terminated(self.run_id, STATUSES[status])
