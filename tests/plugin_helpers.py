"""Helpers for the plugin tests: fake installed distributions, isolated environments, plugins.

A "distribution" here is what pip leaves in site-packages: modules plus a ``*.dist-info`` folder
with ``METADATA`` and ``entry_points.txt``. Put its folder on ``sys.path`` (or ``PYTHONPATH``)
and ``importlib.metadata`` finds its entry points exactly as it finds a pip-installed one's.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import sysconfig
import textwrap
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: The MNIST files the repository ships (data/MNIST/raw/*.gz).
DATA_ROOT = REPO / "data"
#: Environment switches that change which plugins load.
PLUGIN_ENV = ("HEBBKIT_LOAD_PLUGINS", "HEBBKIT_DISABLE_PLUGIN_AUTOLOAD", "HEBBKIT_TRACE_PLUGINS")

_counter = itertools.count()


def unique(prefix: str) -> str:
    """A module name no other test uses, so ``sys.modules`` never hands back a stale one."""
    return f"{prefix}_{os.getpid()}_{next(_counter)}"


def write_dist(
    root: Path,
    distribution: str,
    entry_points: dict[str, str],
    modules: dict[str, str],
    version: str = "1.2.3",
) -> Path:
    """Write ``modules`` (name -> source) and a dist-info declaring ``entry_points`` into
    ``root``, as ``pip install`` would; returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items():
        (root / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = root / f"{distribution.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n", encoding="utf-8"
    )
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[hebbkit]\n{lines}", encoding="utf-8")
    (info / "top_level.txt").write_text("".join(f"{m}\n" for m in modules), encoding="utf-8")
    return root


#: A plugin module registering one working initializer; format with ``{name}``.
GOOD_PLUGIN = """
    import torch

    from hebbkit.hookspecs import hookimpl
    from hebbkit.registry import Params


    class OnesParams(Params):
        value: float = 1.0


    def ones(params):
        def init(shape, generator):
            return torch.full(shape, params.value)

        return init


    @hookimpl
    def register_initializers(register):
        register("{name}", ones, params=OnesParams, description="constant weights")
"""


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without the plugin switches, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if key not in PLUGIN_ENV}
    env.pop("PYTHONPATH", None)
    env.update(extra)
    return env


def hebbkit_command(python: str | Path = sys.executable) -> list[str]:
    return [str(python), "-m", "hebbkit"]


def run(
    command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, timeout=300, env=env, cwd=cwd, check=False
    )


def isolated_venv(folder: Path) -> Path:
    """A fresh virtual environment at ``folder`` that sees this environment's packages.

    ``python -m venv --system-site-packages`` would see the *base* interpreter's packages, not
    those of the venv running the tests (torch, hebbkit), so instead a ``.pth`` file in the new
    venv adds this environment's site-packages (running its ``.pth`` files too, which is how the
    editable hebbkit is found). What pip installs into the new venv stays there. Returns its
    python.
    """
    venv.EnvBuilder(with_pip=False).create(folder)
    python = folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    child_site = run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
    ).stdout.strip()
    parent_site = sysconfig.get_paths()["purelib"]
    (Path(child_site) / "_hebbkit_parent_env.pth").write_text(
        f"import site; site.addsitedir({parent_site!r})\n", encoding="utf-8"
    )
    return python


def pip_install(python: Path, *folders: Path) -> subprocess.CompletedProcess[str]:
    """``pip install`` into ``python``'s environment, offline: setuptools and the
    dependencies come from this environment instead of PyPI."""
    return run(
        [str(python), "-m", "pip", "install", "--no-build-isolation", "--no-index", "-q"]
        + [str(folder) for folder in folders],
        env=clean_env(PIP_DISABLE_PIP_VERSION_CHECK="1"),
    )
