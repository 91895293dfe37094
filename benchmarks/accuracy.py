"""Accuracy, speed and memory of the headline recipes on full MNIST, over seeds.

Each run is a separate ``hebbkit run`` process (so peak memory is per run), written to
``<out>/<row>/seed<k>``; a run whose folder is finished is read, not repeated, so the script
resumes. Prints, per row, each seed's test accuracy, mean ± std (ddof=1) and the best of the
seeds (labelled as such), beside the study's figure; then the median seconds per phase,
Hebbian images per second per layer and peak memory; and the command that reruns it.

    python benchmarks/accuracy.py [--data-root DIR] [--device cpu|cuda] [--only NAME ...]
                                  [--seeds 0-3] [--out runs/benchmarks] [--jobs 1] [-s K=V]

--jobs runs side by side (useful on a GPU; on a 2-core CPU keep 1, or the timings disturb
each other).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
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


def parse_seeds(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        seeds += list(range(int(low), int(high or low) + 1))
    return seeds


def run_one(name: str, seed: int, args: argparse.Namespace) -> dict:
    recipe, overrides, _, _ = ROWS[name]
    folder = Path(args.out).resolve() / name / f"seed{seed}"
    summary_path = folder / "summary.json"
    if not summary_path.exists():
        command = [sys.executable, "-m", "hebbkit", "run", recipe, "--out", str(folder)]
        command += ["--overwrite", "--quiet", "--device", args.device, "-s", f"seed={seed}"]
        if args.data_root:
            command += ["--data-root", args.data_root]
        for override in [*overrides, *args.set]:
            command += ["-s", override]
        print("+", shlex.join(command), flush=True)
        subprocess.run(command, check=True)
    else:
        print(f"= {name} seed {seed}: finished before ({folder})", flush=True)
    return json.loads(summary_path.read_text())


def mean_std(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", nargs="*", choices=sorted(ROWS), default=None)
    parser.add_argument("--out", default="runs/benchmarks")
    parser.add_argument("--seeds", default="0-3", help="e.g. 0-3 (a result is four seeds) or 0")
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
    seeds = parse_seeds(args.seeds)
    started = time.perf_counter()
    jobs = [(name, seed) for name in names for seed in seeds]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        summaries = list(pool.map(lambda job: run_one(*job, args), jobs))
    results: dict[str, list[dict]] = {name: [] for name in names}
    for (name, _), summary in zip(jobs, summaries, strict=True):
        results[name].append(summary)

    header = " | ".join(f"seed {seed}" for seed in seeds)
    print(f"\n| run | {header} | mean ± std | best of {len(seeds)} | target | study's figure |")
    print("| --- |" + " --- |" * (len(seeds) + 4))
    for name in names:
        recipe, overrides, study, target = ROWS[name]
        label = f"`{Path(recipe).name}`" + (f" `-s '{overrides[0]}'`" if overrides else "")
        accuracies = [100 * s["test_accuracy"] for s in results[name]]
        cells = " | ".join(f"{a:.2f}" for a in accuracies)
        print(
            f"| {label} | {cells} | {mean_std(accuracies)} | {max(accuracies):.2f} "
            f"| {target} | {study} |"
        )

    print(
        "\n| run | device | end to end (s) | Hebbian (s) | features (s) | read-out (s) "
        "| Hebbian images/s per layer | peak RAM (GiB) | peak GPU memory (GiB) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in names:
        runs = results[name]

        def median(key: str, runs: list[dict] = runs) -> float:
            return statistics.median(s["seconds"][key] for s in runs)

        layers = len(runs[0]["hebbian_images_per_second"])
        rates = " / ".join(
            f"{statistics.median(s['hebbian_images_per_second'][i] for s in runs):.0f}"
            for i in range(layers)
        )
        hardware = runs[0]["hardware"]
        device = hardware.get("gpu") or f"{hardware['cpu_count']}-core CPU"
        ram = max(s["peak_rss_bytes"] for s in runs) / 1024**3
        gpus = [s["peak_gpu_bytes"] for s in runs if "peak_gpu_bytes" in s]
        gpu = f"{max(gpus) / 1024**3:.2f}" if gpus else "–"
        print(
            f"| {name} | {device} | {median('total'):.0f} | {median('hebbian'):.0f} | "
            f"{median('features'):.0f} | {median('readout'):.0f} | {rates} | {ram:.2f} | {gpu} |"
        )
    print(f"\nseconds: medians over {len(seeds)} seeds; {time.perf_counter() - started:.0f} s")
    print(f"rerun: python {shlex.join(sys.argv)}")


if __name__ == "__main__":
    main()
