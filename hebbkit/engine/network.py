"""The Hebbian conv layer and the network a recipe describes.

A block is ``BatchNorm2d(affine=False) -> pad -> conv -> activation -> pool``. Learning views
the convolution as a matrix product over image patches (``u = patches @ Wᵀ``, ``Σ y·x =
yᵀ @ patches``); :mod:`hebbkit.engine.products` computes both, on a CPU from a patch matrix
copied out of the channels-last input, on a GPU with the convolution kernels. Maps stay
channels-last between blocks, so ``u`` is a view of its ``(N, c_out)`` rows and the
activation's and pooling's reductions over channels read contiguous memory. Under
``--precision bf16`` (or ``bf16-auto``, in wide layers) the products take bfloat16 inputs
(:attr:`HebbianLayer.compute_dtype`); everything else stays float32. No loop over pixels,
neurons or samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hebbkit.config.recipe import LayerConfig, Recipe
from hebbkit.engine.precision import compute_dtype
from hebbkit.engine.products import (
    ConvProducts,
    Geometry,
    PatchProducts,
    channels_last,
    use_patches,
    weight_rows,
)
from hebbkit.engine.seeds import derive_seed
from hebbkit.errors import PluginError
from hebbkit.plasticity import HebbianBatch, PlasticityParams, apply_update
from hebbkit.registry import PluginCall, Registry


def build_initial_weight(
    registry: Registry, spec: Any, shape: Sequence[int], generator: torch.Generator
) -> torch.Tensor:
    """Run an initializer and check what it returned."""
    component = registry.get("initializer", spec.name)
    init = component.build(spec)
    with component.call(f"failed in init({tuple(shape)}, generator)"):
        weight = init(tuple(shape), generator)
    if not isinstance(weight, torch.Tensor) or tuple(weight.shape) != tuple(shape):
        raise PluginError(
            f"Initializer {spec.name!r} from {component.origin.describe()} returned "
            f"{getattr(weight, 'shape', type(weight).__name__)} for shape {tuple(shape)}."
        )
    if not torch.isfinite(weight).all():
        raise PluginError(
            f"Initializer {spec.name!r} from {component.origin.describe()} returned NaN or Inf."
        )
    return weight.detach().to(dtype=torch.float32, device="cpu").contiguous()


class HebbianLayer(nn.Module):
    """One SoftHebb block; its weight is a buffer that only :meth:`learn` changes."""

    weight: torch.Tensor

    def __init__(
        self, config: LayerConfig, in_channels: int, registry: Registry, generator: torch.Generator
    ) -> None:
        super().__init__()
        self.config = config
        self.kernel = config.kernel
        self.stride = config.stride
        self.dilation = config.dilation
        self.padding = config.padding
        self.padding_mode = config.padding_mode
        self.bn: nn.Module = (
            nn.BatchNorm2d(in_channels, affine=False) if config.batch_norm else nn.Identity()
        )
        #: per-neuron counts of won positions since the last reset, when tracked
        self.win_counts: torch.Tensor | None = None
        #: dtype of the inputs of the matrix products (see HebbianNetwork.set_precision)
        self.compute_dtype = torch.float32
        self._cast: tuple[Any, torch.Tensor] | None = None
        shape = (config.channels, in_channels, config.kernel, config.kernel)
        weight = build_initial_weight(registry, config.init, shape, generator)
        # channels-last storage: the rows in patch order (kh, kw, c_in) are a view
        self.register_buffer("weight", channels_last(weight))
        rule = registry.get("plasticity", config.plasticity.name)
        compete = registry.get("competition", config.competition.name)
        activation = registry.get("activation", config.activation.name)
        pool = registry.get("pooling", config.pool.name)
        self.rule = rule.build(config.plasticity)
        self.rule_params: PlasticityParams = config.plasticity
        self.compete = compete.build(config.competition)
        self.activation = activation.build(config.activation)
        self.pool = pool.build(config.pool)
        if not isinstance(self.pool, nn.Module):
            raise PluginError(f"Pooling {config.pool.name!r} did not build a torch.nn.Module.")
        #: entered around every call into a component, so a failure names its plugin
        self.guards: dict[str, PluginCall] = {
            "plasticity": rule.call("failed in delta(weight, batch)"),
            "competition": compete.call("failed in compete(u)"),
            "activation": activation.call("failed in f(u)"),
            "pooling": pool.call("failed pooling a map"),
        }

    @property
    def fan_in(self) -> int:
        return self.weight[0].numel()

    @property
    def geometry(self) -> Geometry:
        return Geometry(self.kernel, self.stride, self.dilation)

    def weight_matrix(self) -> torch.Tensor:
        """The weight as rows ``(c_out, n)``, columns in patch order (kh, kw, c_in) as the
        products and the patches a rule sees: a view that shares storage."""
        return weight_rows(self.weight)

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding == 0:
            return x
        pads = [self.padding] * 4
        if self.padding_mode == "zeros":
            return F.pad(x, pads)
        return F.pad(x, pads, mode=self.padding_mode)

    def padded_input(self, x: torch.Tensor) -> torch.Tensor:
        """BatchNorm (float32), padding, then the compute dtype, channels-last."""
        x = self.pad(self.bn(x.float()))
        return x.to(dtype=self.compute_dtype, memory_format=torch.channels_last)

    def products(self, x_padded: torch.Tensor) -> PatchProducts | ConvProducts:
        """``u`` and the correlations of the current weight on a :meth:`padded_input`."""
        weight = self._weight_in_compute_dtype()
        if use_patches(x_padded, self.fan_in, self.geometry):
            return PatchProducts(x_padded, weight_rows(weight), self.geometry)
        return ConvProducts(x_padded, weight, self.geometry)

    def _weight_in_compute_dtype(self) -> torch.Tensor:
        """The weight cast for the products, cast again only after the weight changed."""
        weight = self.weight
        if self.compute_dtype == weight.dtype:
            return weight
        key = (self.compute_dtype, weight.device, weight.data_ptr(), weight._version)
        if self._cast is None or self._cast[0] != key:
            # to() keeps the channels-last layout
            self._cast = (key, weight.to(self.compute_dtype))
        return self._cast[1]

    def preactivation(self, x: torch.Tensor) -> torch.Tensor:
        """``u`` as ``(B, c_out, H, W)`` (channels-last), float32."""
        return self.products(self.padded_input(x)).u_map()

    def output(self, u: torch.Tensor, reuse: bool = False) -> torch.Tensor:
        """``pool(activation(u))``; with ``reuse``, an activation that offers ``in_place`` may
        overwrite ``u`` (its caller no longer needs it)."""
        in_place = getattr(self.activation, "in_place", None) if reuse else None
        with self.guards["activation"]:
            y = in_place(u) if in_place is not None else self.activation(u)
        with self.guards["pooling"]:
            return self.pool(y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.preactivation(x), reuse=True)

    @torch.no_grad()
    def learn(
        self, x: torch.Tensor, progress: float, want_output: bool = True
    ) -> torch.Tensor | None:
        """One plasticity step on batch ``x``; returns the block's output if ``want_output``
        (computed from the weight before the step)."""
        products = self.products(self.padded_input(x))
        u = products.u
        with self.guards["competition"]:
            y = self.compete(u)
            if self.win_counts is not None:
                # a competition may say who won (its tie-break rule); else the first maximum
                winners = getattr(self.compete, "winners", None)
                won = winners(u) if winners is not None else u.argmax(1)
                self.win_counts += torch.bincount(won, minlength=u.shape[1])
        batch = HebbianBatch(u=u, y=y, correlate=products.correlate, patches=products.patches)
        with self.guards["plasticity"]:
            delta = self.rule.delta(self.weight_matrix(), batch)
        out = self.output(products.u_map(), reuse=True) if want_output else None
        apply_update(self.weight_matrix(), delta, self.rule_params, progress)
        return out


class HebbianNetwork(nn.Module):
    """The Hebbian blocks of a recipe, in order."""

    def __init__(self, layers: list[HebbianLayer]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    @classmethod
    def from_recipe(cls, recipe: Recipe, in_channels: int, registry: Registry) -> HebbianNetwork:
        layers = []
        channels = in_channels
        for index, config in enumerate(recipe.layers):
            generator = torch.Generator().manual_seed(derive_seed(recipe.seed, "init", index))
            layers.append(HebbianLayer(config, channels, registry, generator))
            channels = config.channels
        return cls(layers)

    def forward(self, x: torch.Tensor, upto: int | None = None, start: int = 0) -> torch.Tensor:
        """Blocks ``start`` up to (not including) ``upto``; ``x`` is block ``start``'s input."""
        for layer in self.layers[start:upto]:
            x = layer(x)
        return x

    def set_precision(self, precision: str) -> list[str]:
        """Each layer's product dtype under ``precision`` (:mod:`hebbkit.engine.precision`);
        returns their names, layer by layer, for the run's summary."""
        for layer in self.layers:
            layer.compute_dtype = compute_dtype(precision, layer.fan_in)
        return [str(layer.compute_dtype).removeprefix("torch.") for layer in self.layers]

    def feature_shape(self, image_shape: Sequence[int], upto: int | None = None) -> tuple[int, ...]:
        """Output shape ``(C, H, W)`` (of the blocks before ``upto``, else of all) for one
        image of ``image_shape`` ``(C, H, W)``."""
        was_training = self.training
        self.eval()
        with torch.no_grad():
            device = self.layers[0].weight.device
            shape = tuple(self(torch.zeros(1, *image_shape, device=device), upto).shape[1:])
        self.train(was_training)
        return shape
