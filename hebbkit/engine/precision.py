"""Numerics of the Hebbian phase: which dtype its matrix products use, and torch's TF32 flags.

``fp32`` computes everything in IEEE float32, also on a GPU: TF32 is switched off for cuDNN
convolutions and cuBLAS matmuls, which torch otherwise allows for convolutions.
``bf16`` computes the two products of a Hebbian step (``u = W·x`` and ``Σ y·x``) and the
frozen network's convolutions with bfloat16 inputs (fp32 accumulation inside the kernels);
weights, norms, the adaptive rate, the competition and the update stay float32.
``bf16-auto`` does the same only in layers with at least :data:`BF16_MIN_FAN_IN` inputs per
neuron and keeps smaller layers in float32: there the conversions and bfloat16's slower
elementwise work cost more than the GEMM saves (``benchmarks/hebbian_step.py``); which layers
depends on the recipe only. ``tf32`` (CUDA only) lets cuDNN and cuBLAS round fp32 inputs to
TF32. The read-out always runs in float32.

``auto`` (the default setting) is not a precision of its own: :func:`resolve_precision` turns
it into ``bf16-auto`` on a CPU with bfloat16 dot-product instructions (AVX512-BF16 or AMX) and
into ``fp32`` anywhere else, GPUs included (strict float32 there until bfloat16 is measured on
one). Over four seeds of the 3-layer preset bf16-auto's accuracy is within one std of fp32's
and it runs about 1.8x faster on such a CPU (docs/results/precision); a run records the
precision it resolved to, and ``--precision fp32`` computes in float32 on any machine.

bfloat16 only pays on hardware with bfloat16 arithmetic (CPUs with AVX512-BF16 or AMX, GPUs):
on a CPU without it (AVX2 only) torch emulates it, several times slower than float32, so a run
says so when it starts (:func:`bf16_caution`) rather than silently taking longer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal, get_args

import torch

Precision = Literal["fp32", "bf16", "bf16-auto", "tf32"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
#: what ``--precision`` accepts: a precision, or ``auto`` for the device's (resolve_precision)
PRECISION_SETTINGS: tuple[str, ...] = ("auto", *PRECISIONS)

#: the smallest fan-in (c_in · k²) that ``bf16-auto`` computes in bfloat16. bf16 / fp32 speed of
#: one learning step at batch 32 on a 2-core AVX512-BF16 CPU (benchmarks/hebbian_step.py with
#: --recipe benchmarks/fanin_sweep.toml, recipes/mnist_zero.toml, recipes/mnist_softhebb.toml):
#: 128×1×3×3 0.47, 16×8×3×3 0.64, 32×16×3×3 0.77, 64×32×3×3 1.02, 96×1×5×5 1.14,
#: 384×96×3×3 1.78, 1536×384×3×3 2.50. Below a few hundred inputs the gain is small or a loss,
#: so narrow layers keep exact float32.
BF16_MIN_FAN_IN = 512


def compute_dtype(precision: str, fan_in: int) -> torch.dtype:
    """The dtype of the matrix products of a layer with ``fan_in`` inputs per neuron."""
    if precision == "bf16" or (precision == "bf16-auto" and fan_in >= BF16_MIN_FAN_IN):
        return torch.bfloat16
    return torch.float32


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 products in hardware (True where unknown)."""
    if device.type != "cpu":
        return True
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch without the query: assume nothing
        return True


def cpu_bf16_arithmetic() -> bool:
    """Whether this CPU has bfloat16 dot-product instructions (AVX512-BF16 or AMX-BF16).

    False where torch cannot say (no ``torch.cpu.get_capabilities`` in older torch): unlike
    :func:`native_bf16`, which oneDNN answers True on any AVX512 CPU, this asks for the
    instructions that make bfloat16 GEMMs faster than float32 ones."""
    capabilities = getattr(torch.cpu, "get_capabilities", None)
    if capabilities is None:
        return False
    try:
        found = capabilities()
    except RuntimeError:
        return False
    return bool(found.get("avx512_bf16") or found.get("amx_bf16"))


def resolve_precision(setting: str, device: torch.device) -> str:
    """The precision a run on ``device`` computes in: ``auto`` resolved (see the module's
    docstring), any other setting as given."""
    if setting != "auto":
        return setting
    if device.type == "cpu" and cpu_bf16_arithmetic():
        return "bf16-auto"
    return "fp32"


def bf16_caution(product_dtypes: list[str], device: torch.device) -> str | None:
    """A warning when some layer computes in bfloat16 on a CPU without bfloat16 arithmetic."""
    slow = [i + 1 for i, dtype in enumerate(product_dtypes) if dtype == "bfloat16"]
    if not slow or native_bf16(device):
        return None
    layers = ", ".join(map(str, slow))
    return (
        f"Warning: layer(s) {layers} compute in bfloat16, but this CPU has no bfloat16 "
        "arithmetic (no AVX512-BF16 or AMX), so torch emulates it: such products run several "
        "times slower than float32 here (benchmarks/hebbian_step.py measures it). Use "
        "--precision fp32 on this machine."
    )


def precision_problem(precision: str, device: torch.device) -> str | None:
    """Why ``precision`` cannot run on ``device``, or None."""
    if precision not in PRECISIONS:
        return f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}"
    if precision == "tf32" and device.type != "cuda":
        return "tf32 exists only on CUDA GPUs; on a CPU use fp32, bf16 or bf16-auto"
    return None


def _has_precision_api() -> bool:
    """torch ≥ 2.9 sets TF32 per backend and operator (``fp32_precision``)."""
    conv = getattr(torch.backends.cudnn, "conv", None)
    return hasattr(conv, "fp32_precision") and hasattr(torch.backends.cuda.matmul, "fp32_precision")


@contextmanager
def pinned_numerics(precision: str) -> Iterator[None]:
    """TF32 for cuDNN convolutions and cuBLAS matmuls on (``tf32``) or off (otherwise) for the
    duration, restored afterwards. Without a GPU the flags change nothing."""
    allow = precision == "tf32"
    if _has_precision_api():
        # only the new API: reading the legacy allow_tf32 flags after setting these raises
        conv, matmul = torch.backends.cudnn.conv, torch.backends.cuda.matmul
        saved = (conv.fp32_precision, matmul.fp32_precision)
        conv.fp32_precision = matmul.fp32_precision = "tf32" if allow else "ieee"
        try:
            yield
        finally:
            conv.fp32_precision, matmul.fp32_precision = saved
        return
    legacy = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = allow
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = legacy


def tf32_state() -> dict[str, str]:
    """The TF32 flags in force, for a run's summary."""
    if _has_precision_api():
        return {
            "cudnn_conv": torch.backends.cudnn.conv.fp32_precision,
            "cuda_matmul": torch.backends.cuda.matmul.fp32_precision,
        }
    return {
        "cudnn_conv": "tf32" if torch.backends.cudnn.allow_tf32 else "ieee",
        "cuda_matmul": "tf32" if torch.backends.cuda.matmul.allow_tf32 else "ieee",
    }
