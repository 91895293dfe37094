"""What a network looks like after initialisation, before any learning (the study's Table 2)."""

from __future__ import annotations

from typing import Any

from hebbkit.network import HebbianNetwork
from hebbkit.plasticity import neuron_rates
from hebbkit.training import distinct_rows


def describe_layers(network: HebbianNetwork) -> list[dict[str, Any]]:
    rows = []
    for index, layer in enumerate(network.layers):
        weight = layer.weight_matrix()
        norms = weight.norm(dim=1)
        rates = neuron_rates(weight, layer.rule_params, 0.0)
        rows.append(
            {
                "layer": index,
                "init": layer.config.init.name,
                "shape": list(layer.weight.shape),
                "parameters": weight.numel(),
                "nonzero_weights": int((weight != 0).sum().item()),
                "distinct_filters": distinct_rows(weight),
                "mean_norm": norms.mean().item(),
                "min_norm": norms.min().item(),
                "max_norm": norms.max().item(),
                "initial_lr": rates.mean().item(),
            }
        )
    return rows
