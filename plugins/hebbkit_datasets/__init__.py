"""Image datasets in torchvision's on-disk layouts: MNIST, Fashion-MNIST, CIFAR-10, STL-10."""

from __future__ import annotations

from hebbkit.hookspecs import hookimpl

from . import sources


@hookimpl
def register_datasets(register):
    register(
        "mnist",
        sources.mnist,
        params=sources.NoParams,
        description="MNIST, 60 000 + 10 000 digits, 1×28×28 (MNIST/raw)",
    )
    register(
        "fashion_mnist",
        sources.fashion_mnist,
        params=sources.NoParams,
        description="Fashion-MNIST, 60 000 + 10 000, 1×28×28 (FashionMNIST/raw)",
    )
    register(
        "cifar10",
        sources.cifar10,
        params=sources.NoParams,
        description="CIFAR-10, 50 000 + 10 000, 3×32×32 (cifar-10-batches-py)",
    )
    register(
        "stl10",
        sources.stl10,
        params=sources.STL10Params,
        description="STL-10, 5 000 + 8 000 labelled (+100 000 unlabelled), 3×96×96 (stl10_binary)",
    )
