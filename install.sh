#!/usr/bin/env bash
# Set up ./.venv with hebbkit.  `./install.sh`      : hebbkit and its dependencies
#                               `./install.sh dev`  : + tests, Ray Tune, Optuna, MLflow,
#                                                     TensorBoard, the example plugin
# PYTHON picks the interpreter (default python3; hebbkit needs Python >= 3.10).
# TORCH_SPEC overrides the PyTorch pin (default: the release this project is tested with), e.g.
#   TORCH_SPEC="torch torchvision --index-url https://download.pytorch.org/whl/cpu" ./install.sh
# for CPU-only wheels (no CUDA libraries: most of a default venv on Linux).
set -euo pipefail
cd "$(dirname "$0")"
python="${PYTHON:-python3}"
if ! command -v "$python" >/dev/null 2>&1; then
  echo "install.sh: no '$python' found. hebbkit needs Python >= 3.10: install one, or name it" \
    "with PYTHON=/path/to/python3.12 ./install.sh" >&2
  exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo "?")
  echo "install.sh: hebbkit needs Python >= 3.10, but $python is Python $version. Name a newer" \
    "one with PYTHON=/path/to/python3.12 ./install.sh" >&2
  exit 1
fi
"$python" -m venv .venv
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
