"""Meta-tests that keep the plugin contract honest (datasette style): every hook specification
has a test named ``test_hook_<name>`` and a ``### <name>`` section in CONTRIBUTING.md."""

from __future__ import annotations

import re

import pytest

from hebbkit.plugins import FAMILY_HOOKS, hook_names
from tests.plugin_helpers import REPO

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
