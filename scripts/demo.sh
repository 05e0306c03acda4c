#!/usr/bin/env bash
# Install provenance and run the main job offline: the demo workspace, its triage table,
# one flagged asset's record and the audit chain verified.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/_env.sh
workspace="${1:-demo-workspace}"
rm -rf "$workspace"
# A reference set of real photographs, generated assets recreating some of them and
# unrelated ones, registered with their generation metadata and checked; then the triage
# table. Offline.
.venv/bin/provenance demo "$workspace"
echo
.venv/bin/provenance -w "$workspace" show 5
echo
.venv/bin/provenance -w "$workspace" audit verify
