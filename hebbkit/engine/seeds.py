"""Seeds for every random draw of a run, derived from the recipe's one seed."""

from __future__ import annotations

import hashlib


def derive_seed(seed: int, *labels: object) -> int:
    """A stable 63-bit seed for one purpose (``labels``) of a run with ``seed``."""
    text = ":".join([str(seed), *map(str, labels)]).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") >> 1
