"""``--precision``: a machine setting (flag or HEBBKIT_PRECISION, never the recipe), checked
for the device, pinned in torch's TF32 flags and recorded in summary.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from hebbkit.cli.app import app
from hebbkit.cli.study import _command
from hebbkit.config.recipe import load_recipe
from hebbkit.engine import precision as precision_module
from hebbkit.engine.allocator import keep_freed_memory
from hebbkit.engine.network import HebbianNetwork
from hebbkit.engine.precision import (
    BF16_MIN_FAN_IN,
    PRECISIONS,
    bf16_caution,
    compute_dtype,
    cpu_bf16_arithmetic,
    native_bf16,
    pinned_numerics,
    resolve_precision,
    tf32_state,
)
from hebbkit.environment import unknown_variables
from hebbkit.errors import HebbkitError
from hebbkit.plugins import get_registry
from hebbkit.runs.grid import check_finished, load_grid
from hebbkit.runs.options import RayOptions, ray_options
from hebbkit.runs.reuse import HebbianCache, HebbianState
from hebbkit.runs.run import Machine, precision_setting
from tests.conftest import RECIPES, REPO
from tests.grid_helpers import invoke, mnist_data, user_error, write_grid

runner = CliRunner()


def test_flag_then_environment_then_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEBBKIT_PRECISION", raising=False)
    assert precision_setting() == "auto"
    monkeypatch.setenv("HEBBKIT_PRECISION", "BF16")
    assert precision_setting() == "bf16"
    assert precision_setting("fp32") == "fp32"
    assert Machine(device=torch.device("cpu")).precision == "bf16"


@pytest.mark.parametrize(("bf16_cpu", "on_cpu"), [(True, "bf16-auto"), (False, "fp32")])
def test_auto_resolves_for_the_device(
    monkeypatch: pytest.MonkeyPatch, bf16_cpu: bool, on_cpu: str
) -> None:
    """auto: bf16-auto only on a CPU with bfloat16 instructions; GPUs keep strict fp32."""
    monkeypatch.setattr(precision_module, "cpu_bf16_arithmetic", lambda: bf16_cpu)
    monkeypatch.delenv("HEBBKIT_PRECISION", raising=False)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_precision("auto", cpu) == on_cpu
    assert resolve_precision("auto", cuda) == "fp32"
    for given in PRECISIONS:
        assert resolve_precision(given, cpu) == resolve_precision(given, cuda) == given
    assert Machine(device=cpu).precision == on_cpu  # resolved once, where the run's device is
    assert Machine(device=cpu, precision="fp32").precision == "fp32"
    assert cpu_trials().precision == on_cpu  # trials are sent a precision, never auto


def test_cpu_bf16_arithmetic_reads_the_instruction_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    if not hasattr(torch.cpu, "get_capabilities"):
        pytest.skip(f"torch {torch.__version__} cannot list the CPU's instruction sets")
    capabilities = torch.cpu.get_capabilities()
    expected = bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))
    assert cpu_bf16_arithmetic() is expected
    for found, answer in (
        ({"avx512_bf16": False, "amx_bf16": True}, True),
        ({"avx512_bf16": True}, True),
        ({"avx2": True, "avx512_f": True}, False),  # AVX512 alone emulates bfloat16
    ):
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda found=found: found)
        assert cpu_bf16_arithmetic() is answer

    def broken() -> dict[str, bool]:
        raise RuntimeError("cpuinfo failed")

    monkeypatch.setattr(torch.cpu, "get_capabilities", broken)
    assert cpu_bf16_arithmetic() is False
    monkeypatch.delattr(torch.cpu, "get_capabilities")  # an older torch: float32 then
    assert cpu_bf16_arithmetic() is False
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"


def test_unknown_precision_names_its_source(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(
        HebbkitError, match=r"--precision 'fp16'.*auto, fp32, bf16, bf16-auto, tf32"
    ):
        precision_setting("fp16")
    monkeypatch.setenv("HEBBKIT_PRECISION", "half")
    with pytest.raises(HebbkitError, match="HEBBKIT_PRECISION='half' is not a precision"):
        precision_setting()
    assert unknown_variables({"HEBBKIT_PRECISION": "bf16"}) == []  # a known setting


def test_tf32_needs_a_gpu() -> None:
    with pytest.raises(HebbkitError, match="tf32 exists only on CUDA"):
        Machine(device=torch.device("cpu"), precision="tf32")
    with pytest.raises(HebbkitError, match="tf32 exists only on CUDA"):
        cpu_trials("tf32")


def cpu_trials(precision: str = "auto") -> RayOptions:
    """A local search's options for trials on the CPU, in ``precision``."""
    return ray_options(
        address=None,
        cpus=1,
        gpus=0,
        max_concurrent=None,
        device=None,
        data_root=Path("data"),
        offline=True,
        precision=precision,
    )


def test_compute_dtypes() -> None:
    for fan_in in (1, BF16_MIN_FAN_IN - 1, BF16_MIN_FAN_IN, 10_000):
        assert compute_dtype("bf16", fan_in) == torch.bfloat16
        assert compute_dtype("fp32", fan_in) == compute_dtype("tf32", fan_in) == torch.float32
    assert compute_dtype("bf16-auto", BF16_MIN_FAN_IN - 1) == torch.float32
    assert compute_dtype("bf16-auto", BF16_MIN_FAN_IN) == torch.bfloat16


@pytest.mark.parametrize(
    ("precision", "expected"),
    [
        ("fp32", ["float32"] * 3),
        ("bf16", ["bfloat16"] * 3),
        # fan-ins 25, 864, 3456: layer 1 stays float32
        ("bf16-auto", ["float32", "bfloat16", "bfloat16"]),
    ],
)
def test_each_layer_takes_its_precision(precision: str, expected: list[str]) -> None:
    registry = get_registry()
    recipe = load_recipe(RECIPES / "mnist_softhebb.toml", [], registry)
    network = HebbianNetwork.from_recipe(recipe, 1, registry)
    assert [layer.fan_in for layer in network.layers] == [25, 864, 3456]
    assert network.set_precision(precision) == expected
    assert [str(layer.compute_dtype) for layer in network.layers] == [
        f"torch.{name}" for name in expected
    ]


def test_bf16_auto_leaves_narrow_layers_bitwise_fp32() -> None:
    """A network whose layers are all below the fan-in threshold computes exactly as fp32."""
    registry = get_registry()
    recipe = load_recipe(RECIPES / "mnist_zero.toml", [], registry)
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    outputs = []
    for precision in ("fp32", "bf16-auto", "bf16"):
        network = HebbianNetwork.from_recipe(recipe, 1, registry).eval()
        network.set_precision(precision)
        with torch.no_grad():
            outputs.append(network(x))
    assert torch.equal(outputs[0], outputs[1])
    assert not torch.equal(outputs[0], outputs[2])  # the control: bf16 does change them


@pytest.mark.parametrize(
    ("precision", "flag"), [("fp32", "ieee"), ("bf16", "ieee"), ("tf32", "tf32")]
)
def test_tf32_flags_are_pinned_and_restored(precision: str, flag: str) -> None:
    before = tf32_state()
    with pinned_numerics(precision):
        assert tf32_state() == {"cudnn_conv": flag, "cuda_matmul": flag}
    assert tf32_state() == before


def test_cli_refuses_tf32_on_the_cpu(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["run", str(RECIPES / "mnist_zero.toml"), "--precision", "tf32", "--device", "cpu"]
    result = runner.invoke(app, [*args, "--out", str(out), "--offline", "-q"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "tf32 exists only on CUDA" in result.stderr
    assert not out.exists()


def test_grid_reproduction_command_keeps_the_precision() -> None:
    command = _command(Path("g.toml"), Path("out"), "0-3", None, None, None, None, "bf16")
    assert command[-2:] == ["--precision", "bf16"]
    assert "--precision" not in _command(Path("g.toml"), Path("out"), None, None, None, None, None)


@pytest.mark.integration
@pytest.mark.parametrize(("precision", "dtype"), [("bf16", "bfloat16"), ("bf16-auto", "float32")])
def test_bf16_run_records_its_precision(tmp_path: Path, precision: str, dtype: str) -> None:
    out = tmp_path / "run"
    args = ["run", str(RECIPES / "mnist_zero.toml"), "--precision", precision, "--out", str(out)]
    overrides = ["data.train_subset=256", "data.test_subset=128", "readout.epochs=1"]
    for override in overrides:
        args += ["-s", override]
    result = runner.invoke(app, [*args, "--data-root", str(REPO / "data"), "--offline", "-q"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["precision"] == precision
    assert [layer["product_dtype"] for layer in summary["hebbian_layers"]] == [dtype]
    assert "precision" in result.stdout and precision in result.stdout
    assert "precision" not in (out / "recipe.toml").read_text()  # a machine setting
    assert summary["test_accuracy"] > 0.3  # chance is 0.1
    assert summary["hardware"]["native_bf16"] == native_bf16(torch.device("cpu"))
    assert summary["hardware"]["keeps_freed_memory"] == keep_freed_memory()
    # the warning, exactly where bfloat16 is emulated and some layer uses it
    warned = "no bfloat16 arithmetic" in " ".join(result.output.split())
    assert warned == (dtype == "bfloat16" and not native_bf16(torch.device("cpu")))


def test_bf16_caution_names_the_emulated_layers(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    monkeypatch.setattr(precision_module, "native_bf16", lambda device: False)
    caution = bf16_caution(["float32", "bfloat16", "bfloat16"], cpu)
    assert caution is not None and "layer(s) 2, 3" in caution and "--precision fp32" in caution
    assert bf16_caution(["float32", "float32"], cpu) is None
    monkeypatch.setattr(precision_module, "native_bf16", lambda device: True)
    assert bf16_caution(["bfloat16"], cpu) is None


def test_native_bf16_answers_for_every_device() -> None:
    assert precision_module.native_bf16(torch.device("cuda")) is True  # asked of the CPU only
    assert isinstance(precision_module.native_bf16(torch.device("cpu")), bool)


def test_grid_refuses_tf32_on_the_cpu_before_any_run(tmp_path: Path) -> None:
    out = tmp_path / "grid"
    args = ["grid", str(RECIPES / "study" / "table5.toml"), "--only", "2-layer", "--seeds", "0"]
    result = runner.invoke(app, [*args, "--precision", "tf32", "--out", str(out), "--offline"])
    assert result.exit_code == 2, result.output
    assert "tf32 exists only on CUDA" in result.stderr and "Traceback" not in result.output
    assert not (out / "2-layer").exists()


# --- a precision's Hebbian phases are its own ------------------------------------------------


def test_hebbian_cache_keeps_entries_per_precision(tmp_path: Path) -> None:
    state = HebbianState(hebbian_hash="abc", network={"w": torch.ones(2)})
    HebbianCache(tmp_path, "bf16").store(state, learnt_by=tmp_path / "run")
    assert HebbianCache(tmp_path).load("abc") is None  # fp32 never sees a bf16 phase
    loaded = HebbianCache(tmp_path, "bf16").load("abc")
    assert loaded is not None and torch.equal(loaded.network["w"], torch.ones(2))
    assert HebbianCache(tmp_path).path("abc").name == "abc.pt"  # fp32 entries as before


def test_grid_refuses_finished_runs_of_another_precision(tmp_path: Path) -> None:
    """Resuming a grid's folder with another --precision would mix precisions in one mean."""
    grid = write_grid(tmp_path, GRID)
    out = tmp_path / "out"
    finished = out / "0.001" / "seed0"
    finished.mkdir(parents=True)
    (finished / "summary.json").write_text(json.dumps({"test_accuracy": 0.5}))  # fp32: no key
    args = ["grid", grid, "--out", out, "--only", "0.001", "--offline", "-q"]
    output = user_error(*args, "--precision", "bf16")
    assert "made with --precision fp32" in output and "runs with --precision bf16" in output
    assert not (out / "0.003").exists()  # refused before any run
    dry = invoke("grid", grid, "--out", out, "--precision", "bf16", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "changed" in dry.stdout
    plan = load_grid(grid, get_registry(), only=["0.001"])
    check_finished(out, plan.runs[0], get_registry(), "fp32")  # no recipe.toml: trusted


@pytest.mark.integration
def test_grid_on_auto_continues_in_its_runs_precision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On auto a grid continues its folder in the precision its finished runs used, also on
    a machine that would start a new grid in another one; a new grid takes the machine's."""
    monkeypatch.setattr(precision_module, "cpu_bf16_arithmetic", lambda: True)
    monkeypatch.delenv("HEBBKIT_PRECISION", raising=False)
    data = mnist_data()
    grid = write_grid(tmp_path, HEBBIAN_GRID)  # no phase to share between its runs
    out = tmp_path / "out"
    finished = out / "0.08" / "seed0"
    finished.mkdir(parents=True)
    (finished / "summary.json").write_text(json.dumps({"test_accuracy": 0.5}))  # fp32: no key
    dry = invoke("grid", grid, "--out", out, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "1 finished, 1 to run" in " ".join(dry.stdout.split())
    result = invoke("grid", grid, "--out", out, "--data-root", data, "--offline", "-q")
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "0.04" / "seed0" / "summary.json").read_text())
    assert summary["precision"] == "fp32"
    command = json.loads((out / "grid.json").read_text())["command"]
    assert command[command.index("--precision") + 1] == "fp32"  # reruns the same elsewhere
    fresh = tmp_path / "fresh"
    dry = invoke("grid", grid, "--out", fresh, "--only", "0.08", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "bf16-auto" in dry.stdout  # auto as this (patched) machine resolves it
    assert "1 to run" in " ".join(dry.stdout.split())


def one_key_grid(name: str, key: str, values: str) -> str:
    """A grid file over ``base.toml`` with one seed and one key's values."""
    return f'name = "{name}"\nbase = "base.toml"\nseeds = [0]\n\n[grid]\n"{key}" = {values}\n'


GRID = one_key_grid("readout-lr", "readout.lr", "[0.001, 0.003]")
HEBBIAN_GRID = one_key_grid("hebbian-lr", "layers.0.plasticity.lr", "[0.08, 0.04]")
