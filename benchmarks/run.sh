#!/usr/bin/env bash
# Fetch the benchmark corpus (real images from Debian packages, ~1.4 GB of downloads, once)
# and run the benchmarks. Results go to benchmarks/results/*.json; the README quotes them.
# The calibration notebook is re-run at the end so that its plots show these results.
#   bash benchmarks/run.sh           the full runs (about four hours here)
#   bash benchmarks/run.sh --quick   smaller runs (under 15 minutes once the corpus is fetched)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/_env.sh dev,clip,cluster
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r benchmarks/requirements.txt
if [ ! -f benchmarks/.corpus/sources.json ] || [ "$(grep -c ufoai-textures benchmarks/.corpus/sources.json)" = 0 ]; then
    apt-get update -qq
    .venv/bin/python benchmarks/corpus.py
fi
py=.venv/bin/python
if [ "${1:-}" = "--quick" ]; then
    suffix=-quick
    $py benchmarks/quality.py --quick --repeats 2 --out benchmarks/results/quality-quick.json
    $py benchmarks/register_throughput.py --limit 200 --rounds 3 \
        --out benchmarks/results/register_throughput-quick.json
    $py benchmarks/corpus_vectors.py --limit 3000
    $py benchmarks/index_search.py --sizes 10000 30000 100000 --topup gaussian clustered \
        --real-limit 3000 --out benchmarks/results/index_search-quick.json
    $py benchmarks/speed.py --images 32 --refs 200 --repeats 1 \
        --out benchmarks/results/speed-quick.json
    $py benchmarks/review_scale.py --sizes 1000 --repeats 3 --samples 20 \
        --out benchmarks/results/review_scale-quick.json
    $py benchmarks/cluster_ingest.py --limit 60 --rounds 1 \
        --out benchmarks/results/cluster_ingest-quick.json
    $py benchmarks/cli_startup.py --rounds 3
    $py benchmarks/moving.py --seconds 10 --frames 12 --repeats 1 \
        --out benchmarks/results/moving-quick.json
else
    suffix=
    $py benchmarks/quality.py --repeats 3
    $py benchmarks/register_throughput.py --limit 500 --rounds 5
    $py benchmarks/corpus_vectors.py
    $py benchmarks/index_search.py --sizes 10000 30000 100000 300000 1000000 \
        --topup gaussian clustered
    # Ten million references: 10 GB of float16 vectors on disk, about 20 minutes.
    $py benchmarks/index_search.py --sizes --huge 10000000 \
        --out benchmarks/results/index_search-10m.json
    $py benchmarks/index_search.py --sizes 1000000 --compare \
        --out benchmarks/results/index_search-1m.json
    $py benchmarks/speed.py --images 64 --refs 500 --repeats 3
    $py benchmarks/draft_decoding.py
    $py benchmarks/review_scale.py --sizes 1000 10000 --repeats 3
    # 100,000 assets on each database: most of an hour, filling them.
    $py benchmarks/review_scale.py --sizes 100000 --databases sqlite --repeats 3 --samples 200 \
        --out benchmarks/results/review_scale-sqlite.json
    $py benchmarks/review_scale.py --sizes 100000 --databases postgresql --repeats 3 \
        --samples 200 --out benchmarks/results/review_scale-postgresql.json
    $py benchmarks/cluster_ingest.py --limit 300 --rounds 3
    $py benchmarks/cli_startup.py --rounds 5
    $py benchmarks/moving.py --seconds 60 --frames 100 --repeats 3
    $py benchmarks/signing.py --repeats 6 --anchors 200
fi
# The calibration notebook's plots show these results (the kernel inherits RESULTS_SUFFIX).
RESULTS_SUFFIX=$suffix $py notebooks/run.py calibration.ipynb
