#!/usr/bin/env bash
# Install provenance and run the main job offline: a fresh demo workspace with the
# repository's sample images registered, listed, shown and the audit chain verified.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/_env.sh
workspace="${1:-demo-workspace}"
rm -rf "$workspace"
provenance=.venv/bin/provenance
"$provenance" init "$workspace"
"$provenance" -w "$workspace" register samples/images \
    --use ideation --production "Demo" --tool "demo-pipeline" --by "demo-artist"
echo
"$provenance" -w "$workspace" list
echo
"$provenance" -w "$workspace" show 1
echo
"$provenance" -w "$workspace" audit verify
