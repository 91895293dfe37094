"""Is a Ctrl-C ever lost? Start ``python -m hebbkit run`` many times and send SIGINT at a random
moment after its run folder appears; count the exit codes and the runs that did not stop.

Every run should exit 130 within seconds, whatever it was doing when the signal came (reading
data, importing torch's optional modules, learning). Before hebbkit held stop signals around
torch's first ``use_deterministic_algorithms`` call, some runs exited -2 (killed by SIGINT:
CPython's ``python -m`` quirk after a Ctrl-C inside ``exec``) and some ignored the signal.

Usage (from the repository root; ``--base`` runs another commit, exported with ``git archive``)::

    python benchmarks/interrupt_race.py --runs 40 --window 0-2.5
    python benchmarks/interrupt_race.py --runs 40 --window 0-2.5 --base 73000e8

A tiny long-running recipe on the MNIST the repository ships (``data``): 600 training images,
4 channels, 500 Hebbian epochs, one thread per run.
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from overhead import export

REPO = Path(__file__).resolve().parents[1]
#: long enough to be interrupted at any moment of its first seconds
OVERRIDES = [
    "data.train_subset=600",
    "data.test_subset=100",
    "hebbian.epochs=500",
    "hebbian.batch_size=8",
    "layers.0.channels=4",
]
#: a run that has not ended this long after its signal ignored it
PATIENCE = 60.0


def window(text: str) -> tuple[float, float]:
    low, _, high = text.partition("-")
    return float(low), float(high or low)


def one_run(tree: Path, data: Path, out: Path, delay: float) -> tuple[int | None, float]:
    """Exit code (None: still running ``PATIENCE`` s after SIGINT) and seconds to stop."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEBBKIT_")}
    env.update(PYTHONPATH=f"{tree}{os.pathsep}{tree / 'plugins'}", OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "hebbkit", "run", "recipes/mnist_zero.toml"]
    command += [arg for key in OVERRIDES for arg in ("-s", key)]
    command += ["--out", str(out), "--data-root", str(data), "--offline", "-q"]
    process = subprocess.Popen(
        command,
        cwd=tree,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    running = out.with_name(out.name + ".running")
    while not running.exists() and process.poll() is None:
        time.sleep(0.01)
    time.sleep(delay)
    os.kill(process.pid, signal.SIGINT)
    sent = time.monotonic()
    try:
        code: int | None = process.wait(timeout=PATIENCE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        code = None
    return code, time.monotonic() - sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--window", type=window, default=(0.0, 2.5), help="seconds, e.g. 0-2.5")
    parser.add_argument("--seed", type=int, default=0, help="seed of the signal times")
    parser.add_argument("--data-root", type=Path, default=REPO / "data")
    parser.add_argument("--base", help="a git ref to measure instead of the working tree")
    args = parser.parse_args()
    draws = random.Random(args.seed)
    outcomes: Counter[str] = Counter()
    slowest = 0.0
    with tempfile.TemporaryDirectory() as scratch:
        tree = export(args.base, Path(scratch)) if args.base else REPO
        for index in range(args.runs):
            delay = draws.uniform(*args.window)
            out = Path(scratch) / f"run{index}" / "out"
            code, seconds = one_run(tree, args.data_root.resolve(), out, delay)
            outcome = "did not stop" if code is None else f"exit {code}"
            outcomes[outcome] += 1
            slowest = max(slowest, seconds)
            print(f"[{index + 1}/{args.runs}] SIGINT {delay:.2f} s in: {outcome}, {seconds:.1f} s")
    print(
        f"\ncode: {args.base or 'working tree'}; {args.runs} runs, SIGINT "
        f"{args.window[0]}-{args.window[1]} s after the run folder appeared"
    )
    for outcome, count in sorted(outcomes.items()):
        print(f"  {outcome:14s} {count:4d}")
    print(f"  slowest stop   {slowest:.1f} s")
    print("rerun: python benchmarks/interrupt_race.py " + shlex.join(sys.argv[1:]))
    sys.exit(0 if outcomes == Counter({"exit 130": args.runs}) else 1)


if __name__ == "__main__":
    main()
