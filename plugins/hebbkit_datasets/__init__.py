"""Image datasets in torchvision's on-disk layouts: MNIST, Fashion-MNIST, CIFAR-10, STL-10.

The component modules import torch; ``lazy_factory`` imports them when a recipe first builds
a component, so loading this plugin (``hebbkit --help``, ``hebbkit plugins``) does not.
"""

from __future__ import annotations

from hebbkit.hookspecs import hookimpl
from hebbkit.registry import lazy_factory

from .params import NoParams, STL10Params


@hookimpl
def register_datasets(register):
    register(
        "mnist",
        lazy_factory(f"{__name__}.sources:mnist"),
        params=NoParams,
        description="MNIST, 60 000 + 10 000 digits, 1×28×28 (MNIST/raw)",
    )
    register(
        "fashion_mnist",
        lazy_factory(f"{__name__}.sources:fashion_mnist"),
        params=NoParams,
        description="Fashion-MNIST, 60 000 + 10 000, 1×28×28 (FashionMNIST/raw)",
    )
    register(
        "cifar10",
        lazy_factory(f"{__name__}.sources:cifar10"),
        params=NoParams,
        description="CIFAR-10, 50 000 + 10 000, 3×32×32 (cifar-10-batches-py)",
    )
    register(
        "stl10",
        lazy_factory(f"{__name__}.sources:stl10"),
        params=STL10Params,
        description="STL-10, 5 000 + 8 000 labelled (+100 000 unlabelled), 3×96×96 (stl10_binary)",
    )
