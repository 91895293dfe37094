#!/usr/bin/env bash
# Set up ./.venv with hebbkit.  `./install.sh`      : hebbkit and its dependencies
#                               `./install.sh dev`  : + tests, Ray Tune, Optuna, MLflow,
#                                                     TensorBoard, the example plugin
# TORCH_SPEC overrides the PyTorch pin (default: the release this project is tested with).
set -euo pipefail
cd "$(dirname "$0")"
python3 -m venv .venv
pip=".venv/bin/pip"
# torch first and on its own: pip then takes the local wheel where one is provided
$pip install -q ${TORCH_SPEC:-torch==2.14.1 torchvision==0.29.1}
if [ "${1:-}" = "dev" ]; then
  $pip install -q -e ".[dev,tune,optuna,mlflow,tensorboard]"
  $pip install -q ./plugins/hebbkit-sparse-binary
else
  $pip install -q -e .
fi
echo "hebbkit installed in $(pwd)/.venv"
