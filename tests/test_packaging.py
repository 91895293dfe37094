"""Packaging: the wheel carries the recipes and runs one by name in a fresh environment outside
the checkout; every declared dependency is used; the licence; install.sh's Python check; a
run on a platform without the POSIX-only modules (Windows); a run's overrides in its title."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import sys
import sysconfig
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hebbkit.cli.app import app
from tests.conftest import REPO, TINY_RECIPE
from tests.data_files import write_mnist
from tests.plugin_helpers import DATA_ROOT, clean_env, run

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
#: Import name of each dependency whose distribution name differs from it.
IMPORT_NAMES = {"tomli-w": "tomli_w"}
#: What the copy of the repository to build from leaves out (large, or built here).
#: pip offline and quiet: everything it needs is already on this machine.
PIP = [sys.executable, "-m", "pip", "--no-input"]
OFFLINE = ["--no-index", "-q"]
NOT_BUILT_FROM = {".git", ".venv", "data", "runs", "build", "dist", "report", ".device"}


def test_every_declared_dependency_is_imported() -> None:
    """Nothing is declared that no module imports (pyarrow was: Ray brings its own)."""
    sources = "\n".join(
        path.read_text(encoding="utf-8")
        for folder in (REPO / "hebbkit", REPO / "plugins")
        for path in folder.rglob("*.py")
        if "hebbkit-sparse-binary" not in path.parts
    )
    for requirement in PYPROJECT["project"]["dependencies"]:
        name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]
        module = IMPORT_NAMES.get(name, name.replace("-", "_"))
        assert re.search(rf"^\s*(import|from) {module}\b", sources, re.M), (
            f"{name} is declared in pyproject.toml but no hebbkit module imports {module}"
        )
    assert not any(r.startswith("pyarrow") for r in PYPROJECT["project"]["dependencies"])


def test_mit_licence_is_in_the_repository_and_declared() -> None:
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text
    assert PYPROJECT["project"]["license"] == "MIT"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]


def test_install_sh_refuses_an_old_python(tmp_path: Path) -> None:
    """Checked before anything is created: no .venv, one line naming both versions."""
    shutil.copy(REPO / "install.sh", tmp_path / "install.sh")
    old = tmp_path / "python3.9"
    old.write_text(
        textwrap.dedent(
            """\
            #!/bin/sh
            case "$*" in
              *print*) echo 3.9 ;;
              *) exit 1 ;;
            esac
            """
        )
    )
    old.chmod(old.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PYTHON": str(old)}
    result = run(["bash", str(tmp_path / "install.sh")], env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "needs Python >= 3.10" in result.stderr and "is Python 3.9" in result.stderr
    assert "PYTHON=" in result.stderr
    assert not (tmp_path / ".venv").exists()
    missing = run(["bash", str(tmp_path / "install.sh")], env={**env, "PYTHON": "nopython"})
    assert missing.returncode == 1 and "no 'nopython' found" in missing.stderr


def tiny_data_and_recipe(tmp_path: Path) -> tuple[Path, Path]:
    """Six MNIST-format images in ``tmp_path/data`` and a one-layer recipe."""
    import tomli_w

    data = tmp_path / "data"
    write_mnist(data, n=12)
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(tomli_w.dumps({**TINY_RECIPE, "description": "one layer on MNIST"}))
    return data, recipe


def test_a_run_names_its_overrides_in_title_and_recipe(tmp_path: Path) -> None:
    data, recipe = tiny_data_and_recipe(tmp_path)
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        [
            "run",
            str(recipe),
            "-s",
            "layers.0.channels=2",
            "--data-root",
            str(data),
            "--offline",
            "--out",
            str(out),
            "-q",
        ],
        terminal_width=200,
    )
    assert result.exit_code == 0, result.output
    assert "tiny (seed 0) with -s layers.0.channels=2" in " ".join(result.stdout.split())
    saved = tomllib.loads((out / "recipe.toml").read_text())
    assert saved["description"] == "one layer on MNIST (with -s layers.0.channels=2)"
    assert saved["layers"][0]["channels"] == 2


def test_runs_where_posix_only_modules_are_missing(tmp_path: Path) -> None:
    """As on Windows: no resource, fcntl, pwd, grp or termios; a whole run still works."""
    data, recipe = tiny_data_and_recipe(tmp_path)
    out = tmp_path / "run"
    code = textwrap.dedent(
        f"""\
        import sys
        for name in ("resource", "fcntl", "pwd", "grp", "termios"):
            sys.modules[name] = None  # `import resource` now raises ImportError
        from hebbkit.cli.app import main
        sys.argv = ["hebbkit", "run", {str(recipe)!r}, "--data-root", {str(data)!r},
                    "--offline", "--out", {str(out)!r}, "-q"]
        main()
        """
    )
    result = run([sys.executable, "-c", code], env=clean_env(HEBBKIT_DISABLE_PLUGIN_AUTOLOAD="1"))
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["peak_rss_bytes"] == 0  # not measured without `resource`
    assert 0.0 <= summary["test_accuracy"] <= 1.0


# --- the wheel, installed where the checkout is out of sight --------------------------------


def build_wheel(folder: Path) -> Path:
    """A wheel built from a copy of the repository (so nothing is written into the checkout)."""
    source = folder / "source"
    shutil.copytree(
        REPO,
        source,
        symlinks=True,
        ignore=lambda directory, names: [
            n
            for n in names
            if (Path(directory) == REPO and n in NOT_BUILT_FROM)
            or n in {"__pycache__", ".pytest_cache", ".ruff_cache", ".import_linter_cache"}
            or n.endswith(".egg-info")
        ],
    )
    wheels = folder / "wheels"
    built = run(
        [
            *PIP,
            "wheel",
            *OFFLINE,
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheels),
            str(source),
        ],
        env=clean_env(PIP_DISABLE_PIP_VERSION_CHECK="1"),
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = wheels.glob("hebbkit-*.whl")
    return wheel


def dependencies_only(folder: Path) -> Path:
    """This environment's site-packages without hebbkit, its plugins and pyarrow: links to
    everything else (torch and the other dependencies, reused without a download)."""
    site = Path(sysconfig.get_paths()["purelib"])
    folder.mkdir()
    left_out = re.compile(r"^(_?_?editable__.*hebbkit.*|hebbkit.*|pyarrow.*|.*\.pth)$", re.I)
    for entry in site.iterdir():
        if not left_out.match(entry.name):
            (folder / entry.name).symlink_to(entry)
    return folder


@pytest.mark.integration
def test_the_wheel_runs_a_packaged_recipe_by_name_outside_the_checkout(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert "hebbkit/recipes/mnist_zero.toml" in names
    assert "hebbkit/recipes/study/table1.toml" in names
    assert "hebbkit/runs/run.py" in names and "hebbkit_softhebb/params.py" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)

    env_dir = tmp_path / "env"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    child_site = run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
    )
    linked = dependencies_only(tmp_path / "dependencies")
    (Path(child_site.stdout.strip()) / "_dependencies.pth").write_text(f"{linked}\n")
    installed = run(
        [
            *PIP,
            "--python",
            str(python),
            "install",
            *OFFLINE,
            "--find-links",
            str(wheel.parent),
            "hebbkit",
        ],
        env=clean_env(PIP_DISABLE_PIP_VERSION_CHECK="1"),
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr

    work = tmp_path / "elsewhere"  # no recipes/ here: the name must find the packaged file
    work.mkdir()
    env = clean_env(HEBBKIT_OFFLINE="1")
    hebbkit = [str(env_dir / "bin" / "hebbkit")]
    where = run(
        [str(python), "-c", "import hebbkit, pyarrow"], env=env, cwd=work
    )  # pyarrow is not needed: it is not there
    assert "No module named 'pyarrow'" in where.stderr
    located = run([str(python), "-c", "import hebbkit; print(hebbkit.__file__)"], env=env, cwd=work)
    assert located.stdout.startswith(str(env_dir)), located.stdout + located.stderr
    helped = run(
        [
            str(python),
            "-c",
            "import sys; sys.argv = ['hebbkit', '--help']\n"
            "from hebbkit.cli.app import main\ntry: main()\nexcept SystemExit: pass\n"
            "print('torch imported:', 'torch' in sys.modules)",
        ],
        env=env,
        cwd=work,
    )
    assert helped.stdout.rstrip().endswith("torch imported: False"), helped.stdout + helped.stderr
    listed = run([*hebbkit, "recipes", "--json"], env=env, cwd=work)
    assert listed.returncode == 0, listed.stderr
    assert {"mnist_zero", "study/table1"} <= {r["name"] for r in json.loads(listed.stdout)}

    if not (DATA_ROOT / "MNIST" / "raw").is_dir():
        pytest.skip(f"no MNIST under {DATA_ROOT}: the run step needs it")
    flags = ["--data-root", str(DATA_ROOT), "--out", str(work / "run")]
    ran = run(
        [*hebbkit, "run", "mnist_zero", "-s", "data.train_subset=500", "--quiet", *flags],
        env=env,
        cwd=work,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    summary = json.loads((work / "run" / "summary.json").read_text())
    assert summary["recipe"] == "mnist_zero" and summary["train_images"] == 500
    assert summary["test_images"] == 10_000 and summary["test_accuracy"] > 0.5
    assert summary["versions"]["hebbkit"] == PYPROJECT["project"]["version"]
