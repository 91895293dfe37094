"""This machine's limits, measured: GEMM GFLOP/s per dtype and memory bandwidth (GB/s).

Imported by the benchmarks beside it (``python benchmarks/X.py`` puts this folder on the
path); run alone it prints them:

    python benchmarks/machine_limits.py [--threads N] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import torch

from hebbkit.engine.precision import native_bf16

GIGA = 1e9
#: Side of the square bf16 product where the CPU emulates bfloat16: the large one takes minutes.
EMULATED_SIZE = 512


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_seconds(function: Callable[[], object], device: torch.device, repeats: int = 5) -> float:
    """The fastest of ``repeats`` calls after one warm-up (the least disturbed by load)."""
    function()
    synchronize(device)
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        synchronize(device)
        best = min(best, time.perf_counter() - started)
    return best


def machine_limits(device: torch.device) -> dict[str, float]:
    """``gemm_fp32`` and ``gemm_bf16`` (GFLOP/s of a square matrix product) and
    ``bandwidth`` (GB/s of a 256 MiB copy, bytes read + written); ``bf16_emulated`` is 1 where
    the CPU has no bfloat16 arithmetic (then the bf16 product is a small one)."""
    size = 4096 if device.type == "cuda" else 2048
    emulated = not native_bf16(device)
    limits = {"bf16_emulated": float(emulated)}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        if dtype == torch.bfloat16 and emulated:
            size = EMULATED_SIZE
        a = torch.randn(size, size, device=device).to(dtype)
        b = torch.randn(size, size, device=device).to(dtype)
        seconds = best_seconds(lambda a=a, b=b: a @ b, device)
        limits[f"gemm_{name}"] = 2 * size**3 / seconds / GIGA
    elements = 64 * 1024**2  # 256 MiB of float32: far beyond any cache
    source = torch.ones(elements, device=device)
    target = torch.empty_like(source)
    limits["bandwidth"] = 2 * 4 * elements / best_seconds(lambda: target.copy_(source), device)
    limits["bandwidth"] /= GIGA
    return limits


def best_of(first: dict[str, float], second: dict[str, float]) -> dict[str, float]:
    return {key: max(first[key], second[key]) for key in first}


def describe(limits: dict[str, float]) -> str:
    emulated = " (emulated: this CPU has no bfloat16 arithmetic)" if limits["bf16_emulated"] else ""
    return (
        f"fp32 GEMM {limits['gemm_fp32']:.0f} GFLOP/s, bf16 GEMM {limits['gemm_bf16']:.3g} "
        f"GFLOP/s{emulated}, copy {limits['bandwidth']:.1f} GB/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"{torch.get_num_threads()} threads: {describe(machine_limits(torch.device(args.device)))}"
    )


if __name__ == "__main__":
    main()
