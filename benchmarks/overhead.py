"""What the safety checks cost a normal run: the same ``hebbkit run`` on two versions of the
code, alternated (A B B A ...), wall and CPU seconds and the run's own phase timings.

Usage (from the repository root; the base is exported with ``git archive``)::

    python benchmarks/overhead.py --base main --repeats 4 -- \\
        recipes/mnist_zero.toml -s data.train_subset=5000 -s readout.epochs=2

Both versions run from source with ``PYTHONPATH`` (the working tree's plugins included), on
the installed environment, offline, with ``--data-root`` (default ``data``, the MNIST the
repository ships). The figures printed are medians over the repeats; the difference is
head minus base, relative to base.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PHASES = ("data", "hebbian", "features", "readout", "total")


def export(ref: str, folder: Path) -> Path:
    """The tree of ``ref`` as files under ``folder``."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", ref], capture_output=True, check=True
    ).stdout
    target = folder / "base"
    target.mkdir()
    archive_path = folder / "base.tar"
    archive_path.write_bytes(archive)
    with tarfile.open(archive_path) as tar:
        tar.extractall(target, filter="data")
    return target


def run_once(tree: Path, args: list[str], out: Path, threads: int | None) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEBBKIT_")}
    env["PYTHONPATH"] = f"{tree}{os.pathsep}{tree / 'plugins'}"
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    command = [sys.executable, "-m", "hebbkit", "run", *args, "--out", str(out), "-q"]
    log = out.with_suffix(".log")
    started = time.perf_counter()
    with log.open("w") as stderr:
        process = subprocess.Popen(
            command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr
        )
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{shlex.join(command)} failed: {log.read_text()}")
    seconds = json.loads((out / "summary.json").read_text())["seconds"]
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        **{phase: float(seconds.get(phase, 0.0)) for phase in PHASES},
    }


def checks_seconds(args: list[str], repeats: int = 20) -> dict[str, float]:
    """The checks themselves, timed in this process (the working tree's code): the shape
    walk and memory estimate before and after the data is read, claiming and releasing the
    folder with its scan for stale ones, and the labels check of the training set."""
    from hebbkit.config.recipe import load_recipe
    from hebbkit.data import ImageSet
    from hebbkit.engine.shapes import Counts
    from hebbkit.engine.splits import load_splits
    from hebbkit.plugins import get_registry
    from hebbkit.runs.folder import FolderClaim, recover_stale
    from hebbkit.runs.run import Machine, check_fits, preflight

    recipe_path, overrides = args[0], [args[i + 1] for i, a in enumerate(args) if a == "-s"]
    registry = get_registry()
    recipe = load_recipe(recipe_path, overrides, registry)
    machine = Machine.from_flags("data", None, True)
    splits = load_splits(recipe.data, registry, machine.data_root, download=False)
    counts = Counts(len(splits.train), 0, len(splits.test), 0, 70_000)
    started = time.perf_counter()
    preflight(recipe, registry, machine)
    timings = {"preflight, first call in a process": time.perf_counter() - started}

    def timed(name: str, work: object) -> None:
        preflight(recipe, registry, machine)  # warm: the first meta-device trace loads kernels
        started = time.perf_counter()
        for _ in range(repeats):
            work()  # type: ignore[operator]
        timings[name] = (time.perf_counter() - started) / repeats

    timed(
        "preflight (shapes + memory, declared sizes)", lambda: preflight(recipe, registry, machine)
    )
    timed(
        "check_fits (shapes + memory, real sizes)",
        lambda: check_fits(recipe, registry, machine, (1, 28, 28), counts, 10),
    )
    with tempfile.TemporaryDirectory() as temp:

        def claim() -> None:
            with FolderClaim(Path(temp) / "run"):
                recover_stale(Path(temp), held=Path(temp) / "run")

        timed("claim, stale scan, release", claim)
    guard = registry.get("competition", "soft").call("failed in compete(u)")

    def guarded_batch() -> None:
        for _ in range(4):  # a Hebbian batch enters four guards (compete, delta, f, pool)
            with guard:
                pass

    timed("plugin guards of one Hebbian batch", guarded_batch)
    train = splits.train
    timed(
        "ImageSet checks (training set: dtype, counts, labels)",
        lambda: ImageSet(train.images, train.labels, train.classes),
    )
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="main", help="git ref to compare with (default main)")
    parser.add_argument("--repeats", type=int, default=4, help="runs per version")
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of the runs")
    parser.add_argument("--data-root", default="data")
    parser.add_argument(
        "--checks-only", action="store_true", help="time only the checks, in this process"
    )
    parser.add_argument("run", nargs=argparse.REMAINDER, help="-- then hebbkit run's arguments")
    options = parser.parse_args()
    run_args = [a for a in options.run if a != "--"] or [
        "recipes/mnist_zero.toml",
        "-s",
        "data.train_subset=5000",
        "-s",
        "readout.epochs=2",
    ]
    run_args += ["--data-root", options.data_root, "--offline"]
    if not options.checks_only:
        compare(options, run_args)
    print("\nthe checks, timed in this process (head), milliseconds:")
    for name, seconds in checks_seconds(run_args).items():
        print(f"  {name:<56}{1000 * seconds:>9.3f}")
    command = shlex.join(["python", "benchmarks/overhead.py", *sys.argv[1:]])
    print(f"\nrerun: {command}")


def compare(options: argparse.Namespace, run_args: list[str]) -> None:
    """Base and head, alternated; medians of wall, CPU and the run's own phase times."""
    with tempfile.TemporaryDirectory(prefix="hebbkit-overhead") as temp:
        folder = Path(temp)
        trees = {"base": export(options.base, folder), "head": REPO}
        results: dict[str, list[dict[str, float]]] = {"base": [], "head": []}
        for repeat in range(options.repeats):
            order = ["base", "head"] if repeat % 2 == 0 else ["head", "base"]
            for name in order:
                out = folder / f"{name}-{repeat}"
                results[name].append(run_once(trees[name], run_args, out, options.threads))
                row = results[name][-1]
                print(
                    f"  repeat {repeat} {name}: wall {row['wall']:.2f} s, cpu {row['cpu']:.2f} s,"
                    f" run total {row['total']:.2f} s",
                    flush=True,
                )
    print(
        f"\n{options.repeats} runs each of: hebbkit run {shlex.join(run_args)}"
        f"{f' (OMP_NUM_THREADS={options.threads})' if options.threads else ''}"
    )
    print(f"{'median seconds':<16}{'base':>10}{'head':>10}{'head - base':>14}")
    for key in ("wall", "cpu", *PHASES):
        base = statistics.median(r[key] for r in results["base"])
        head = statistics.median(r[key] for r in results["head"])
        change = f"{100 * (head - base) / base:+.2f}%" if base else "-"
        print(f"{key:<16}{base:>10.2f}{head:>10.2f}{change:>14}")


if __name__ == "__main__":
    main()
