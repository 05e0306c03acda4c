#!/usr/bin/env bash
# Fetch the benchmark corpus (real images from Debian packages, ~1.4 GB of downloads, once)
# and run the benchmarks. Results go to benchmarks/results/*.json; the README quotes them.
#   bash benchmarks/run.sh           the full runs
#   bash benchmarks/run.sh --quick   smaller runs (a few minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/_env.sh
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r benchmarks/requirements.txt
if [ ! -f benchmarks/.corpus/sources.json ] || [ "$(grep -c ufoai-textures benchmarks/.corpus/sources.json)" = 0 ]; then
    apt-get update -qq
    .venv/bin/python benchmarks/corpus.py
fi
if [ "${1:-}" = "--quick" ]; then
    .venv/bin/python benchmarks/quality.py --quick --out benchmarks/results/quality-quick.json
    .venv/bin/python benchmarks/register_throughput.py --limit 200 --rounds 3 \
        --out benchmarks/results/register_throughput-quick.json
    .venv/bin/python benchmarks/index_search.py --sizes 20000 40000 \
        --out benchmarks/results/index_search-quick.json
else
    .venv/bin/python benchmarks/quality.py
    .venv/bin/python benchmarks/register_throughput.py --limit 500 --rounds 5
    .venv/bin/python benchmarks/index_search.py --sizes 20000 40000 100000 200000
    .venv/bin/python benchmarks/speed.py --images 64 --refs 500
fi
