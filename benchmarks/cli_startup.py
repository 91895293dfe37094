"""How long ``hebbkit --help`` (or any other light command) takes, and whether it imports torch.

Each repetition is a fresh ``python -m hebbkit ARGS`` process (plugins loaded from the
installed entry points, as the ``hebbkit`` script does). Prints a markdown table of the
median, minimum and maximum wall time and CPU time (user + system of the child), and, from
one extra run under ``python -X importtime``, whether torch was imported and the slowest
top-level imports. Prints the command that reruns it. hebbkit's own plugins never import
torch to load; a third-party plugin may (the example plugin does): set
``HEBBKIT_DISABLE_PLUGIN_AUTOLOAD=1`` to time hebbkit alone.

    python benchmarks/cli_startup.py [--repeat 7] [ARGS ...]     # default ARGS: --help
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time

#: plugin switches that change what loads (a third-party plugin may import torch itself)
PLUGIN_SWITCHES = ("HEBBKIT_DISABLE_PLUGIN_AUTOLOAD", "HEBBKIT_LOAD_PLUGINS")


def timed(command: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one child process."""
    before = os.times()  # the children's CPU times (0 on Windows, which does not count them)
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return wall, cpu


def top_imports(command: list[str], count: int = 8) -> tuple[bool, list[tuple[str, float]]]:
    """Whether torch is imported, and the slowest imports made directly by the program."""
    result = subprocess.run(
        [command[0], "-X", "importtime", *command[1:]],
        check=True,
        capture_output=True,
        text=True,
    )
    rows = []
    torch_imported = False
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|")
        cumulative, name = cumulative.strip(), name.removeprefix(" ")
        if not cumulative.isdigit():
            continue
        module = name.strip()
        torch_imported = torch_imported or module == "torch"
        if not name.startswith(" "):  # imported at top level, not by another module
            rows.append((module, int(cumulative) / 1e6))
    rows.sort(key=lambda row: -row[1])
    return torch_imported, rows[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="fresh processes to time")
    parser.add_argument("args", nargs="*", default=["--help"], help="hebbkit's arguments")
    args = parser.parse_args()
    command = [sys.executable, "-m", "hebbkit", *args.args]
    timed(command)  # warm the file cache once, not counted
    walls, cpus = zip(*(timed(command) for _ in range(args.repeat)), strict=True)
    torch_imported, imports = top_imports(command)
    shown = shlex.join(["hebbkit", *args.args])
    print(f"`{shown}`, {args.repeat} fresh processes ({os.cpu_count()} CPUs):\n")
    print("| measure | median | min | max |\n| --- | ---: | ---: | ---: |")
    for name, values in (("wall time (s)", walls), ("CPU time, user + system (s)", cpus)):
        print(
            f"| {name} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} |"
        )
    print(f"\ntorch imported: {'yes' if torch_imported else 'no'}")
    print("slowest top-level imports (cumulative s): ", end="")
    print(", ".join(f"{name} {seconds:.2f}" for name, seconds in imports))
    switches = [f"{k}={os.environ[k]}" for k in PLUGIN_SWITCHES if k in os.environ]
    rerun = shlex.join(["python", "benchmarks/cli_startup.py", "--repeat", str(args.repeat)])
    print(f"\nRerun: {' '.join([*switches, rerun, shlex.join(args.args)])}")


if __name__ == "__main__":
    main()
