"""The set-up shared by the per-layer benchmarks: their command-line options, and a recipe's
Hebbian network (as initialised) with one batch of random images.

Imported by the benchmarks beside it (``python benchmarks/X.py`` puts this folder on the path).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

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


def alternating_workers(
    script: str, arguments: list[str], variants: Sequence[str], rounds: int
) -> dict[str, list[Any]]:
    """Run ``script`` once per variant and round, each in its own process (``--worker
    VARIANT``), the variants alternating so that a drifting machine hits them alike; returns
    each variant's results, the JSON of each process's last output line."""
    runs: dict[str, list[Any]] = {variant: [] for variant in variants}
    for _ in range(rounds):
        for variant in variants:
            done = subprocess.run(
                [sys.executable, script, *arguments, "--worker", variant],
                check=True,
                capture_output=True,
                text=True,
            )
            runs[variant].append(json.loads(done.stdout.strip().splitlines()[-1]))
    return runs


def worker_or_rounds(
    parser: argparse.ArgumentParser,
    script: str,
    variants: Sequence[str],
    worker: Callable[[argparse.Namespace], None],
) -> tuple[argparse.Namespace, dict[str, list[Any]] | None]:
    """Adds ``--rounds`` (default 3) and the hidden ``--worker``, parses; in a worker process
    runs ``worker`` and returns no results, else :func:`alternating_workers`' results."""
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", choices=variants, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return args, None
    return args, alternating_workers(script, list(sys.argv[1:]), variants, args.rounds)
