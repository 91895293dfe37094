"""Experiment trackers: MLflow (runs, params, metrics, artifacts) and TensorBoard (event files).

Chosen per machine with ``--track mlflow[:URI]`` / ``--track tensorboard[:FOLDER]`` or
``HEBBKIT_TRACK``; the packages they need are the extras ``hebbkit[mlflow]`` and
``hebbkit[tensorboard]``.
"""

from __future__ import annotations

from hebbkit.hookspecs import hookimpl

from . import mlflow_tracker, tensorboard_tracker


@hookimpl
def register_trackers(register):
    register(
        "mlflow",
        mlflow_tracker.MlflowTracker,
        params=mlflow_tracker.MlflowParams,
        description="MLflow: recipe as params, metrics per step, the run folder as artifacts",
    )
    register(
        "tensorboard",
        tensorboard_tracker.TensorBoardTracker,
        params=tensorboard_tracker.TensorBoardParams,
        description="TensorBoard event files: scalars per step, the recipe as text",
    )
