"""What an experiment tracker sees of a run: the interface of the ``tracker`` family.

A tracker plugin registers ``factory(params) -> tracker`` from ``register_trackers``; hebbkit
builds one tracker per run (``params.uri`` is the ``URI`` of ``--track NAME:URI``) and calls::

    tracker.start(run)                       # a TrackedRun: names, folders, params, tags
    tracker.log_metrics(metrics, step)       # as the run goes: {"readout/test_accuracy": 0.97}
    tracker.finish(status, summary)          # "finished" | "failed" | "stopped"

Metric names are ``readout/<metric>`` (step: read-out epoch), ``hebbian/layer<i>/<statistic>``
(step: Hebbian epoch), ``trace/layer<i>/<statistic>`` (step: images seen by the layer) and,
once the run ended, ``final/<metric>`` (``test_accuracy``, ``seconds_total``, ...). A tracker
that raises is switched off for the rest of the run with a warning: a tracker never loses a
run. ``finish`` is called while the run folder is complete at ``run.live_folder`` (it moves to
``run.folder`` right after), so a tracker that keeps artifacts copies them from there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from hebbkit.registry import TrackerParams

#: How a run ended, as ``finish`` is told.
Status = Literal["finished", "failed", "stopped"]
#: A parameter value as trackers receive it (the flattened resolved recipe).
ParamValue = str | int | float | bool


@dataclass(frozen=True)
class TrackedRun:
    """What a tracker is told when a run starts."""

    #: the grid's, search's or recipe's name: what groups runs in a tracker
    experiment: str
    #: the run's name in the experiment: ``<recipe>/<timestamp>``, ``<label>/seed0``, a trial id
    name: str
    #: the run folder once the run has finished
    folder: Path
    #: where the run folder is being written while it runs
    live_folder: Path
    #: a folder inside the run folder that is this tracker's own (created when first used)
    files: Path
    #: the resolved recipe, flattened to dotted keys (``layers.0.init.name``)
    params: dict[str, ParamValue] = field(default_factory=dict)
    #: seed, dataset, Hebbian config hash, git commits, command line, hebbkit version
    tags: dict[str, str] = field(default_factory=dict)


class Tracker(Protocol):
    """One run's connection to an experiment tracker."""

    def start(self, run: TrackedRun) -> None: ...

    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...

    def finish(self, status: Status, summary: Mapping[str, Any]) -> None: ...


__all__ = ["ParamValue", "Status", "TrackedRun", "Tracker", "TrackerParams"]
