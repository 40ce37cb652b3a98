#!/usr/bin/env bash
# Prove the minimum versions setup.cfg declares: run the torch-free core of the test suite in a
# fresh venv holding exactly numpy 1.24.4 and scipy 1.13.0 (scipy 1.13 is the first with
# coo_array.coords, which the library uses).  Usage: bash tools/check_minimum_versions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(mktemp -d)/venv
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet "numpy==1.24.4" "scipy==1.13.0" tqdm pytest hypothesis
"$venv/bin/pip" install --quiet --no-deps -e .
"$venv/bin/python" -c "import numpy, scipy; print('numpy', numpy.__version__, 'scipy', scipy.__version__)"
"$venv/bin/python" -m pytest -q -p no:cacheprovider -o addopts="" \
    tests/test_operators.py tests/test_graphs.py tests/test_module_protocol.py \
    tests/test_geometry.py tests/test_lowering.py tests/test_layers.py tests/test_conv_layers.py \
    tests/test_inspect.py tests/test_signal.py tests/test_properties.py tests/test_loss.py \
    tests/test_optim.py tests/test_fit.py tests/test_models.py tests/test_batches.py \
    tests/test_init.py tests/test_lr_scheduler.py tests/test_untrusted_files.py \
    tests/test_checkpoint.py tests/test_atomic_saves.py tests/test_data.py tests/test_cli.py
