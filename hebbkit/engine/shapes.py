"""A recipe checked against its images before any tensor is allocated: the shape walk and
the memory estimate.

The walk follows each block's arithmetic (pad, convolution, pool) from the dataset's image
size, and names the layer, its map size and the key at fault when a kernel, a padding or a
pool does not fit. Pooling components are plugins: each is traced on torch's ``meta``
device, which computes shapes without memory. The estimate adds up what a run holds at its
peak (weights, one Hebbian batch's maps, cached features, the read-out) so that a recipe
asking for more than the machine has is refused instead of waking the kernel's OOM killer.

``run``, ``inspect`` and the checks before a grid or a search starts all call
:func:`plan_recipe`; only then is a network initialised.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from hebbkit.config.recipe import DataConfig, LayerConfig, Recipe
from hebbkit.config.toml import show
from hebbkit.engine.network import HebbianNetwork
from hebbkit.engine.splits import validation_size
from hebbkit.engine.training import feature_dtype
from hebbkit.errors import HebbkitError, ShapeError
from hebbkit.registry import Registry

Shape = tuple[int, int, int]

#: Copies of a block's output map alive while it learns: the map, its (N, C) view, the
#: competition's output and temporaries, the correlation's signal map, activation and pool.
LEARN_MAP_COPIES = 7
#: Copies of a block's input alive while it learns: batch-normalised and padded.
LEARN_INPUT_COPIES = 2
#: Copies of a weight while it learns: the weight, the correlation, Δw, the rate-scaled Δw.
WEIGHT_COPIES = 4
#: Per-element bytes of a read-out batch: float features, dropout draws, mask, product.
READOUT_BYTES_PER_ELEMENT = 13
#: Images per batch where features are extracted and accuracies measured (training.py).
FEATURE_BATCH = 32
ACCURACY_BATCH = 4096
#: Python, torch and hebbkit themselves, before any data.
RUNTIME_BYTES = 512 * 1024**2
FLOAT_BYTES = 4


@dataclass(frozen=True)
class LayerShape:
    """Sizes through one Hebbian block for one image."""

    index: int
    #: channels, height, width entering the block
    input: Shape
    #: height and width after the block's padding
    padded: tuple[int, int]
    #: the convolution's output (the pre-activations)
    conv: Shape
    #: after activation and pool: what the next block (or the read-out) sees
    output: Shape
    kernel: int

    @property
    def weight_elements(self) -> int:
        return self.conv[0] * self.input[0] * self.kernel * self.kernel


@dataclass(frozen=True)
class Counts:
    """Images of each part of the data a run holds."""

    train: int
    validation: int
    test: int
    unlabeled: int = 0
    #: images in the files before subsets are carved (all held while the data is read)
    loaded: int = 0

    @property
    def hebbian(self) -> int:
        return self.train + self.unlabeled


@dataclass(frozen=True)
class MemoryItem:
    """One part of the estimate: what, which recipe key sizes it, bytes, and the phase."""

    what: str
    key: str
    bytes: int
    phase: str


@dataclass
class MemoryEstimate:
    """What a run holds at its peak, per phase, on its device and on the host."""

    device: str
    #: phase -> the items on the run's device alive together in it (the peak is the largest)
    phases: dict[str, list[MemoryItem]] = field(default_factory=dict)
    #: held on the host for the whole run, whatever the device (the runtime, the images)
    host_only: list[MemoryItem] = field(default_factory=list)
    #: on a GPU run, what the host holds in some phases only (images being read, joined)
    host_phases: dict[str, list[MemoryItem]] = field(default_factory=dict)

    def phase_bytes(self, phase: str) -> int:
        return sum(item.bytes for item in self.phases[phase])

    @property
    def peak_phase(self) -> str:
        return max(self.phases, key=self.phase_bytes)

    @property
    def host_bytes(self) -> int:
        """Peak memory on the host: everything on a CPU run, the images on a GPU run."""
        base = sum(item.bytes for item in self.host_only)
        if self.device == "cpu":
            return base + self.phase_bytes(self.peak_phase)
        phases = [sum(i.bytes for i in items) for items in self.host_phases.values()]
        return base + max(phases, default=0)

    @property
    def device_bytes(self) -> int:
        """Peak memory on the run's device (the host's for a CPU run)."""
        return self.host_bytes if self.device == "cpu" else self.phase_bytes(self.peak_phase)

    @property
    def largest(self) -> MemoryItem:
        return max(self.phases[self.peak_phase], key=lambda item: item.bytes)

    def rows(self) -> list[dict[str, Any]]:
        """Every item, for ``hebbkit inspect``."""
        items = [
            *self.host_only,
            *(i for phase in self.host_phases.values() for i in phase),
            *(i for phase in self.phases.values() for i in phase),
        ]
        return [{"phase": i.phase, "what": i.what, "key": i.key, "bytes": i.bytes} for i in items]


@dataclass
class RecipePlan:
    """A recipe's shapes and memory estimate for one dataset geometry."""

    image_shape: Shape
    layers: list[LayerShape]
    counts: Counts
    memory: MemoryEstimate

    @property
    def feature_size(self) -> int:
        return math.prod(self.layers[-1].output)


# --- the shape walk --------------------------------------------------------------------------


def walk_shapes(
    recipe: Recipe,
    image_shape: Sequence[int],
    registry: Registry,
    hebbian_images: int | None = None,
) -> list[LayerShape]:
    """Each block's sizes for one image of ``image_shape`` ``(C, H, W)``; a
    :class:`~hebbkit.errors.ShapeError` names the first layer that does not fit.

    ``hebbian_images`` (when known) lets the walk see a last Hebbian batch of one image,
    which batch normalisation cannot take on a 1×1 map.
    """
    channels, height, width = (int(v) for v in image_shape)
    shapes = []
    for index, config in enumerate(recipe.layers):
        key = f"layers.{index}"
        where = f"layer {index}'s input map of {height}×{width}"
        _check_padding(config, key, where, height, width)
        padded = (height + 2 * config.padding, width + 2 * config.padding)
        span = config.dilation * (config.kernel - 1) + 1
        if span > min(padded):
            dilated = f" (dilation {config.dilation}: spans {span})" if config.dilation > 1 else ""
            with_pad = f" ({padded[0]}×{padded[1]} padded by {config.padding})"
            raise ShapeError(
                f"{key}.kernel = {config.kernel}: the {config.kernel}×{config.kernel} kernel"
                f"{dilated} is larger than {where}{with_pad if config.padding else ''}. "
                f"Lower {key}.kernel{' or dilation' if config.dilation > 1 else ''} or raise "
                f"{key}.padding"
                f"{f', or shrink the maps less before layer {index}' if index else ''}."
            )
        conv = (
            config.channels,
            (padded[0] - span) // config.stride + 1,
            (padded[1] - span) // config.stride + 1,
        )
        _check_batch_norm(recipe, config, key, (channels, height, width), hebbian_images)
        output = _pool_output(index, config, conv, registry)
        shapes.append(
            LayerShape(index, (channels, height, width), padded, conv, output, config.kernel)
        )
        channels, height, width = output
    return shapes


def _check_padding(config: LayerConfig, key: str, where: str, height: int, width: int) -> None:
    if config.padding == 0:
        return
    smallest = min(height, width)
    if config.padding_mode == "reflect" and config.padding >= smallest:
        raise ShapeError(
            f"{key}.padding = {config.padding}: reflect padding mirrors the map, so it must be "
            f"smaller than {where} (at most {smallest - 1}). Lower {key}.padding, or set "
            f'{key}.padding_mode = "zeros" (or "replicate").'
        )
    if config.padding_mode == "circular" and config.padding > smallest:
        raise ShapeError(
            f"{key}.padding = {config.padding}: circular padding wraps the map around, so it "
            f"can be at most the size of {where}. Lower {key}.padding, or set "
            f'{key}.padding_mode = "zeros".'
        )


def _check_batch_norm(
    recipe: Recipe,
    config: LayerConfig,
    key: str,
    input_shape: Shape,
    hebbian_images: int | None,
) -> None:
    """Batch normalisation needs two values per channel: a 1×1 map in a batch of one image
    has one."""
    if not config.batch_norm or input_shape[1] * input_shape[2] > 1:
        return
    size = recipe.hebbian.batch_size
    lone = size == 1 or (hebbian_images is not None and hebbian_images % size == 1)
    if lone:
        raise ShapeError(
            f"{key}.batch_norm = true: the layer's input map is 1×1 and a Hebbian batch holds "
            f"a single image (hebbian.batch_size = {size}"
            f"{f', {hebbian_images} images' if hebbian_images is not None else ''}), so "
            "batch normalisation has one value per channel and cannot normalise. Set "
            f"{key}.batch_norm = false, change hebbian.batch_size, or keep larger maps."
        )


def _pair(value: Any) -> tuple[int, int]:
    return (int(value[0]), int(value[1])) if isinstance(value, (tuple, list)) else (value, value)


def _window_output(module: nn.Module, height: int, width: int) -> tuple[int, int] | None:
    """torch's own arithmetic for its identity and 2-d max and average pools (whichever
    plugin builds them); None for any other module."""
    if isinstance(module, nn.Identity):
        return height, width
    if not isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        return None
    kernel, stride = _pair(module.kernel_size), _pair(module.stride or module.kernel_size)
    padding = _pair(module.padding)
    dilation = _pair(getattr(module, "dilation", 1))
    if any(2 * p > k for p, k in zip(padding, kernel, strict=True)):
        return None  # torch refuses it: let the trace say how
    sizes = []
    for size, k, s, p, d in zip((height, width), kernel, stride, padding, dilation, strict=True):
        # torch's pooling_output_shape, floor division rounding down as its div_rtn does
        span = size + 2 * p - d * (k - 1) - 1 + (s - 1 if module.ceil_mode else 0)
        out = span // s + 1
        if module.ceil_mode and (out - 1) * s >= size + p:
            out -= 1  # the last window must start inside the map or its left padding
        sizes.append(out)
    return sizes[0], sizes[1]


def _pool_output(index: int, config: LayerConfig, conv: Shape, registry: Registry) -> Shape:
    """The pool's output for one ``conv`` map: torch's arithmetic for its own pools, else
    traced on the meta device (shapes without memory)."""
    key = f"layers.{index}.pool"
    component = registry.get("pooling", config.pool.name)
    module = component.build(config.pool)
    if not isinstance(module, nn.Module):
        return conv  # the network refuses it when built, naming the plugin
    spec = show(
        {"name": config.pool.name, **config.pool.model_dump(mode="json", exclude_none=True)}
    )
    known = _window_output(module, conv[1], conv[2])
    if known is not None:
        if min(known) < 1:
            raise ShapeError(_nothing_left(key, spec, index, conv, f"{known[0]}×{known[1]}"))
        return (conv[0], known[0], known[1])
    try:
        if any(True for _ in module.parameters()) or any(True for _ in module.buffers()):
            module = copy.deepcopy(module).to("meta")
        with torch.no_grad():
            result = module(torch.empty((1, *conv), device="meta"))
    except (RuntimeError, ValueError, IndexError, TypeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if "too small" in first:  # torch: "Calculated output size: (Cx0x0)"
            raise ShapeError(_nothing_left(key, spec, index, conv, "0×0")) from None
        raise ShapeError(
            f"{key} = {spec}: it cannot pool layer {index}'s {conv[1]}×{conv[2]} map "
            f"({conv[0]} channels): {first}. Choose a smaller pool, or keep larger maps."
        ) from None
    except NotImplementedError:
        return conv  # an operation without a meta kernel: checked when the network runs
    shape = tuple(result.shape[1:])
    if len(shape) != 3:
        raise ShapeError(
            f"{key} = {spec}: it turns layer {index}'s map into shape {shape}, not "
            "(channels, height, width)."
        )
    if shape[0] != conv[0]:
        raise ShapeError(
            f"{key} = {spec}: it changes layer {index}'s {conv[0]} channels into {shape[0]}; a "
            "pool must keep the channels."
        )
    if min(shape[1:]) < 1:
        raise ShapeError(_nothing_left(key, spec, index, conv, f"{shape[1]}×{shape[2]}"))
    return (int(shape[0]), int(shape[1]), int(shape[2]))


def _nothing_left(key: str, spec: str, index: int, conv: Shape, result: str) -> str:
    return (
        f"{key} = {spec}: it shrinks layer {index}'s {conv[1]}×{conv[2]} map to nothing "
        f"({result}). Choose a smaller pool kernel or stride, or keep larger maps before it."
    )


# --- the memory estimate -----------------------------------------------------------------------


def planned_counts(data: DataConfig, sizes: Mapping[str, int]) -> Counts:
    """The images a run holds, from a dataset's set sizes and the recipe's subsets."""
    train_total, test_total = int(sizes["train"]), int(sizes["test"])
    validation = validation_size(data.validation, train_total)
    train = train_total - validation
    if data.train_subset is not None:
        train = min(train, data.train_subset)
    test = test_total if data.test_subset is None else min(test_total, data.test_subset)
    unlabeled = int(sizes.get("unlabeled", 0))
    return Counts(train, validation, test, unlabeled, train_total + test_total + unlabeled)


def estimate_memory(
    recipe: Recipe,
    image_shape: Shape,
    layers: list[LayerShape],
    counts: Counts,
    device: str,
    classes: int = 10,
) -> MemoryEstimate:
    """Peak bytes of a run, phase by phase (see the module's docstring)."""
    estimate = MemoryEstimate(device="cpu" if device == "cpu" else "cuda")
    host = estimate.phases if estimate.device == "cpu" else estimate.host_phases
    pixels = math.prod(image_shape)
    held = counts.train + counts.validation + counts.test + counts.unlabeled
    estimate.host_only = [
        MemoryItem("hebbkit, torch and Python", "-", RUNTIME_BYTES, "all"),
        MemoryItem("images (uint8) of the run's sets", "data", held * pixels, "all"),
    ]
    # a file's bytes and the tensor made of them, for every set read
    host["data"] = [
        MemoryItem(
            "images being read (file and tensor)", "data", 2 * counts.loaded * pixels, "data"
        )
    ]
    weights = [
        MemoryItem(
            f"layer {s.index} weights",
            f"layers.{s.index}.channels",
            FLOAT_BYTES * s.weight_elements,
            "",
        )
        for s in layers
    ]
    batch = max(1, min(recipe.hebbian.batch_size, counts.hebbian))
    groups = [[s] for s in layers] if recipe.hebbian.mode == "greedy" else [list(layers)]
    hebbian = []
    for group in groups:
        items = [
            MemoryItem(
                f"layer {s.index} learning: {batch} images × {_maps(s)}",
                f"layers.{s.index}.channels, hebbian.batch_size",
                FLOAT_BYTES
                * batch
                * (
                    LEARN_INPUT_COPIES * s.input[0] * s.padded[0] * s.padded[1]
                    + LEARN_MAP_COPIES * math.prod(s.conv)
                )
                + FLOAT_BYTES * (WEIGHT_COPIES - 1) * s.weight_elements,
                "hebbian",
            )
            for s in group
        ]
        first = group[0].index
        if first > 0:
            items.append(_forward_item(layers[:first], batch, "hebbian", "frozen layers' maps"))
        if sum(i.bytes for i in items) > sum(i.bytes for i in hebbian):
            hebbian = items
    estimate.phases["hebbian"] = [*_in(weights, "hebbian"), *hebbian]
    if counts.unlabeled:  # the training and unlabelled images, joined for the Hebbian phase
        joined = MemoryItem(
            "training and unlabelled images, joined", "data", counts.hebbian * pixels, "hebbian"
        )
        host.setdefault("hebbian", []).append(joined)

    width = math.prod(layers[-1].output)
    dtype = feature_dtype(recipe.readout.feature_dtype, max(1, counts.train), width)
    cache = MemoryItem(
        f"cached features: {counts.train + counts.validation + counts.test} images × {width} "
        f"({str(dtype).removeprefix('torch.')})",
        f"layers.{len(layers) - 1}.channels, readout.feature_dtype",
        (counts.train + counts.validation + counts.test) * width * dtype.itemsize,
        "features",
    )
    estimate.phases["features"] = [
        *_in(weights, "features"),
        cache,
        _forward_item(layers, min(FEATURE_BATCH, max(1, counts.train)), "features", "maps"),
    ]
    readout_batch = max(1, min(recipe.readout.batch_size, counts.train))
    evaluated = max(1, min(ACCURACY_BATCH, max(counts.train, counts.test)))
    estimate.phases["readout"] = [
        MemoryItem(cache.what, cache.key, cache.bytes, "readout"),
        MemoryItem(
            f"read-out: weights, gradients and Adam's moments ({width} inputs)",
            "readout",
            4 * FLOAT_BYTES * width * classes,
            "readout",
        ),
        MemoryItem(
            f"read-out batches ({readout_batch} to train, {evaluated} to measure)",
            "readout.batch_size",
            width * max(READOUT_BYTES_PER_ELEMENT * readout_batch, FLOAT_BYTES * evaluated),
            "readout",
        ),
    ]
    return estimate


def _in(items: list[MemoryItem], phase: str) -> list[MemoryItem]:
    return [MemoryItem(i.what, i.key, i.bytes, phase) for i in items]


def _maps(shape: LayerShape) -> str:
    return f"{shape.conv[0]}×{shape.conv[1]}×{shape.conv[2]} maps"


def _forward_item(layers: Sequence[LayerShape], batch: int, phase: str, what: str) -> MemoryItem:
    """The largest maps alive while ``layers`` run forward on a batch."""
    largest = max(layers, key=lambda s: math.prod(s.input) + 3 * math.prod(s.conv))
    return MemoryItem(
        f"{what} through layer {largest.index} ({batch} images)",
        f"layers.{largest.index}.channels",
        FLOAT_BYTES * batch * (math.prod(largest.input) + 3 * math.prod(largest.conv)),
        phase,
    )


# --- one plan, and the check before a grid or search starts -------------------------------


def declared_geometry(
    recipe: Recipe, registry: Registry
) -> tuple[Shape | None, dict[str, int] | None]:
    """The image shape and set sizes the recipe's dataset declares (None where it does not:
    then the checks run once the data is read)."""
    spec = recipe.data.dataset
    source = registry.get("dataset", spec.name).build(spec)
    shape = getattr(source, "image_shape", None)
    sizes = getattr(source, "sizes", None)
    valid_shape = (
        tuple(int(v) for v in shape)
        if isinstance(shape, (tuple, list)) and len(shape) == 3
        else None
    )
    valid_sizes = (
        {str(k): int(v) for k, v in sizes.items()}
        if isinstance(sizes, Mapping) and {"train", "test"} <= set(sizes)
        else None
    )
    return valid_shape, valid_sizes  # type: ignore[return-value]


def declared_classes(recipe: Recipe, registry: Registry) -> int:
    """How many classes the recipe's dataset declares (``classes``), else 10."""
    spec = recipe.data.dataset
    classes = getattr(registry.get("dataset", spec.name).build(spec), "classes", None)
    return len(classes) if isinstance(classes, (list, tuple)) and classes else 10


def plan_recipe(
    recipe: Recipe,
    registry: Registry,
    image_shape: Sequence[int],
    counts: Counts,
    device: str = "cpu",
    classes: int = 10,
) -> RecipePlan:
    """Walk the shapes and estimate the memory of ``recipe`` on images of ``image_shape``
    with ``counts`` images and ``classes`` labels; raises ShapeError where a layer does not
    fit."""
    shape: Shape = (int(image_shape[0]), int(image_shape[1]), int(image_shape[2]))
    layers = walk_shapes(recipe, shape, registry, counts.hebbian)
    memory = estimate_memory(recipe, shape, layers, counts, device, classes)
    return RecipePlan(shape, layers, counts, memory)


def memory_problem(plan: RecipePlan, limit: int, what: str) -> str | None:
    """Why ``plan`` does not fit in ``limit`` bytes (``what`` says where the limit comes
    from), naming the largest part and the recipe key that sizes it; None if it fits."""
    need = plan.memory.device_bytes
    if need <= limit:
        return None
    largest = plan.memory.largest
    device = "RAM" if plan.memory.device == "cpu" else "GPU memory"
    return (
        f"it would need about {gib(need)} of {device} at its peak (the {plan.memory.peak_phase} "
        f"phase), more than {what} ({gib(limit)}). The largest part is {largest.what}: "
        f"{gib(largest.bytes)} (set by {largest.key}). Lower it, or allow more with "
        "--max-memory; hebbkit inspect shows the estimate part by part."
    )


def gib(size: float) -> str:
    """Bytes as GiB (or MiB below one GiB), for messages and tables."""
    if size >= 1024**3:
        return f"{size / 1024**3:.1f} GiB"
    if size >= 10 * 1024**2:
        return f"{size / 1024**2:.0f} MiB"
    return f"{size / 1024**2:.2g} MiB"


def startup_problem(
    recipe: Recipe,
    registry: Registry,
    built: dict[str, str | None] | None = None,
    memory_limit: tuple[int, str] | None = None,
) -> str | None:
    """Why ``recipe`` would fail before learning anything, or None: its shapes, its memory
    (against ``memory_limit`` = (bytes, where the limit comes from), if given) and then its
    initialisation on the CPU, which catches what only the components know (a shape an
    initializer refuses). Used before a grid or a search starts anything; ``built`` caches
    the answer per distinct recipe (seeds aside)."""
    image_shape, sizes = declared_geometry(recipe, registry)
    if image_shape is None:
        return None  # a dataset that knows its images only once read: checked at run time
    key = json.dumps(
        {
            **recipe.model_dump(mode="json", exclude={"seed", "name", "description", "search"}),
            "limit": memory_limit,
        },
        sort_keys=True,
    )
    built = {} if built is None else built
    if key not in built:
        built[key] = _first_problem(recipe, registry, image_shape, sizes, memory_limit)
    return built[key]


def _first_problem(
    recipe: Recipe,
    registry: Registry,
    image_shape: Shape,
    sizes: dict[str, int] | None,
    memory_limit: tuple[int, str] | None,
) -> str | None:
    try:
        if sizes is not None:
            counts = planned_counts(recipe.data, sizes)
            classes = declared_classes(recipe, registry)
            plan = plan_recipe(recipe, registry, image_shape, counts, classes=classes)
            if memory_limit is not None:
                problem = memory_problem(plan, *memory_limit)
                if problem:
                    return f"ResourceError: {problem}"
        else:
            walk_shapes(recipe, image_shape, registry)
        HebbianNetwork.from_recipe(recipe, image_shape[0], registry)
    except (HebbkitError, ValueError) as error:
        return f"{type(error).__name__}: {error}"
    return None
