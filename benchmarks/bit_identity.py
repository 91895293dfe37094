"""Are two runs of one recipe with the same seed bit-identical on this machine?

Runs ``hebbkit run RECIPE`` twice (separate processes, same seed, same overrides) and compares
everything the runs learned and measured, bit for bit: every tensor of weights.pt (the Hebbian
layers and the read-out), every column of metrics.parquet and winners.parquet except the
timing columns (seconds, images/s), and the accuracies in summary.json. Prints a markdown
table and the command that reruns it; exits 1 if anything differs.

    python benchmarks/bit_identity.py [RECIPE] [-s dotted.path=VALUE]... [--data-root DIR]
        [--device cpu] [--out runs/bit-identity]
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import torch

REPO = Path(__file__).resolve().parents[1]
HEBBKIT = [sys.executable, "-c", "from hebbkit.cli.app import main; main()"]
#: Wall-clock columns differ between any two runs; everything else must not.
TIMING_COLUMNS = ("seconds", "images_per_second")
SUMMARY_KEYS = ("train_accuracy", "validation_accuracy", "test_accuracy", "feature_size")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", nargs="?", default="recipes/mnist_zero.toml")
    parser.add_argument("-s", "--set", dest="overrides", action="append", default=[])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(REPO / "runs" / "bit-identity"))
    return parser.parse_args(argv)


def run_once(args: argparse.Namespace, folder: Path) -> float:
    command = [*HEBBKIT, "run", args.recipe, "--out", str(folder), "--device", args.device, "-q"]
    for override in args.overrides:
        command += ["-s", override]
    if args.data_root:
        command += ["--data-root", args.data_root]
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO)
    return time.perf_counter() - started


def _bits(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().reshape(-1).contiguous().view(torch.uint8)


def tensor_differences(first: object, second: object, prefix: str = "") -> tuple[int, list[str]]:
    """Count tensors compared and name those not bit-identical, through nested dicts."""
    if isinstance(first, dict) and isinstance(second, dict):
        compared, differing = 0, []
        if first.keys() != second.keys():
            differing.append(f"{prefix or 'weights'}: keys differ")
        for key in first.keys() & second.keys():
            count, names = tensor_differences(first[key], second[key], f"{prefix}{key}.")
            compared += count
            differing += names
        return compared, differing
    if isinstance(first, torch.Tensor) and isinstance(second, torch.Tensor):
        same = first.dtype == second.dtype and first.shape == second.shape
        # Compare raw bits, so that NaN == NaN and -0.0 != 0.0 count as they are stored.
        same = same and torch.equal(_bits(first), _bits(second))
        return 1, [] if same else [prefix.rstrip(".")]
    return 0, [] if first == second else [prefix.rstrip(".")]


def table_differences(first: Path, second: Path) -> tuple[int, list[str]]:
    a, b = pl.read_parquet(first), pl.read_parquet(second)
    columns = [c for c in a.columns if c not in TIMING_COLUMNS]
    if a.columns != b.columns or a.height != b.height:
        return len(columns), [f"{first.name}: shape or columns differ"]
    differing = [c for c in columns if not a[c].equals(b[c], check_names=True)]
    return len(columns), [f"{first.name}:{c}" for c in differing]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out).resolve()
    folders = [out / "first", out / "second"]
    seconds = [run_once(args, folder) for folder in folders]

    weights = [torch.load(f / "weights.pt", map_location="cpu") for f in folders]
    n_tensors, tensor_diff = tensor_differences(*weights)
    n_metrics, metrics_diff = table_differences(*(f / "metrics.parquet" for f in folders))
    n_winners, winners_diff = table_differences(*(f / "winners.parquet" for f in folders))
    summaries = [json.loads((f / "summary.json").read_text()) for f in folders]
    summary_diff = [k for k in SUMMARY_KEYS if summaries[0].get(k) != summaries[1].get(k)]

    rows = [
        ("weights.pt tensors", n_tensors, tensor_diff),
        ("metrics.parquet columns (timing excluded)", n_metrics, metrics_diff),
        ("winners.parquet columns", n_winners, winners_diff),
        ("summary.json accuracies", len(SUMMARY_KEYS), summary_diff),
    ]
    print(f"recipe {args.recipe} {' '.join('-s ' + o for o in args.overrides)}".rstrip())
    print(f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    accuracies = " / ".join(f"{s['test_accuracy']:.4%}" for s in summaries)
    print(f"test accuracy {accuracies}")
    print(f"run seconds {seconds[0]:.1f} / {seconds[1]:.1f}\n")
    print("| compared | count | bit-identical |")
    print("| --- | ---: | --- |")
    for name, count, differing in rows:
        verdict = "yes" if not differing else "no: " + ", ".join(differing[:5])
        print(f"| {name} | {count} | {verdict} |")
    rerun = ["python", "benchmarks/bit_identity.py", args.recipe]
    for override in args.overrides:
        rerun += ["-s", override]
    if args.data_root:
        rerun += ["--data-root", args.data_root]
    print("\nrerun: " + shlex.join(rerun))
    return 1 if any(differing for _, _, differing in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
