"""How much the read-out alone moves a run's accuracy: read-out seeds on fixed features.

Takes a finished run folder, rebuilds its frozen Hebbian network from ``weights.pt``, computes
the features once, then trains the read-out again with several read-out seeds under each
protocol (the recipe's read-out with only ``schedule`` changed). Prints, per protocol, the
final test accuracy's mean ± std (ddof=1) and range over the read-out seeds, how much the
last epoch moved it (mean |last − second last|), and the same for the mean of the last k
epochs' test accuracies. Writes every epoch of every read-out to ``--out``.

    python benchmarks/readout_spread.py RUN_DIR [--data-root DIR] [--seeds 0-5]
        [--schedules constant cosine] [--last 3] [--out runs/readout-spread]
"""

from __future__ import annotations

import argparse
import math
import shlex
import statistics
import sys
import time
from pathlib import Path

import polars as pl
import torch

from hebbkit.config.recipe import validate_recipe
from hebbkit.config.toml import read_toml
from hebbkit.engine.network import HebbianNetwork
from hebbkit.engine.progress import QuietProgress
from hebbkit.engine.readout import readout_phase
from hebbkit.engine.splits import load_splits
from hebbkit.engine.training import extract_features, feature_dtype
from hebbkit.plugins import get_registry
from hebbkit.runs.folder import RECIPE_FILE, WEIGHTS_FILE
from hebbkit.runs.grid import parse_seeds


def frozen_features(run: Path, data_root: Path) -> tuple[object, dict, int]:
    """The run's recipe, its cached (train, test) features and labels, and the class count."""
    registry = get_registry()
    recipe = validate_recipe(read_toml(run / RECIPE_FILE), registry, str(run / RECIPE_FILE))
    splits = load_splits(recipe.data, registry, data_root, download=False)
    network = HebbianNetwork.from_recipe(recipe, splits.train.images.shape[1], registry)
    state = torch.load(run / WEIGHTS_FILE, map_location="cpu", weights_only=True)["network"]
    network.load_state_dict(state)
    size = math.prod(network.feature_shape(tuple(splits.train.images.shape[1:])))
    dtype = feature_dtype(recipe.readout.feature_dtype, len(splits.train), size)
    device = torch.device("cpu")
    features = {
        name: (
            extract_features(network, part.images, dtype, device, QuietProgress(), name),
            part.labels,
        )
        for name, part in (("train", splits.train), ("test", splits.test))
    }
    return recipe, features, len(splits.train.classes)


def spread(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else float("nan")
    return (
        f"{100 * statistics.mean(values):.2f} ± {100 * std:.2f} "
        f"({100 * min(values):.2f}–{100 * max(values):.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a finished run folder (weights.pt, recipe.toml)")
    parser.add_argument("--data-root", type=Path, default=Path("data"))
    parser.add_argument("--seeds", default="0-5", help="read-out seeds, e.g. 0-5 or 0,3")
    parser.add_argument("--schedules", nargs="+", default=["constant", "cosine"])
    parser.add_argument("--last", type=int, default=3, help="k of the mean of the last k epochs")
    parser.add_argument("--out", type=Path, default=Path("runs/readout-spread"))
    args = parser.parse_args()
    seeds = parse_seeds(args.seeds)
    started = time.perf_counter()
    recipe, features, classes = frozen_features(args.run.resolve(), args.data_root.resolve())
    print(f"features of {args.run}: {time.perf_counter() - started:.0f} s", flush=True)
    rows: list[dict] = []
    for schedule in args.schedules:
        config = recipe.readout.model_copy(update={"schedule": schedule})
        for seed in seeds:
            epochs: list[dict] = []
            readout_phase(
                features["train"],
                {"test": features["test"]},
                classes,
                config,
                seed,
                torch.device("cpu"),
                QuietProgress(),
                epochs.append,
            )
            for row in epochs:
                rows.append({"schedule": schedule, "readout_seed": seed, **row})
            print(
                f"{schedule:>8} seed {seed}: test "
                + " ".join(f"{100 * r['test_accuracy']:.2f}" for r in epochs),
                flush=True,
            )
    table = pl.from_dicts(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    table.write_csv(args.out / "epochs.csv")
    k = args.last
    print(
        f"\n{recipe.name} ({recipe.readout.epochs} read-out epochs, batch "
        f"{recipe.readout.batch_size}), {len(seeds)} read-out seeds on the features of {args.run}"
    )
    print(
        f"\n| schedule | last epoch: mean ± std (range) | mean |last − second last| "
        f"| mean of last {k}: mean ± std (range) |"
    )
    print("| --- | --- | --- | --- |")
    for schedule in args.schedules:
        finals, swings, means = [], [], []
        for seed in seeds:
            series = (
                table.filter((pl.col("schedule") == schedule) & (pl.col("readout_seed") == seed))
                .sort("epoch")["test_accuracy"]
                .to_list()
            )
            finals.append(series[-1])
            swings.append(abs(series[-1] - series[-2]) if len(series) > 1 else 0.0)
            means.append(statistics.mean(series[-k:]))
        print(
            f"| {schedule} | {spread(finals)} | {100 * statistics.mean(swings):.2f} "
            f"| {spread(means)} |"
        )
    print(f"\nepochs: {args.out / 'epochs.csv'}; {time.perf_counter() - started:.0f} s in all")
    print(f"rerun: python {shlex.join(sys.argv)}")


if __name__ == "__main__":
    main()
