"""Plasticity rules on the patch-matrix view: ``weight (c_out, n)``, a
:class:`~hebbkit.plasticity.HebbianBatch` with ``u``/``y`` ``(N, c_out)`` and the correlation
``Σ y·x``. Each returns the update direction; the layer applies the learning rate."""

from __future__ import annotations

import torch

from hebbkit.plasticity import HebbianBatch

from .params import HebbParams, OjaParams, SoftHebbParams


class SoftHebbRule:
    """Δw_k = Σ y_k·x − (Σ y_k·u_k)·w_k (SoftHebb, Journé et al. 2023).

    Since u_k = w_k·x, Σ y_k·u_k = w_k·(Σ y_k·x): the second term comes from the correlation
    the first term needs anyway, a ``(c_out, n)`` product instead of another pass over the
    ``(N, c_out)`` maps (exact up to float rounding).
    """

    def __init__(self, params: SoftHebbParams) -> None:
        self.params = params

    def delta(self, weight, batch: HebbianBatch):
        grown = batch.correlate()
        return torch.addcmul(grown, weight, (grown * weight).sum(1, keepdim=True), value=-1.0)


class OjaRule:
    """Oja's rule, Δw_k = Σ y_k·(x − y_k·w_k), summed over patches."""

    def __init__(self, params: OjaParams) -> None:
        self.params = params

    def delta(self, weight, batch: HebbianBatch):
        return batch.correlate() - (batch.y * batch.y).sum(0).unsqueeze(1) * weight


class HebbRule:
    """Plain Hebb, Δw_k = Σ y_k·x, with each neuron's norm kept as it was (normalisation)."""

    def __init__(self, params: HebbParams) -> None:
        self.params = params

    def delta(self, weight, batch: HebbianBatch):
        grown = batch.correlate()
        # remove the component along w so the update rotates w instead of growing it
        norms_sq = (weight * weight).sum(1, keepdim=True).clamp_min(1e-30)
        return grown - (grown * weight).sum(1, keepdim=True) / norms_sq * weight


def softhebb(params: SoftHebbParams) -> SoftHebbRule:
    return SoftHebbRule(params)


def oja(params: OjaParams) -> OjaRule:
    return OjaRule(params)


def hebb(params: HebbParams) -> HebbRule:
    return HebbRule(params)
