"""The contract every registered component must meet, as reusable checks.

hebbkit's own test suite runs these over every component in the registry (built-ins and any
installed plugin, ``tests/test_contract.py``); a plugin's test suite calls them on its own
components::

    from hebbkit.contract import check_component
    check_component(registry.get("initializer", "my-init"))

Each check raises :class:`AssertionError` with a message naming the component and what it got
wrong. What the checks demand is written down in CONTRIBUTING.md ("Family interfaces").
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import tomli_w
import torch
from torch import nn

from hebbkit.config.recipe import COMPONENT_FIELDS, LayerConfig, recipe_toml, validate_recipe
from hebbkit.config.toml import loads
from hebbkit.data import ImageSet
from hebbkit.errors import DataError
from hebbkit.plasticity import HebbianBatch, PlasticityParams
from hebbkit.registry import Component, Params, Registry
from hebbkit.tracking import TrackedRun

#: Weight shapes an initializer must handle: conv ``(c_out, c_in, k, k)`` and linear ``(out, in)``.
INIT_SHAPES: list[tuple[int, ...]] = [
    (8, 1, 5, 5),
    (16, 8, 3, 3),
    (24, 3, 3, 3),
    (16, 1, 3, 3),
    (4, 16, 1, 1),
    (10, 32),
    (32, 10),
]
SEED = 1234


def _who(component: Component) -> str:
    return f"{component.family} {component.name!r} ({component.origin.describe()})"


def _check_tensor(
    component: Component,
    what: str,
    value: Any,
    shape: tuple[int, ...] | None,
    dtype: torch.dtype,
    device: torch.device | str,
) -> torch.Tensor:
    who = _who(component)
    assert isinstance(value, torch.Tensor), f"{who}: {what} is {type(value).__name__}, not Tensor"
    if shape is not None:
        assert tuple(value.shape) == shape, (
            f"{who}: {what} has shape {tuple(value.shape)}, not {shape}"
        )
    assert value.dtype == dtype, f"{who}: {what} has dtype {value.dtype}, not {dtype}"
    assert value.device.type == torch.device(device).type, (
        f"{who}: {what} is on {value.device}, not {device}"
    )
    assert torch.isfinite(value).all(), f"{who}: {what} contains NaN or Inf"
    return value


def _check_same(component: Component, what: str, first: torch.Tensor, second: torch.Tensor) -> None:
    assert torch.equal(first, second), (
        f"{_who(component)}: {what} differs between two calls with the same inputs and seed; "
        "components must be deterministic (draw randomness only from the generator given)"
    )


def _with_global_seed(seed: int, call: Callable[[], Any]) -> Any:
    # A different global seed before each call: a component that secretly uses torch's global
    # RNG instead of the generator it was given gives different results.
    torch.manual_seed(seed)
    return call()


def check_initializer(component: Component, device: str = "cpu") -> None:
    """``init(shape, generator)`` returns a finite CPU float32 tensor of ``shape``, the same
    for the same generator seed whatever torch's global RNG state."""
    init = component.build()
    assert callable(init), f"{_who(component)}: the factory returned {init!r}, not a callable"
    state = torch.random.get_rng_state()
    try:
        for shape in INIT_SHAPES:
            what = f"init({shape}, generator)"
            first = _with_global_seed(
                1, lambda s=shape: init(s, torch.Generator().manual_seed(SEED))
            )
            second = _with_global_seed(
                2, lambda s=shape: init(s, torch.Generator().manual_seed(SEED))
            )
            _check_tensor(component, what, first, shape, torch.float32, "cpu")
            _check_same(component, what, first, second)
            # the layer moves the CPU weight to its device; it must survive the move unchanged
            moved = first.to(device)
            assert torch.equal(moved.cpu(), first), f"{_who(component)}: {what} changes on {device}"
    finally:
        torch.random.set_rng_state(state)


class _Batch:
    """Inputs of one plasticity step, in the patch-matrix view of the convolution."""

    def __init__(self, weight: torch.Tensor, patches: torch.Tensor, y: torch.Tensor) -> None:
        self.weight = weight
        self.patches = patches
        self.u = patches @ weight.T
        self.y = y

    def hebbian_batch(self) -> HebbianBatch:
        patches = self.patches
        return HebbianBatch(
            u=self.u.clone(),
            y=self.y.clone(),
            correlate=lambda signal: signal.T @ patches,
            patches=lambda: patches,
        )


def _plasticity_batches(device: str) -> list[_Batch]:
    generator = torch.Generator().manual_seed(SEED)
    batches = []
    for c_out, n, count in ((6, 12, 40), (16, 27, 200), (1, 9, 10)):
        weight = torch.randn(c_out, n, generator=generator).to(device)
        patches = torch.randn(count, n, generator=generator).to(device)
        u = patches @ weight.T
        soft = torch.softmax(u, dim=1)
        winner = torch.zeros_like(u).scatter_(1, u.argmax(1, keepdim=True), 1.0)
        # a Krotov-style signal: winners Hebbian, the rest anti-Hebbian
        signed = soft * (2 * winner - 1)
        batches += [_Batch(weight, patches, soft), _Batch(weight, patches, signed)]
    return batches


def check_plasticity(component: Component, device: str = "cpu") -> None:
    """``rule.delta(weight, batch)`` returns a finite update shaped like ``weight`` on its
    device and dtype, deterministically, without changing ``weight`` in place."""
    who = _who(component)
    assert issubclass(component.params, PlasticityParams), (
        f"{who}: params model must subclass hebbkit.plasticity.PlasticityParams"
    )
    rule = component.build()
    assert callable(getattr(rule, "delta", None)), f"{who}: the rule has no delta() method"
    for batch in _plasticity_batches(device):
        weight = batch.weight.clone()
        what = f"delta(weight {tuple(weight.shape)}, batch of {batch.u.shape[0]})"
        first = rule.delta(weight, batch.hebbian_batch())
        assert torch.equal(weight, batch.weight), f"{who}: {what} changed weight in place"
        second = rule.delta(weight, batch.hebbian_batch())
        _check_tensor(component, what, first, tuple(weight.shape), weight.dtype, device)
        _check_same(component, what, first, second)


def check_competition(component: Component, device: str = "cpu") -> None:
    """``compete(u)`` maps ``(N, c_out)`` to a finite ``(N, c_out)`` signal, deterministically,
    also for large pre-activations (random init with radius 25 gives |u| in the hundreds)
    and for ties."""
    compete = component.build()
    assert callable(compete), f"{_who(component)}: the factory returned {compete!r}"
    generator = torch.Generator().manual_seed(SEED)
    inputs = [
        torch.randn(64, 8, generator=generator),
        torch.randn(50, 3, generator=generator) * 300,
        torch.zeros(5, 4),
        torch.randn(7, 1, generator=generator),
    ]
    _check_shape_preserving(component, "compete", compete, inputs, device)


def _check_shape_preserving(
    component: Component,
    name: str,
    function: Any,
    inputs: list[torch.Tensor],
    device: str,
) -> None:
    """``function(u)`` keeps shape and dtype, stays finite and is deterministic."""
    for u in inputs:
        u = u.to(device)
        what = f"{name}(u {tuple(u.shape)})"
        first = function(u.clone())
        second = function(u.clone())
        _check_tensor(component, what, first, tuple(u.shape), u.dtype, device)
        _check_same(component, what, first, second)


def check_activation(component: Component, device: str = "cpu") -> None:
    """``f(u)`` maps ``(B, C, H, W)`` to a finite tensor of the same shape, deterministically,
    leaves ``u`` alone, gives the same values on channels-last maps, and agrees with its
    optional ``f.in_place(u)``."""
    f = component.build()
    who = _who(component)
    assert callable(f), f"{who}: the factory returned {f!r}"
    generator = torch.Generator().manual_seed(SEED)
    inputs = [
        torch.randn(2, 6, 5, 5, generator=generator),
        torch.randn(3, 4, 2, 2, generator=generator) * 300,
        torch.zeros(1, 3, 4, 4),
    ]
    _check_shape_preserving(component, "f", f, inputs, device)
    in_place = getattr(f, "in_place", None)
    assert in_place is None or callable(in_place), f"{who}: f.in_place is not callable"
    for u in inputs:
        u = u.to(device)
        kept = u.clone()
        expected = f(u)
        assert torch.equal(u, kept), f"{who}: f(u) modified u in place (use f.in_place for that)"
        last = u.contiguous(memory_format=torch.channels_last)
        assert torch.allclose(f(last), expected, rtol=1e-5, atol=1e-6, equal_nan=True), (
            f"{who}: f(u) differs on a channels-last u"
        )
        if in_place is not None:
            result = in_place(u.clone())
            assert torch.allclose(result, expected, rtol=1e-5, atol=1e-6, equal_nan=True), (
                f"{who}: f.in_place(u) differs from f(u)"
            )


def check_pooling(component: Component, device: str = "cpu") -> None:
    """The factory returns an ``nn.Module`` that keeps batch and channels of ``(B, C, H, W)``,
    runs on ``device`` and is deterministic."""
    module = component.build()
    who = _who(component)
    assert isinstance(module, nn.Module), f"{who}: the factory returned {module!r}, not nn.Module"
    module = module.to(device)
    generator = torch.Generator().manual_seed(SEED)
    for shape in ((2, 4, 12, 12), (1, 3, 9, 9)):
        x = torch.randn(*shape, generator=generator).to(device)
        what = f"pool(x {shape})"
        first = module(x.clone())
        second = module(x.clone())
        _check_tensor(component, what, first, None, x.dtype, device)
        assert first.dim() == 4 and tuple(first.shape[:2]) == shape[:2], (
            f"{who}: {what} has shape {tuple(first.shape)}; batch and channels must be kept"
        )
        _check_same(component, what, first, second)


def check_dataset(
    component: Component,
    device: str = "cpu",
    root: Path | None = None,
    sizes: tuple[int, int] | None = None,
) -> None:
    """The dataset contract.

    - The factory builds a source with ``load(root, *, train, download)``.
    - Without its files (an empty folder, ``download=False``) ``load`` raises
      :class:`~hebbkit.errors.DataError` naming that folder, or returns the data (a dataset
      that ships inside its package ignores ``root`` and ``download``).
    - With its data (files under ``root``, or a packaged dataset): both splits are
      :class:`~hebbkit.data.ImageSet` (uint8 ``(N, C, H, W)``, labels ``0 .. len(classes)-1``),
      neither is empty, they share ``(C, H, W)`` and ``classes`` (at least two), they are not
      the same images, loading twice gives the same tensors, a declared ``channels`` matches,
      an ``unlabeled(root, download=...)`` method returns None or uint8 images of the same
      ``(C, H, W)``, and ``sizes`` (train, test), when given, are the splits' sizes.

    ``device`` is unused (images stay on the CPU; the engine moves them).
    """
    who = _who(component)
    source = component.build()
    assert callable(getattr(source, "load", None)), f"{who}: built {source!r}, no load()"
    with tempfile.TemporaryDirectory() as empty:
        try:
            source.load(Path(empty), train=False, download=False)
            packaged = True
        except DataError as error:
            assert empty in str(error), (
                f"{who}: without its files, load() raised DataError({error}), which does not "
                f"name the folder searched ({empty})"
            )
            packaged = False
        except Exception as error:
            raise AssertionError(
                f"{who}: without its files and download=False, load() raised "
                f"{type(error).__name__}: {error}; raise hebbkit.errors.DataError naming the "
                "missing files and where they were expected"
            ) from error
        if root is None and not packaged:
            return  # a file-based dataset: pass root= a folder holding its files to check the rest
        _check_splits(component, source, Path(root) if root is not None else Path(empty), sizes)


def _check_splits(
    component: Component, source: Any, where: Path, sizes: tuple[int, int] | None
) -> None:
    """The data half of :func:`check_dataset`: both splits loaded from ``where``."""
    who = _who(component)
    splits = {}
    for train in (True, False):
        name = "train" if train else "test"
        first = source.load(where, train=train, download=False)
        second = source.load(where, train=train, download=False)
        assert isinstance(first, ImageSet), (
            f"{who}: load(train={train}) returned {type(first).__name__}, not hebbkit.data.ImageSet"
        )
        assert len(first) > 0, f"{who}: the {name} split is empty"
        assert torch.equal(first.images, second.images) and torch.equal(
            first.labels, second.labels
        ), f"{who}: two loads of the {name} split differ; a dataset must be deterministic"
        splits[name] = first
    train, test = splits["train"], splits["test"]
    shape = tuple(train.images.shape[1:])
    assert tuple(test.images.shape[1:]) == shape, (
        f"{who}: train images are {shape} but test images {tuple(test.images.shape[1:])}"
    )
    assert train.classes == test.classes, f"{who}: train and test name different classes"
    assert len(train.classes) >= 2, f"{who}: {len(train.classes)} class; a classifier needs 2+"
    assert not (
        train.images.shape == test.images.shape and torch.equal(train.images, test.images)
    ), f"{who}: load(train=True) and load(train=False) return the same images"
    channels = getattr(source, "channels", None)
    if channels is not None:
        assert channels == shape[0], (
            f"{who}: declares channels = {channels}, images have {shape[0]}"
        )
    unlabeled = getattr(source, "unlabeled", None)
    if callable(unlabeled):
        extra = unlabeled(where, download=False)
        if extra is not None:
            assert isinstance(extra, torch.Tensor) and extra.dtype == torch.uint8, (
                f"{who}: unlabeled() must return None or a uint8 tensor"
            )
            assert extra.dim() == 4 and tuple(extra.shape[1:]) == shape, (
                f"{who}: unlabeled() images are {tuple(extra.shape)}, not (M, *{shape})"
            )
    if sizes is not None:
        assert (len(train), len(test)) == tuple(sizes), (
            f"{who}: splits of {len(train)} and {len(test)} images, expected {sizes[0]} and "
            f"{sizes[1]}"
        )


def check_tracker(component: Component, device: str = "cpu") -> None:
    """With its default settings, in a fresh working folder, the tracker takes a whole run —
    ``start``, ``log_metrics`` and ``finish`` for a finished and for a failed run — and writes
    into the run folder nothing but its own folder (``run.files``)."""
    who = _who(component)
    with tempfile.TemporaryDirectory() as scratch, _working_folder(Path(scratch)):
        for status in ("finished", "failed"):
            folder = Path(scratch) / f"run-{status}"
            folder.mkdir()
            (folder / "result.txt").write_text("a run's own file, which trackers leave alone\n")
            before = sorted(folder.iterdir())
            run = TrackedRun(
                experiment="hebbkit-contract",
                name=f"contract/{status}",
                folder=folder,
                live_folder=folder,
                files=folder / "trackers" / component.name,
                params={"seed": 0, "readout.lr": 0.001, "layers.0.init.name": "random"},
                tags={"hebbkit.seed": "0"},
            )
            tracker = component.build()
            for method in ("start", "log_metrics", "finish"):
                assert callable(getattr(tracker, method, None)), f"{who}: no {method}() method"
            tracker.start(run)
            tracker.log_metrics({"readout/train_loss": 1.5, "readout/test_accuracy": 0.5}, 1)
            tracker.log_metrics({"trace/layer0/distinct_filters": 4.0}, 0)
            summary = {"test_accuracy": 0.5} if status == "finished" else {"error": "Boom: x"}
            tracker.finish(status, summary)  # type: ignore[arg-type]
            extra = sorted(set(folder.iterdir()) - set(before) - {folder / "trackers"})
            assert not extra, f"{who}: wrote {extra} into the run folder, outside run.files"


@contextlib.contextmanager
def _working_folder(path: Path) -> Iterator[None]:
    # trackers whose default store is the working folder (MLflow's) keep it in the scratch
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


CHECKS: dict[str, Callable[[Component, str], None]] = {
    "initializer": check_initializer,
    "plasticity": check_plasticity,
    "competition": check_competition,
    "activation": check_activation,
    "pooling": check_pooling,
    "dataset": check_dataset,
    "tracker": check_tracker,
}

#: Families a recipe names components of (trackers are chosen per machine instead).
RECIPE_FAMILIES = {family for fields in COMPONENT_FIELDS.values() for family in fields.values()}


def check_component(component: Component, device: str = "cpu") -> None:
    """Run the family's behaviour check and the parameter round-trip on ``component``."""
    check_params_roundtrip(component)
    CHECKS[component.family](component, device)


def check_params_roundtrip(component: Component) -> None:
    """Default params exist (so ``{ name = "..." }`` alone is valid) and survive dict and
    TOML round-trips unchanged."""
    who = _who(component)
    try:
        params = component.params()
    except Exception as error:
        raise AssertionError(
            f"{who}: its params model {component.params.__qualname__} needs values without "
            f"defaults ({error}); every parameter needs a default"
        ) from error
    assert isinstance(params, Params), f"{who}: params model is not a hebbkit.registry.Params"
    data = params.model_dump(mode="json", exclude_none=True)
    assert component.params.model_validate(data) == params, f"{who}: params change via dict"
    parsed = loads(tomli_w.dumps(data))
    assert component.params.model_validate(parsed) == params, f"{who}: params change via TOML"


def check_recipe_roundtrip(component: Component, registry: Registry) -> None:
    """A recipe naming ``component`` with its default params validates, and its TOML form
    validates back to the same recipe (for the families a recipe names)."""
    assert component.family in RECIPE_FAMILIES, (
        f"{_who(component)}: a {component.family} is never named in a recipe; there is no "
        "recipe round trip to check"
    )
    fields = {**COMPONENT_FIELDS[LayerConfig], "dataset": "dataset"}
    spec = {"name": component.name, **component.params().model_dump(mode="json", exclude_none=True)}
    layer: dict[str, Any] = {"channels": 4, "kernel": 3}
    data: dict[str, Any] = {"name": "contract", "data": {}, "layers": [layer]}
    for field, family in fields.items():
        if family == component.family:
            value: Any = spec
        else:
            names = registry.names(family)
            assert names, f"no {family} is registered; the recipe round-trip needs one"
            value = names[0]
        (data["data"] if field == "dataset" else layer)[field] = value
    recipe = validate_recipe(data, registry, source=f"<contract {component.name}>")
    again = validate_recipe(loads(recipe_toml(recipe)), registry, source="<toml>")
    assert again == recipe, f"{_who(component)}: the recipe changes through TOML"
