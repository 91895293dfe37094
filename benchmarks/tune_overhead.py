"""What Ray Tune adds: an N-trial ``hebbkit tune`` against the same N runs of ``hebbkit run``.

The N trials are recipes/mnist_zero.toml on a 5 000-image MNIST subset, seeds 0..N-1 (a
grid, so both sides run exactly the same N recipes). The search runs them with
``--cpus-per-trial C`` (default 1) on an embedded Ray sized to the machine, so several run
at once; the baseline runs them one after another, each a separate ``hebbkit run`` process
using every core. Prints a markdown table (wall time, the runs' own seconds from their
summary.json, overhead) and the command that reruns it.

    python benchmarks/tune_overhead.py [--runs 8] [--train-subset 5000] [--test-subset 1000]
        [--readout-epochs 10] [--cpus-per-trial 1] [--data-root DIR] [--out runs/benchmarks]
        [--only tune|run]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import tomli_w

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "mnist_zero.toml"
HEBBKIT = [sys.executable, "-c", "from hebbkit.cli.app import main; main()"]


def overrides(args: argparse.Namespace) -> list[str]:
    return [
        f"data.train_subset={args.train_subset}",
        f"data.test_subset={args.test_subset}",
        f"readout.epochs={args.readout_epochs}",
    ]


def search_recipe(args: argparse.Namespace, folder: Path) -> Path:
    """mnist_zero with a grid over the seeds as its search table."""
    from hebbkit.config.toml import read_toml

    data = read_toml(RECIPE)
    data["search"] = {
        "metric": "test_accuracy",  # nothing is selected; a validation split would cost images
        "algorithm": "grid",
        "space": {"seed": {"grid": list(range(args.runs))}},
    }
    path = folder / "mnist_zero_seeds_bench.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def timed(command: list[str]) -> float:
    print("+", shlex.join(command), flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def run_search(args: argparse.Namespace, folder: Path) -> dict:
    out = folder / "tune"
    shutil.rmtree(out, ignore_errors=True)
    command = [*HEBBKIT, "tune", str(search_recipe(args, folder)), "--out", str(out)]
    command += ["--cpus-per-trial", str(args.cpus_per_trial), "--offline"]
    command += ["--data-root", str(args.data_root)]
    for override in overrides(args):
        command += ["-s", override]
    wall = timed(command)
    seconds = [
        json.loads(path.read_text())["seconds"]["total"]
        for path in sorted(out.glob("trials/*/summary.json"))
    ]
    return {
        "mode": f"hebbkit tune (--cpus-per-trial {args.cpus_per_trial:g})",
        "wall": wall,
        "seconds": seconds,
    }


def run_sequential(args: argparse.Namespace, folder: Path) -> dict:
    wall, seconds = 0.0, []
    for seed in range(args.runs):
        out = folder / "run" / f"seed{seed}"
        command = [*HEBBKIT, "run", str(RECIPE), "--out", str(out), "--overwrite", "--quiet"]
        command += ["--offline", "--data-root", str(args.data_root), "-s", f"seed={seed}"]
        for override in overrides(args):
            command += ["-s", override]
        wall += timed(command)
        seconds.append(json.loads((out / "summary.json").read_text())["seconds"]["total"])
    return {"mode": "hebbkit run, one after another", "wall": wall, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--train-subset", type=int, default=5000)
    parser.add_argument("--test-subset", type=int, default=1000)
    parser.add_argument("--readout-epochs", type=int, default=10)
    parser.add_argument("--cpus-per-trial", type=float, default=1.0)
    parser.add_argument("--data-root", type=Path, default=REPO / "data")
    parser.add_argument("--out", type=Path, default=Path("runs/benchmarks/tune_overhead"))
    parser.add_argument("--only", choices=["tune", "run"], default=None)
    args = parser.parse_args()
    args.data_root = args.data_root.resolve()
    folder = args.out.resolve()
    folder.mkdir(parents=True, exist_ok=True)

    rows = []
    if args.only in (None, "tune"):
        rows.append(run_search(args, folder))
    if args.only in (None, "run"):
        rows.append(run_sequential(args, folder))

    print(
        f"\n{args.runs} runs of mnist_zero, {args.train_subset} training images, "
        f"{args.readout_epochs} read-out epochs, {os.cpu_count()} CPUs\n"
    )
    print("| mode | wall s | runs ok | mean run s (summary.json) | wall − Σ run s ÷ slots |")
    print("| --- | ---: | ---: | ---: | ---: |")
    slots = max(1, int((os.cpu_count() or 1) // args.cpus_per_trial))
    for row in rows:
        runs = row["seconds"]
        mean = sum(runs) / len(runs) if runs else float("nan")
        parallel = slots if row["mode"].startswith("hebbkit tune") else 1
        overhead = row["wall"] - sum(runs) / parallel
        print(
            f"| {row['mode']} | {row['wall']:.1f} | {len(runs)}/{args.runs} | {mean:.1f} | "
            f"{overhead:.1f} |"
        )
    if len(rows) == 2:
        print(f"\nsearch / sequential wall time: {rows[0]['wall'] / rows[1]['wall']:.2f}")
    print("\nrerun: " + shlex.join([sys.executable, "benchmarks/tune_overhead.py", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
