"""Done-when of the plugin issue: a new user follows only CONTRIBUTING.md, writes an
initializer package in a temporary folder, pip-installs it into a fresh virtual environment,
sees it in ``hebbkit plugins`` and runs a recipe that names it. Also: the scaffold's packages
install and pass their own tests as generated.

The virtual environment sees this one's packages (torch, the editable hebbkit) through a .pth
file (see ``plugin_helpers.isolated_venv``); whatever pip installs lands only in it, so this
environment never sees the test plugins. pip runs offline (no build isolation, no index).
"""

from __future__ import annotations

import importlib.metadata
import json
import re
from pathlib import Path

import pytest

from hebbkit.scaffold import TEMPLATES, write_plugin
from tests.plugin_helpers import (
    DATA_ROOT,
    REPO,
    clean_env,
    hebbkit_command,
    isolated_venv,
    pip_install,
    run,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return isolated_venv(tmp_path_factory.mktemp("venv") / "env")


def walkthrough_files() -> dict[str, str]:
    """The files the walk-through in CONTRIBUTING.md tells the reader to write."""
    text = (REPO / "CONTRIBUTING.md").read_text(encoding="utf-8")
    start = text.index("## Walk-through")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end != -1 else None]
    files = dict(re.findall(r"^\*\*`([^`]+)`\*\*\n\n```\w*\n(.*?)^```", section, re.M | re.S))
    assert set(files) == {
        "hebbkit-orthogonal/pyproject.toml",
        "hebbkit-orthogonal/src/hebbkit_orthogonal/__init__.py",
        "hebbkit-orthogonal/tests/test_orthogonal.py",
        "orthogonal.toml",
    }, sorted(files)
    return files


def test_new_user_writes_installs_lists_and_runs_an_initializer(
    venv_python: Path, tmp_path: Path
) -> None:
    for relative, text in walkthrough_files().items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    env = clean_env(HEBBKIT_OFFLINE="1")

    installed = pip_install(venv_python, tmp_path / "hebbkit-orthogonal")
    assert installed.returncode == 0, installed.stderr

    tested = run(
        [str(venv_python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "hebbkit-orthogonal"],
        env=env,
        cwd=tmp_path,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "2 passed" in tested.stdout

    listed = run([*hebbkit_command(venv_python), "plugins", "--json"], env=env)
    assert listed.returncode == 0, listed.stderr
    row = next(r for r in json.loads(listed.stdout) if r["name"] == "orthogonal")
    assert row["family"] == "initializer" and row["plugin"] == "orthogonal"
    assert (row["distribution"], row["version"]) == ("hebbkit-orthogonal", "0.1.0")
    assert row["parameters"] == ["radius"]

    # installed into the fresh environment only
    assert "orthogonal" not in {ep.name for ep in importlib.metadata.entry_points(group="hebbkit")}

    if not (DATA_ROOT / "MNIST" / "raw").is_dir():
        pytest.skip(f"no MNIST under {DATA_ROOT}: the run step needs it")
    folder = tmp_path / "run"
    overrides = [
        "data.train_subset=500",
        "data.test_subset=500",
        "readout.epochs=1",
        "layers.0.channels=8",
    ]
    ran = run(
        [*hebbkit_command(venv_python), "run", "orthogonal.toml", "--data-root", str(DATA_ROOT)]
        + ["--out", str(folder), "--quiet", "--offline"]
        + [arg for value in overrides for arg in ("-s", value)],
        env=env,
        cwd=tmp_path,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    summary = json.loads((folder / "summary.json").read_text())
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    saved = (folder / "recipe.toml").read_text()
    assert 'init = { name = "orthogonal", radius = 25.0 }' in saved, saved


def test_scaffolded_plugins_install_and_pass_their_own_tests(
    venv_python: Path, tmp_path: Path
) -> None:
    folders = [write_plugin(f"new-{family}", family, tmp_path / family) for family in TEMPLATES]
    installed = pip_install(venv_python, *folders)
    assert installed.returncode == 0, installed.stderr
    tested = run(
        [str(venv_python), "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        + [str(folder / "tests") for folder in folders],
        env=clean_env(),
        cwd=tmp_path,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert " failed" not in tested.stdout and " passed" in tested.stdout
