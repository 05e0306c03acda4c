#!/usr/bin/env bash
# Fetch the benchmark corpus (real images from Debian packages) and run the benchmarks.
# Results go to benchmarks/results/*.json; the README quotes them with this command.
#   bash benchmarks/run.sh [--limit N] [--rounds R]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/_env.sh
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r benchmarks/requirements.txt
if [ ! -d benchmarks/.corpus/images ]; then
    apt-get update -qq
    .venv/bin/python benchmarks/corpus.py
fi
.venv/bin/python benchmarks/register_throughput.py "$@"
