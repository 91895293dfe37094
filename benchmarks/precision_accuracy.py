"""Is a precision's accuracy the reference's? Mean ± std over seeds of finished run folders.

Each group is ``NAME=FOLDER``: a grid run's label folder holding ``seed*/summary.json`` (as
``hebbkit grid --out OUT`` writes it: ``OUT/<label>/seed<k>/``). The first group is the
reference; every other group is compared with it: the difference of the means against one
standard deviation of the reference (the issue's criterion), and Welch's t. Also prints the
precision each run recorded, the median seconds per phase, the command each group's runs
came from, and every recipe key in which a group's runs differ from the reference's run of
the same seed (none is expected: precision is a machine setting, not a recipe key).

    hebbkit grid recipes/study/table5.toml --only 2-layer --seeds 0-3 --precision bf16 \\
        --out runs/study/table5-bf16 -q
    python benchmarks/precision_accuracy.py \\
        fp32=runs/study/table5/2-layer bf16=runs/study/table5-bf16/2-layer
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import statistics
import sys
from pathlib import Path
from typing import Any

from hebbkit.config.recipe import flatten_recipe, recipe_dict, validate_recipe
from hebbkit.config.toml import read_toml
from hebbkit.errors import RecipeError
from hebbkit.plugins import get_registry
from hebbkit.runs.folder import RECIPE_FILE


def load(folder: Path) -> list[dict[str, Any]]:
    runs = []
    for path in sorted(folder.glob("seed*/summary.json")):
        summary = json.loads(path.read_text())
        summary["folder"] = str(path.parent)
        runs.append(summary)
    return runs


def flat_recipe(folder: str) -> dict[str, Any] | None:
    """The run's resolved recipe as dotted keys (None when it cannot be read back)."""
    path = Path(folder) / RECIPE_FILE
    try:
        return flatten_recipe(recipe_dict(validate_recipe(read_toml(path), get_registry())))
    except (OSError, RecipeError):
        return None


def recipe_differences(runs: list[dict[str, Any]], reference: list[dict[str, Any]]) -> str:
    """Recipe keys in which ``runs`` differ from the reference run of the same seed."""
    by_seed = {r["seed"]: r for r in reference}
    keys: set[str] = set()
    unread = 0
    for run in runs:
        other = by_seed.get(run["seed"])
        if other is None:
            continue
        mine, theirs = flat_recipe(run["folder"]), flat_recipe(other["folder"])
        if mine is None or theirs is None:
            unread += 1
            continue
        keys |= {k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k)}
    text = ", ".join(sorted(keys)) or "none"
    return text + (f" ({unread} run(s) without a readable recipe)" if unread else "")


def stats(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else math.nan


def welch_t(a: list[float], b: list[float]) -> float:
    if len(a) < 2 or len(b) < 2:
        return math.nan
    (ma, sa), (mb, sb) = stats(a), stats(b)
    scale = math.sqrt(sa**2 / len(a) + sb**2 / len(b))
    return (mb - ma) / scale if scale else math.nan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="+", metavar="NAME=FOLDER")
    args = parser.parse_args()
    groups = []
    for item in args.groups:
        name, _, folder = item.partition("=")
        runs = load(Path(folder))
        if not runs:
            sys.exit(f"{folder}: no seed*/summary.json")
        groups.append((name, runs))
    reference = [100 * r["test_accuracy"] for r in groups[0][1]]
    ref_mean, ref_std = stats(reference)
    print(
        "| group | precision | seeds | test accuracy per seed (%) | mean ± std | Δ mean vs "
        f"{groups[0][0]} | within 1 std | Welch t | median s: hebbian / features / read-out "
        "/ total |"
    )
    print("| --- | --- | --- | --- | --- | ---: | --- | ---: | --- |")
    for name, runs in groups:
        accuracy = [100 * r["test_accuracy"] for r in runs]
        mean, std = stats(accuracy)
        precision = sorted({r.get("precision", "fp32 (not recorded)") for r in runs})
        seeds = ",".join(str(r["seed"]) for r in runs)
        seconds = " / ".join(
            f"{statistics.median(r['seconds'][phase] for r in runs):.0f}"
            for phase in ("hebbian", "features", "readout", "total")
        )
        delta = mean - ref_mean
        within = "yes" if abs(delta) <= ref_std else "no"
        print(
            f"| {name} | {', '.join(precision)} | {seeds} | "
            f"{' / '.join(f'{a:.2f}' for a in accuracy)} | {mean:.2f} ± {std:.2f} | "
            f"{delta:+.2f} | {within} | {welch_t(reference, accuracy):+.2f} | {seconds} |"
        )
    print()
    for name, runs in groups:
        commands = {shlex.join(r.get("command", [])) for r in runs}
        print(f"{name}: {' | '.join(sorted(commands))}")
    for name, runs in groups[1:]:
        differences = recipe_differences(runs, groups[0][1])
        print(f"recipe keys in which {name} differs from {groups[0][0]}: {differences}")
    print(f"\nrerun: {shlex.join([Path(sys.executable).name, *sys.argv])}")


if __name__ == "__main__":
    main()
