"""Time saved by ``--hebbian-from``: a run trained again on a finished run's Hebbian weights.

Runs ``hebbkit run RECIPE`` (or takes a finished run with ``--source``), then trains the same
resolved recipe again with ``--hebbian-from`` that run, each in its own process, and prints
both runs' accuracies and seconds per phase, the time saved, whether the accuracies are
identical, and the command that reruns it.

    python benchmarks/hebbian_reuse.py [--recipe recipes/mnist_softhebb.toml] [-s K=V ...]
                                       [--source RUN_DIR] [--data-root DIR]
                                       [--out runs/benchmarks/hebbian_reuse] [--device cpu]

A ``--source`` folder is only read: the new run goes to ``--out``. Older runs without a
Hebbian config hash are checked against their ``recipe.toml``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

PHASES = ("data", "hebbian", "features", "readout", "total")


def hebbkit_run(arguments: list[str]) -> float:
    command = [sys.executable, "-m", "hebbkit", "run", *arguments, "--overwrite", "--quiet"]
    print("+", shlex.join(command), flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="recipes/mnist_softhebb.toml")
    parser.add_argument("--source", default=None, help="a finished run to reuse (read only)")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="runs/benchmarks/hebbian_reuse")
    parser.add_argument(
        "-s", "--set", action="append", default=[], help="override of the original run"
    )
    args = parser.parse_args()

    out = Path(args.out).resolve()
    machine = ["--device", args.device]
    if args.data_root:
        machine += ["--data-root", args.data_root]
    if args.source:
        source = Path(args.source).resolve()
    else:
        source = out / "original"
        overrides = [arg for override in args.set for arg in ("-s", override)]
        hebbkit_run([args.recipe, "--out", str(source), *machine, *overrides])
    reused = out / "reused"
    hebbkit_run(
        [str(source / "recipe.toml"), "--hebbian-from", str(source), "--out", str(reused), *machine]
    )

    rows = {
        name: json.loads((folder / "summary.json").read_text())
        for name, folder in (("original", source), ("--hebbian-from", reused))
    }
    print()
    print(
        "| run | test accuracy | train accuracy | " + " | ".join(f"{p} (s)" for p in PHASES) + " |"
    )
    print("| --- " * (3 + len(PHASES)) + "|")
    for name, summary in rows.items():
        seconds = summary["seconds"]
        cells = [f"{seconds.get(p, float('nan')):.0f}" for p in PHASES]
        print(
            f"| {name} | {100 * summary['test_accuracy']:.2f}% | "
            f"{100 * summary['train_accuracy']:.2f}% | " + " | ".join(cells) + " |"
        )
    original, again = rows["original"], rows["--hebbian-from"]
    saved = original["seconds"]["total"] - again["seconds"]["total"]
    same = all(original[k] == again[k] for k in ("test_accuracy", "train_accuracy"))
    print()
    print(
        f"Time saved: {saved:.0f} s of {original['seconds']['total']:.0f} s "
        f"({100 * saved / original['seconds']['total']:.0f}%); the original's Hebbian phase "
        f"took {original['seconds']['hebbian']:.0f} s."
    )
    print(f"Test and train accuracy identical to the original's: {'yes' if same else 'NO'}.")
    print(
        f"Source: {source} ({original.get('finished_at', '?')}, command "
        f"{shlex.join(original.get('command', []))})"
    )
    print()
    print("Rerun:", shlex.join(["python", "benchmarks/hebbian_reuse.py", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
