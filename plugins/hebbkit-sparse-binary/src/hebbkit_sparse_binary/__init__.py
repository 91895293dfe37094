"""hebbkit plugin: the ``sparse-binary`` initializer.

Installed on its own (``pip install ./plugins/hebbkit-sparse-binary``) and found by hebbkit
through the ``hebbkit`` entry-point group, exactly as a third-party plugin would be.
"""

from __future__ import annotations

from hebbkit.hookspecs import hookimpl

from .initializer import SparseBinaryParams, sparse_binary

__all__ = ["SparseBinaryParams", "register_initializers", "sparse_binary"]


@hookimpl
def register_initializers(register):
    register(
        "sparse-binary",
        sparse_binary,
        params=SparseBinaryParams,
        description="{0, c} weights, exactly round(density·fan_in) ones per filter",
    )
