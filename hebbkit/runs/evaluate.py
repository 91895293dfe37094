"""``hebbkit eval``: a finished run's network and read-out, loaded back and evaluated again,
on its own test set or on another dataset's. Nothing is written into the run folder."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hebbkit.config.overrides import apply_overrides
from hebbkit.config.recipe import Recipe, recipe_dict, validate_recipe
from hebbkit.engine.allocator import keep_freed_memory
from hebbkit.engine.network import HebbianNetwork
from hebbkit.engine.precision import pinned_numerics, precision_problem, resolve_precision
from hebbkit.engine.progress import ProgressReporter, QuietProgress
from hebbkit.engine.readout import accuracy, readout_model
from hebbkit.engine.training import extract_features, feature_dtype
from hebbkit.errors import HebbkitError, RunFolderError
from hebbkit.registry import Registry
from hebbkit.runs.folder import WEIGHTS_FILE, is_finished, read_summary, recorded_precision
from hebbkit.runs.reuse import load_weights, stored_recipe
from hebbkit.runs.run import Machine


@dataclass
class Evaluation:
    """Accuracies of a run's saved model, beside the ones the run recorded."""

    folder: Path
    dataset: str
    #: split -> (images, accuracy)
    splits: dict[str, tuple[int, float]]
    #: what the run's summary recorded for the same splits (its own dataset only)
    recorded: dict[str, float] = field(default_factory=dict)
    #: the numerics of the features pass (the run's own unless asked otherwise)
    precision: str = "fp32"

    def as_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "dataset": self.dataset,
            "precision": self.precision,
            **{f"{name}_images": images for name, (images, _) in self.splits.items()},
            **{f"{name}_accuracy": value for name, (_, value) in self.splits.items()},
            "recorded": {f"{name}_accuracy": value for name, value in self.recorded.items()},
        }


def load_model(
    folder: Path, registry: Registry, device: torch.device, in_channels: int | None = None
) -> tuple[Recipe, HebbianNetwork, torch.nn.Module]:
    """A finished run's recipe, Hebbian network and read-out, weights loaded, in eval mode."""
    folder = folder.expanduser().resolve()
    if not is_finished(folder) or not (folder / WEIGHTS_FILE).is_file():
        raise RunFolderError(
            f"{folder} is not a finished run folder (it needs summary.json and {WEIGHTS_FILE})."
        )
    recipe = stored_recipe(folder, registry)
    weights = load_weights(folder / WEIGHTS_FILE)
    first = weights["network"].get("layers.0.weight")
    channels = in_channels or (int(first.shape[1]) if first is not None else 1)
    network = HebbianNetwork.from_recipe(recipe, channels, registry)
    network.load_state_dict(weights["network"])
    readout_state = weights.get("readout") or {}
    linear = next((v for k, v in readout_state.items() if k.endswith("weight")), None)
    if linear is None:
        raise RunFolderError(f"{folder / WEIGHTS_FILE} holds no read-out.")
    n_classes, features = linear.shape
    readout = readout_model(features, n_classes, recipe.readout.dropout, device)
    readout.load_state_dict(readout_state)
    return recipe, network.to(device).eval(), readout.eval()


def evaluate_run(
    folder: Path,
    registry: Registry,
    machine: Machine | None = None,
    *,
    dataset: str | None = None,
    precision: str | None = None,
    progress: ProgressReporter | None = None,
) -> Evaluation:
    """Evaluate the run in ``folder`` on its test (and validation) images, or on the test
    images of ``dataset``; the network computes in ``precision`` (default: the run's own)."""
    machine = machine or Machine()
    progress = progress or QuietProgress()
    device = machine.device
    summary = read_summary(folder.expanduser().resolve())
    precision = resolve_precision(precision, device) if precision else recorded_precision(summary)
    problem = precision_problem(precision, device)
    if problem:
        raise HebbkitError(
            f"{folder} ran with --precision {precision}, which cannot run here: {problem}. "
            "Pass --precision fp32 (or bf16, bf16-auto), or the device the run used."
        )
    recipe, network, readout = load_model(folder, registry, device)
    network.set_precision(precision)
    own = dataset is None or dataset == recipe.data.dataset.name
    data = recipe.data
    if not own:
        changed = apply_overrides(recipe_dict(recipe), [f'data.dataset="{dataset}"'])
        data = validate_recipe(changed, registry, source=f"--dataset {dataset}").data
    splits = machine.load_splits(data, registry)
    named = {"test": splits.test}
    if own and splits.validation is not None:
        named["validation"] = splits.validation
    _check_fits(network, readout, splits.test.images, len(splits.test.classes), data.dataset.name)
    results = {}
    keep_freed_memory()  # same numbers, fewer page faults per batch
    with pinned_numerics(precision):
        for name, images in named.items():
            width = math.prod(network.feature_shape(tuple(images.images.shape[1:])))
            dtype = feature_dtype(recipe.readout.feature_dtype, len(images), width)
            features = extract_features(
                network, images.images, dtype, device, progress, f"Features ({name})"
            )
            results[name] = (len(images), accuracy(readout, features, images.labels.to(device)))
    progress.close()
    recorded = {
        name: float(summary[f"{name}_accuracy"])  # type: ignore[literal-required]
        for name in results
        if own and isinstance(summary.get(f"{name}_accuracy"), (int, float))
    }
    return Evaluation(folder, data.dataset.name, results, recorded, precision)


def _check_fits(
    network: HebbianNetwork,
    readout: torch.nn.Module,
    images: torch.Tensor,
    classes: int,
    dataset: str,
) -> None:
    """The other dataset's images must fit the network, and its classes the read-out."""
    expected = network.layers[0].weight.shape[1]
    if images.shape[1] != expected:
        raise HebbkitError(
            f"--dataset {dataset}: its images have {images.shape[1]} channels, but the run's "
            f"network takes {expected}. Evaluate on a dataset of the same kind of images."
        )
    linear = [m for m in readout.modules() if isinstance(m, torch.nn.Linear)][-1]
    width = math.prod(network.feature_shape(tuple(images.shape[1:])))
    if width != linear.in_features:
        raise HebbkitError(
            f"--dataset {dataset}: its {tuple(images.shape[1:])} images give {width} features, "
            f"but the run's read-out takes {linear.in_features}. Evaluate on images of the "
            "size the run was trained on."
        )
    if classes != linear.out_features:
        raise HebbkitError(
            f"--dataset {dataset}: it has {classes} classes, but the run's read-out has "
            f"{linear.out_features}."
        )
