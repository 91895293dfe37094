"""The set-up shared by the per-layer benchmarks: their command-line options, and a recipe's
Hebbian network (as initialised) with one batch of random images.

Imported by the benchmarks beside it (``python benchmarks/X.py`` puts this folder on the path).
"""

from __future__ import annotations

import argparse

import torch

from hebbkit.config.recipe import load_recipe
from hebbkit.engine.network import HebbianNetwork
from hebbkit.plugins import get_registry


def layer_arguments(description: str, recipe: str) -> argparse.ArgumentParser:
    """``--recipe`` (default ``recipe``), ``--batch``, ``--repeats`` and ``--threads``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--recipe", default=recipe)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    return parser


def recipe_network(args: argparse.Namespace) -> tuple[HebbianNetwork, torch.Tensor]:
    """The recipe's network in eval mode and a ``(batch, 1, 28, 28)`` batch of random images;
    applies ``--threads``."""
    if args.threads:
        torch.set_num_threads(args.threads)
    registry = get_registry()
    recipe = load_recipe(args.recipe, [], registry)
    network = HebbianNetwork.from_recipe(recipe, 1, registry).eval()
    images = torch.rand(args.batch, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    return network, images
