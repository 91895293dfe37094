"""Meta-tests that keep the plugin contract honest (datasette style): every hook specification
has a test named ``test_hook_<name>`` and a ``### <name>`` section in CONTRIBUTING.md."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import numpy as np
import pytest

from hebbkit.contract import check_component, check_dataset
from hebbkit.plugins import FAMILY_HOOKS, build_registry, hook_names, make_plugin_manager
from tests.plugin_helpers import REPO, unique

HOOKS = hook_names()
CONTRIBUTING = REPO / "CONTRIBUTING.md"


def _sections() -> dict[str, str]:
    """``### heading`` -> text up to the next heading of level 2 or 3."""
    text = CONTRIBUTING.read_text(encoding="utf-8")
    parts = re.split(r"^(#{2,3}) (.+)$", text, flags=re.MULTILINE)
    return {parts[i + 1].strip(): parts[i + 2] for i in range(1, len(parts) - 2, 3)}


def test_hooks_are_found() -> None:
    assert set(FAMILY_HOOKS.values()) | {"register_commands"} == set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_plugin_hook_has_a_test(hook: str) -> None:
    tests = "\n".join(path.read_text(encoding="utf-8") for path in (REPO / "tests").glob("*.py"))
    assert re.search(rf"^def test_hook_{hook}\(", tests, flags=re.MULTILINE), (
        f"no test_hook_{hook} in tests/"
    )


@pytest.mark.parametrize("hook", HOOKS)
def test_plugin_hook_is_documented(hook: str) -> None:
    sections = _sections()
    assert hook in sections, f"CONTRIBUTING.md has no '### {hook}' section"
    argument = "cli" if hook == "register_commands" else "register"
    assert f"def {hook}({argument})" in sections[hook], f"'### {hook}' shows no signature"


def test_no_section_for_a_hook_that_does_not_exist() -> None:
    documented = {name for name in _sections() if re.fullmatch(r"register_\w+", name)}
    assert documented <= set(HOOKS), f"documented but not hooks: {documented - set(HOOKS)}"


def test_packaged_dataset_example_meets_the_contract(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The digits example of CONTRIBUTING.md's dataset section, with a digits.npz beside it."""
    text = CONTRIBUTING.read_text(encoding="utf-8")
    heading = "**`hebbkit-digits/src/hebbkit_digits/__init__.py`**"
    code = text.split(heading)[1].split("```python\n")[1].split("\n```")[0]
    package = tmp_path / unique("hebbkit_digits")
    package.mkdir()
    (package / "__init__.py").write_text(code, encoding="utf-8")
    generator = np.random.default_rng(0)
    np.savez(
        package / "digits.npz",
        images=generator.integers(0, 256, (1200, 8, 8), dtype=np.uint8),
        labels=np.arange(1200) % 10,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(package.name)
    registry = build_registry(make_plugin_manager(plugins=[module], load_entrypoints=False))
    digits = registry.get("dataset", "digits")
    check_component(digits)
    check_dataset(digits, sizes=(1000, 200))  # packaged: every check runs without a root
    source = digits.build(digits.params(train_size=1100))
    assert len(source.load(tmp_path / "ignored", train=False, download=False)) == 100
