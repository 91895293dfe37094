"""Accuracy, speed and memory of the core recipes on full MNIST (the Core issue's table).

Each row is a separate `hebbkit run` process (so peak memory is per run). Prints a markdown
table of test accuracy beside the study's figure, seconds per phase, Hebbian images per second
per layer and peak memory, and the command that reruns it.

    python benchmarks/accuracy.py [--data-root DIR] [--device cpu|cuda] [--only NAME ...]
                                  [--out runs/benchmarks] [--seed 0] [--jobs 1]

--jobs runs rows side by side (useful on a GPU; on a 2-core CPU keep 1, or the timings of the
rows disturb each other).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ZERO_STUDY = 'layers.*.init={name="zero", scale="study"}'

#: name -> (recipe, overrides, study's figure, target)
ROWS: dict[str, tuple[str, list[str], str, str]] = {
    "mnist_zero": ("recipes/mnist_zero.toml", [], "96.07", "≥ 96.0"),
    "softhebb_random": ("recipes/mnist_softhebb.toml", [], "98.9 (SoftHebb: 99.4)", "≥ 98.9"),
    "softhebb_random_binary": (
        "recipes/mnist_softhebb.toml",
        ["layers.*.init=random-binary"],
        "98.87",
        "≥ 98.5",
    ),
    "softhebb_zero_study": ("recipes/mnist_softhebb.toml", [ZERO_STUDY], "71.4", "65 – 77"),
}


def run_row(name: str, args: argparse.Namespace) -> dict:
    recipe, overrides, _, _ = ROWS[name]
    folder = Path(args.out).resolve() / name
    command = [
        sys.executable,
        "-m",
        "hebbkit",
        "run",
        recipe,
        "--out",
        str(folder),
        "--overwrite",
        "--quiet",
        "--device",
        args.device,
        "-s",
        f"seed={args.seed}",
    ]
    if args.data_root:
        command += ["--data-root", args.data_root]
    for override in [*overrides, *args.set]:
        command += ["-s", override]
    print("+", shlex.join(command), flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True)
    summary = json.loads((folder / "summary.json").read_text())
    summary["wall_seconds"] = time.perf_counter() - started
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", nargs="*", choices=sorted(ROWS), default=None)
    parser.add_argument("--out", default="runs/benchmarks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument(
        "--set",
        "-s",
        action="append",
        default=[],
        help="extra override for every row (e.g. a quick data.train_subset)",
    )
    args = parser.parse_args()
    names = args.only or list(ROWS)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = dict(zip(names, pool.map(lambda name: run_row(name, args), names), strict=True))

    print("\n| run | test accuracy | target | study's figure |")
    print("| --- | --- | --- | --- |")
    for name in names:
        recipe, overrides, study, target = ROWS[name]
        label = f"`{Path(recipe).name}`" + (f" `-s '{overrides[0]}'`" if overrides else "")
        print(f"| {label} | {100 * results[name]['test_accuracy']:.2f}% | {target} | {study} |")

    print(
        "\n| run | device | end to end (s) | Hebbian (s) | features (s) | read-out (s) "
        "| Hebbian images/s per layer | peak RAM (GiB) | peak GPU memory (GiB) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in names:
        summary = results[name]
        seconds = summary["seconds"]
        rates = " / ".join(f"{rate:.0f}" for rate in summary["hebbian_images_per_second"])
        hardware = summary["hardware"]
        device = hardware.get("gpu") or f"{hardware['cpu_count']}-core CPU"
        ram = summary["peak_rss_bytes"] / 1024**3
        gpu = f"{summary['peak_gpu_bytes'] / 1024**3:.2f}" if "peak_gpu_bytes" in summary else "–"
        print(
            f"| {name} | {device} | {summary['wall_seconds']:.0f} | {seconds['hebbian']:.0f} | "
            f"{seconds['features']:.0f} | {seconds['readout']:.0f} | {rates} | {ram:.2f} "
            f"| {gpu} |"
        )
    print(f"\nrerun: python {shlex.join(sys.argv)}")


if __name__ == "__main__":
    main()
