"""What a Hebbian layer looks like: norms, rates, distinct filters, winners.

The same statistics describe a network after initialisation (``hebbkit inspect``, the
study's Table 2) and while it learns (the ``hebbian_trace`` rows of the metrics table).
"""

from __future__ import annotations

from typing import Any

import torch

from hebbkit.engine.network import HebbianLayer, HebbianNetwork
from hebbkit.plasticity import neuron_rates


def distinct_rows(matrix: torch.Tensor) -> int:
    return int(torch.unique(matrix.detach().cpu(), dim=0).shape[0])


def layer_statistics(layer: HebbianLayer, progress: float) -> dict[str, float]:
    """Norms, learning rate and distinct filters of a layer, for the metrics table."""
    weight = layer.weight_matrix()
    norms = weight.norm(dim=1)
    rates = neuron_rates(weight, layer.rule_params, progress)
    return {
        "mean_norm": norms.mean().item(),
        "min_norm": norms.min().item(),
        "max_norm": norms.max().item(),
        "mean_lr": rates.mean().item(),
        "distinct_filters": distinct_rows(weight),
        "nonzero_weights": int(torch.count_nonzero(weight).item()),
    }


def winner_statistics(counts: torch.Tensor) -> dict[str, float]:
    """Dead neurons, the top winner's share and the effective number of winners."""
    total = counts.sum().clamp_min(1)
    share = counts.double() / total
    entropy = -(share[share > 0] * share[share > 0].log()).sum()
    return {
        "dead_neurons": int((counts == 0).sum().item()),
        "top_winner_share": share.max().item(),
        "effective_winners": entropy.exp().item(),
    }


def describe_layers(network: HebbianNetwork) -> list[dict[str, Any]]:
    """One row per layer before any learning: shape, non-zeros, distinct filters, norms, rate."""
    rows = []
    for index, layer in enumerate(network.layers):
        statistics = layer_statistics(layer, 0.0)
        rows.append(
            {
                "layer": index,
                "init": layer.config.init.name,
                "shape": list(layer.weight.shape),
                "parameters": layer.weight.numel(),
                "nonzero_weights": statistics["nonzero_weights"],
                "distinct_filters": statistics["distinct_filters"],
                "mean_norm": statistics["mean_norm"],
                "min_norm": statistics["min_norm"],
                "max_norm": statistics["max_norm"],
                "initial_lr": statistics["mean_lr"],
            }
        )
    return rows
