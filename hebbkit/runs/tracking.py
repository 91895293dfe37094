"""A run's experiment trackers: chosen per machine (``--track NAME[:URI]``, ``HEBBKIT_TRACK``),
built from the ``tracker`` family, fed every metrics row, and never allowed to lose a run.

Which trackers a machine uses is read in :mod:`hebbkit.runs.run` (with the other machine
settings); this module parses the spec, builds the trackers and turns metrics rows into
tracker metrics (names in :mod:`hebbkit.tracking`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hebbkit.errors import HebbkitError, TrackerError
from hebbkit.registry import Registry, TrackerParams
from hebbkit.tracking import ParamValue, Status, TrackedRun, Tracker

#: Keys of a metrics row that say where it belongs rather than measure something.
ROW_KEYS = {"phase", "layer", "epoch", "step", "images_seen"}
#: Summary values logged as ``final/<key>`` when a run finishes.
FINAL_KEYS = ("test_accuracy", "train_accuracy", "validation_accuracy")


@dataclass(frozen=True)
class TrackSpec:
    """One ``--track NAME[:URI]``: a tracker's name and, optionally, where it logs."""

    name: str
    uri: str | None = None

    @classmethod
    def parse(cls, text: str, where: str = "--track") -> TrackSpec:
        name, _, uri = text.strip().partition(":")
        if not name:
            raise TrackerError(
                f"{where} {text!r}: give a tracker name, optionally with where it logs, e.g. "
                "mlflow, mlflow:sqlite:///runs/mlflow.db, tensorboard:runs/tb."
            )
        return cls(name.strip(), uri.strip() or None)

    def __str__(self) -> str:
        return self.name if self.uri is None else f"{self.name}:{self.uri}"


def parse_track(values: Iterable[str], where: str = "--track") -> list[TrackSpec]:
    """Each value is one spec; ``HEBBKIT_TRACK`` holds several separated by commas."""
    specs = [TrackSpec.parse(value, where) for value in values if value.strip()]
    names = [spec.name for spec in specs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise TrackerError(f"{where}: {', '.join(repeated)} is named more than once.")
    return specs


def build_trackers(specs: list[TrackSpec], registry: Registry) -> list[tuple[str, Tracker]]:
    """One tracker per spec, built before the run starts: an unknown name, a missing package
    or a refused URI stops here, with exit code 2, before any work is done."""
    built = []
    for spec in specs:
        try:
            component = registry.get("tracker", spec.name)
        except HebbkitError as error:
            raise TrackerError(f"--track {spec}: {error}") from None
        params = component.params.model_validate({"uri": spec.uri})
        assert isinstance(params, TrackerParams)
        try:
            tracker = component.build(params)  # the plugin guard names the plugin
        except TrackerError:
            raise
        except HebbkitError as error:
            raise TrackerError(
                f"--track {spec}: the tracker could not be set up. {error}"
            ) from None
        built.append((spec.name, tracker))
    return built


def metric_points(row: Mapping[str, Any]) -> tuple[dict[str, float], int] | None:
    """A metrics row as tracker metrics and their step; None if it holds no number.

    ``readout`` rows: ``readout/<key>`` at the epoch; ``hebbian`` rows:
    ``hebbian/layer<i>/<key>`` at the epoch; ``hebbian_trace`` rows:
    ``trace/layer<i>/<key>`` at the images the layer has seen.
    """
    phase = str(row.get("phase", "run"))
    prefix = {"hebbian_trace": "trace"}.get(phase, phase)
    if "layer" in row:
        prefix += f"/layer{row['layer']}"
    step = row.get("images_seen") if phase == "hebbian_trace" else row.get("epoch", 0)
    metrics = {
        f"{prefix}/{key}": float(value)
        for key, value in row.items()
        if key not in ROW_KEYS and _is_number(value)
    }
    return (metrics, int(step or 0)) if metrics else None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def final_metrics(summary: Mapping[str, Any]) -> dict[str, float]:
    """What a finished run logs as ``final/...``: its accuracies and seconds per phase."""
    metrics = {f"final/{k}": float(summary[k]) for k in FINAL_KEYS if _is_number(summary.get(k))}
    for phase, seconds in (summary.get("seconds") or {}).items():
        if _is_number(seconds):
            metrics[f"final/seconds_{phase}"] = float(seconds)
    return metrics


def tracker_params(flat: Mapping[str, Any]) -> dict[str, ParamValue]:
    """The flattened recipe with every value a tracker can store (lists as JSON)."""
    return {
        key: value if isinstance(value, (str, int, float, bool)) else json.dumps(value)
        for key, value in flat.items()
        if value is not None
    }


class RunTrackers:
    """The trackers of one run. A tracker that raises is dropped with one warning; the run
    and the other trackers go on."""

    def __init__(self, trackers: list[tuple[str, Tracker]], warn: Callable[[str], None]) -> None:
        self.trackers = list(trackers)
        self.warn = warn
        self.last_step = 0

    def _each(self, action: str, call: Callable[[str, Tracker], None]) -> None:
        for name, tracker in list(self.trackers):
            try:
                call(name, tracker)
            except Exception as error:  # a tracker must never take the run down
                self.trackers.remove((name, tracker))
                where = traceback.extract_tb(error.__traceback__)[-1:]
                at = f" at {where[0].filename}:{where[0].lineno}" if where else ""
                self.warn(
                    f"Warning: tracker {name!r} failed in {action} ({type(error).__name__}: "
                    f"{error}{at}); the run goes on without it."
                )

    def start(self, run: TrackedRun) -> None:
        """``run.files`` is the folder of all trackers: each gets its own ``<files>/<name>``."""
        self._each(
            "start",
            lambda name, tracker: tracker.start(dataclasses.replace(run, files=run.files / name)),
        )

    def log_row(self, row: Mapping[str, Any]) -> None:
        points = metric_points(row)
        if points is None or not self.trackers:
            return
        metrics, step = points
        if row.get("phase") == "readout":
            self.last_step = step
        self._each("log_metrics", lambda _, tracker: tracker.log_metrics(metrics, step))

    def finish(self, status: Status, summary: Mapping[str, Any]) -> None:
        final = final_metrics(summary) if status == "finished" else {}
        if final:
            self._each("log_metrics", lambda _, t: t.log_metrics(final, self.last_step))
        self._each("finish", lambda _, tracker: tracker.finish(status, summary))
