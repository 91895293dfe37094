"""``hebbkit plugin new``: write a ready-to-install plugin package for one component family.

The package is what CONTRIBUTING.md describes: a ``pyproject.toml`` declaring the entry point
in the ``hebbkit`` group, a module with one component and its parameter model, a test that runs
hebbkit's component contract on it, and a README. ``pip install DIR`` then ``pytest DIR``
passes as generated.
"""

from __future__ import annotations

import importlib.metadata
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

from hebbkit.errors import HebbkitError

_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
_PARAMS = "from hebbkit.registry import Params"
_STDLIB = {"math", "importlib.metadata", "pathlib"}


def _import_block(lines: list[str]) -> str:
    """Import lines ordered as isort/ruff would in the plugin's package: standard library,
    then third party (hebbkit among them), ``import x`` before ``from x import y``."""

    def key(line: str) -> tuple[bool, str]:
        return (line.startswith("from "), line.split()[1])

    stdlib = sorted((line for line in lines if line.split()[1] in _STDLIB), key=key)
    other = sorted((line for line in lines if line.split()[1] not in _STDLIB), key=key)
    return "\n\n".join("\n".join(block) for block in (stdlib, other) if block)


@dataclass(frozen=True)
class PluginNames:
    """The names a plugin package uses, all derived from the component name."""

    component: str  # the name recipes use, e.g. "my-init"
    distribution: str  # what pip installs, e.g. "hebbkit-my-init"
    package: str  # the import name, e.g. "hebbkit_my_init"

    @classmethod
    def from_name(cls, name: str) -> PluginNames:
        component = re.sub(r"^hebbkit[-_]", "", name.strip().lower())
        if not _NAME.match(component):
            raise HebbkitError(
                f"Plugin name {name!r} is not usable: use lower-case letters and digits, words "
                "joined by '-' or '_', starting with a letter (for example 'orthogonal' or "
                "'sparse-ternary'). The component, distribution (hebbkit-NAME) and package "
                "(hebbkit_NAME) names are derived from it."
            )
        return cls(component, f"hebbkit-{component}", f"hebbkit_{component.replace('-', '_')}")


@dataclass(frozen=True)
class FamilyTemplate:
    """What differs between families: the hook, the recipe key and the component code."""

    hook: str
    recipe_key: str
    summary: str
    module: str  # body of the package's __init__ after the imports
    imports: tuple[str, ...]  # import lines the module needs (sorted when written)
    test: str  # a family-specific behaviour test
    recipe_value: str
    recipe_table: str = "[[layers]]"  # where the component goes in a recipe


_INITIALIZER = FamilyTemplate(
    hook="register_initializers",
    recipe_key="init",
    summary="a weight initializer",
    imports=("import math", "import torch", "from pydantic import Field", _PARAMS),
    module='''
class ${Class}Params(Params):
    """Parameters of ``${component}``; every one needs a default."""

    gain: float = Field(1.0, gt=0, description="scale of the weights")


def ${function}(params: ${Class}Params):
    """Uniform weights in ±gain·√(3/fan_in): unit variance of u for unit-variance inputs."""

    def init(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
        # shape is (c_out, c_in, k, k) for a conv layer, (out, in) for a linear one
        fan_in = math.prod(shape[1:])
        bound = params.gain * math.sqrt(3.0 / fan_in)
        # draw only from `generator`: runs must be reproducible from the recipe's seed
        return (torch.rand(shape, generator=generator) * 2 - 1) * bound

    return init
''',
    test="""
def test_weights_stay_within_the_bound():
    init = ${function}(${Class}Params(gain=2.0))
    weight = init((8, 3, 5, 5), torch.Generator().manual_seed(0))
    assert weight.shape == (8, 3, 5, 5) and weight.dtype == torch.float32
    assert weight.abs().max() <= 2.0 * (3.0 / 75) ** 0.5
""",
    recipe_value='{ name = "${component}", gain = 1.0 }',
)

_PLASTICITY = FamilyTemplate(
    hook="register_plasticity_rules",
    recipe_key="plasticity",
    summary="a plasticity rule",
    imports=(
        "import torch",
        "from pydantic import Field",
        "from hebbkit.plasticity import HebbianBatch, PlasticityParams",
    ),
    module='''
class ${Class}Params(PlasticityParams):
    """Parameters of ``${component}``; PlasticityParams adds lr, lr_power, adaptive, normalize."""

    decay: float = Field(1.0, ge=0, description="weight decay, scaled by each neuron's Σ y·u")


class ${Class}Rule:
    """Δw_k = Σ y_k·x − decay·(Σ y_k·u_k)·w_k (decay = 1 is SoftHebb's rule)."""

    def __init__(self, params: ${Class}Params) -> None:
        self.params = params

    def delta(self, weight: torch.Tensor, batch: HebbianBatch) -> torch.Tensor:
        # weight is (c_out, n); batch.u and batch.y are (N, c_out); return a new (c_out, n)
        # tensor and leave weight alone: the layer applies the learning rate
        decay = self.params.decay * (batch.y * batch.u).sum(0).unsqueeze(1)
        return batch.correlate() - decay * weight


def ${function}(params: ${Class}Params) -> ${Class}Rule:
    return ${Class}Rule(params)
''',
    test="""
def test_zero_decay_is_plain_hebb():
    from hebbkit.plasticity import HebbianBatch

    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(4, 9, generator=generator)
    patches = torch.randn(20, 9, generator=generator)
    y = torch.softmax(patches @ weight.T, dim=1)
    batch = HebbianBatch(patches @ weight.T, y, lambda s: s.T @ patches, lambda: patches)
    delta = ${function}(${Class}Params(decay=0.0)).delta(weight, batch)
    assert torch.allclose(delta, y.T @ patches)
""",
    recipe_value='{ name = "${component}", lr = 0.08, decay = 1.0 }',
)

_COMPETITION = FamilyTemplate(
    hook="register_competitions",
    recipe_key="competition",
    summary="a winner-take-all competition",
    imports=("import torch", "from pydantic import Field", _PARAMS),
    module='''
class ${Class}Params(Params):
    """Parameters of ``${component}``; every one needs a default."""

    t_invert: float = Field(1.0, gt=0, description="inverse temperature of the softmax")
    anti: float = Field(0.0, ge=0, le=1, description="anti-Hebbian weight of the losers")


def ${function}(params: ${Class}Params):
    """Softmax over neurons; the losers' signal is scaled by −anti (0: plain soft WTA)."""

    def compete(u: torch.Tensor) -> torch.Tensor:
        # u is (N, c_out): one row per patch; return y of the same shape
        y = torch.softmax(params.t_invert * u, dim=1)
        winner = torch.zeros_like(y).scatter_(1, u.argmax(dim=1, keepdim=True), 1.0)
        return y * (winner - params.anti * (1 - winner))

    return compete
''',
    test="""
def test_without_anti_hebbian_part_every_signal_is_positive():
    compete = ${function}(${Class}Params())
    y = compete(torch.randn(10, 5, generator=torch.Generator().manual_seed(0)))
    assert torch.all(y >= 0)
""",
    recipe_value='{ name = "${component}", t_invert = 1.0 }',
)

_ACTIVATION = FamilyTemplate(
    hook="register_activations",
    recipe_key="activation",
    summary="an output activation",
    imports=("import torch", "from pydantic import Field", _PARAMS),
    module='''
class ${Class}Params(Params):
    """Parameters of ``${component}``; every one needs a default."""

    slope: float = Field(0.01, ge=0, description="slope for negative inputs")


def ${function}(params: ${Class}Params):
    """Leaky ReLU: u for u > 0, slope·u otherwise."""

    def f(u: torch.Tensor) -> torch.Tensor:
        # u is (B, C, H, W); channels are axis 1; return the same shape
        return torch.where(u > 0, u, params.slope * u)

    return f
''',
    test="""
def test_keeps_positive_values():
    f = ${function}(${Class}Params(slope=0.0))
    u = torch.tensor([-1.0, 0.5]).reshape(1, 2, 1, 1)
    assert f(u).flatten().tolist() == [0.0, 0.5]
""",
    recipe_value='{ name = "${component}", slope = 0.01 }',
)

_POOLING = FamilyTemplate(
    hook="register_poolings",
    recipe_key="pool",
    summary="a spatial pooling",
    imports=("from pydantic import Field", "from torch import nn", _PARAMS),
    module='''
class ${Class}Params(Params):
    """Parameters of ``${component}``; every one needs a default."""

    kernel: int = Field(2, gt=0, description="window size; the stride equals it")
    norm: float = Field(2.0, gt=0, description="p of the Lp norm (large p approaches max)")


def ${function}(params: ${Class}Params) -> nn.Module:
    """Lp pooling over kernel × kernel windows, stride = kernel."""
    return nn.LPPool2d(params.norm, params.kernel)
''',
    test="""
def test_halves_the_spatial_size():
    pool = ${function}(${Class}Params())
    assert pool(torch.ones(1, 3, 8, 8)).shape == (1, 3, 4, 4)
""",
    recipe_value='{ name = "${component}", kernel = 2 }',
)

_DATASET = FamilyTemplate(
    hook="register_datasets",
    recipe_key="dataset",
    summary="a dataset",
    imports=(
        "from pathlib import Path",
        "import torch",
        "from pydantic import Field",
        "from hebbkit.data import ImageSet",
        _PARAMS,
    ),
    module='''
CLASSES = ["horizontal", "vertical", "diagonal", "anti-diagonal"]


class ${Class}Params(Params):
    """Parameters of ``${component}``; every one needs a default. A recipe sets them as
    dataset = { name = "${component}", train_size = 2000 }, or -s data.dataset.train_size=2000."""

    train_size: int = Field(2000, gt=0, description="images in the training split")
    test_size: int = Field(500, gt=0, description="images in the test split")
    size: int = Field(16, ge=4, description="image height and width in pixels")
    noise: float = Field(0.05, ge=0, le=1, description="share of pixels flipped at random")
    seed: int = Field(0, ge=0, description="seed of the data (not of the run)")


class ${Class}Source:
    """One-pixel bars in four orientations at random offsets, made in memory.

    The data ships inside the package (here: it is generated), so ``root`` and ``download``
    are ignored. A dataset read from files looks under ``root`` instead, downloads only when
    ``download`` is true and otherwise raises hebbkit.errors.DataError naming the missing
    files (hebbkit.data.missing_data_message writes that message).
    """

    channels = 1  # lets hebbkit build the network without loading the data

    def __init__(self, params: ${Class}Params) -> None:
        self.params = params

    def load(self, root: Path, *, train: bool, download: bool) -> ImageSet:
        p = self.params
        count = p.train_size if train else p.test_size
        # its own generator per split: the same images every time, different for train/test
        generator = torch.Generator().manual_seed(2 * p.seed + (0 if train else 1))
        labels = torch.randint(len(CLASSES), (count,), generator=generator)
        offsets = torch.randint(p.size, (count, 1, 1), generator=generator)
        rows = torch.arange(p.size).view(1, -1, 1)
        columns = torch.arange(p.size).view(1, 1, -1)
        bars = torch.stack(
            [
                (rows == offsets).expand(count, p.size, p.size),
                (columns == offsets).expand(count, p.size, p.size),
                (rows - columns) % p.size == offsets,
                (rows + columns) % p.size == offsets,
            ],
            dim=1,
        )[torch.arange(count), labels]
        flipped = torch.rand(count, p.size, p.size, generator=generator) < p.noise
        images = (bars ^ flipped).to(torch.uint8) * 255
        # uint8 (N, C, H, W), integer labels 0 .. len(classes) - 1, one name per class
        return ImageSet(images.unsqueeze(1), labels, CLASSES)


def ${function}(params: ${Class}Params) -> ${Class}Source:
    return ${Class}Source(params)
''',
    test="""
def test_splits_have_the_requested_sizes_and_one_bar_per_image():
    from pathlib import Path

    from ${package} import CLASSES

    source = ${function}(${Class}Params(train_size=40, test_size=10, size=8, noise=0.0))
    train = source.load(Path("unused"), train=True, download=False)
    test = source.load(Path("unused"), train=False, download=False)
    assert train.images.shape == (40, 1, 8, 8) and len(test) == 10
    assert train.images.dtype == torch.uint8 and train.classes == CLASSES
    # without noise every image is one bar of `size` lit pixels
    assert ((train.images > 0).sum(dim=(1, 2, 3)) == 8).all()
""",
    recipe_value='{ name = "${component}", train_size = 2000, size = 16 }',
    recipe_table="[data]",
)

#: Family -> its template; ``hebbkit plugin new --family`` offers these.
TEMPLATES: dict[str, FamilyTemplate] = {
    "initializer": _INITIALIZER,
    "plasticity": _PLASTICITY,
    "competition": _COMPETITION,
    "activation": _ACTIVATION,
    "pooling": _POOLING,
    "dataset": _DATASET,
}

_PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "${distribution}"
version = "0.1.0"
description = "hebbkit plugin: ${summary} named ${component}"
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["hebbkit>=${hebbkit_version}"]

[project.optional-dependencies]
test = ["pytest>=8"]

# hebbkit finds the plugin through this entry point: group "hebbkit", value = the module
# whose @hookimpl functions register the components.
[project.entry-points.hebbkit]
${component} = "${package}"

[tool.setuptools.packages.find]
where = ["src"]

[tool.pytest.ini_options]
testpaths = ["tests"]
"""

_INIT = '''\
"""hebbkit plugin ``${component}``: ${summary}.

Installed as the distribution ``${distribution}``; hebbkit finds it through its entry point.
"""

from __future__ import annotations

${imports}

${module}

@hookimpl
def ${hook}(register):
    register(
        "${component}",
        ${function},
        params=${Class}Params,
        # one line shown by `hebbkit plugins`: say what the component does
        description="${summary}",
    )
'''

_TEST = '''\
"""Tests of ${distribution}; run them after ``pip install`` of the package."""

from __future__ import annotations

import importlib.metadata

import torch  # noqa: F401 - the family test below may use it
from hebbkit.contract import check_component, check_recipe_roundtrip
from hebbkit.plugins import build_registry, get_registry, make_plugin_manager

import ${package}
from ${package} import ${Class}Params, ${function}

FAMILY = "${family}"
NAME = "${component}"


def test_meets_the_component_contract():
    # a registry with only this plugin: the same checks hebbkit runs on its own components
    manager = make_plugin_manager(plugins=[${package}], load_entrypoints=False)
    registry = build_registry(manager)
    check_component(registry.get(FAMILY, NAME))


def test_installed_and_usable_in_a_recipe():
    entry_points = importlib.metadata.entry_points(group="hebbkit")
    assert {ep.name: ep.value for ep in entry_points}.get(NAME) == "${package}"
    registry = get_registry()
    assert registry.get(FAMILY, NAME).origin.distribution == "${distribution}"
    check_recipe_roundtrip(registry.get(FAMILY, NAME), registry)

${test}'''

_README = """\
# ${distribution}

A hebbkit plugin: ${summary} named `${component}`.

```bash
pip install .                  # or: pip install -e . while developing
hebbkit plugins                # lists ${component} with this distribution and version
pytest                         # the contract test and the family test in tests/
```

Use it in a recipe:

```toml
${recipe_table}
${recipe_key} = ${recipe_value}
```
"""


def render(names: PluginNames, family: str) -> dict[str, str]:
    """Relative path -> file text of the plugin package for ``family``."""
    if family not in TEMPLATES:
        raise HebbkitError(
            f"No plugin template for the family {family!r}; choose one of: {', '.join(TEMPLATES)}."
        )
    template = TEMPLATES[family]
    words = re.split(r"[-_]", names.component)
    version = importlib.metadata.version("hebbkit").split(".")
    values = {
        "component": names.component,
        "distribution": names.distribution,
        "package": names.package,
        "family": family,
        "hook": template.hook,
        "summary": template.summary,
        "recipe_key": template.recipe_key,
        "recipe_table": template.recipe_table,
        "Class": "".join(word.capitalize() for word in words),
        "function": "_".join(words),
        "hebbkit_version": ".".join(version[:2]),
    }
    # the family parts hold placeholders too, so substitute them first
    parts = {
        "imports": _import_block([*template.imports, "from hebbkit.hookspecs import hookimpl"]),
        "module": Template(template.module).substitute(values),
        "test": Template(template.test).substitute(values),
        "recipe_value": Template(template.recipe_value).substitute(values),
    }
    values = {**values, **parts}
    test_name = f"test_{names.component.replace('-', '_')}.py"
    return {
        "pyproject.toml": Template(_PYPROJECT).substitute(values),
        f"src/{names.package}/__init__.py": Template(_INIT).substitute(values),
        f"tests/{test_name}": Template(_TEST).substitute(values),
        "README.md": Template(_README).substitute(values),
    }


def write_plugin(name: str, family: str = "initializer", out: Path | None = None) -> Path:
    """Write the plugin package for ``name`` into ``out`` (default ``./hebbkit-NAME``)."""
    names = PluginNames.from_name(name)
    files = render(names, family)
    folder = Path(out) if out is not None else Path(names.distribution)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise HebbkitError(
            f"{folder} already exists and is not an empty folder; choose another --out or "
            "remove it first (nothing was written)."
        )
    for relative, text in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder
