#!/usr/bin/env bash
# Install provenance and run the main job offline: the demo workspace, its triage table,
# one flagged asset's record, the review queue, the flagged assets and a note on one, the
# cleared asset's clearance, the production's disclosure summary and evidence packs (signed
# with the demo's development key), a copy with Content Credentials, every signature
# verified, and the audit chain checked against the anchors the exports wrote.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system_packages.sh pdf    # Pango and fonts for the PDF evidence packs
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
.venv/bin/provenance -w "$workspace" show 11   # the animatic: a movie with a flagged frame range
echo
.venv/bin/provenance -w "$workspace" show 9    # a vendor's still: its Content Credentials read and validated
echo
.venv/bin/provenance -w "$workspace" queue
echo
# What waits for a reviewer, as a pipeline script would ask; a reviewer's note on it.
.venv/bin/provenance -w "$workspace" list --status flagged --verdict high
echo
PROVENANCE_USER=rosa .venv/bin/provenance -w "$workspace" note 2 "The character reads as the poster's: who cleared this design?"
.venv/bin/provenance -w "$workspace" notes 2
echo
.venv/bin/provenance -w "$workspace" status 5
echo
.venv/bin/provenance -w "$workspace" export production Demo --out "$workspace/exports"
echo
# The cleared composite for delivery: record, signed evidence pack, and a copy carrying the
# studio's Content Credentials; then every signature checked.
.venv/bin/provenance -w "$workspace" export asset 5 --c2pa --out "$workspace/exports/signed"
echo
.venv/bin/provenance -w "$workspace" verify "$workspace"/exports/signed/*
echo
.venv/bin/provenance -w "$workspace" audit verify --anchors "$workspace/audit-anchors.jsonl"
echo
echo "Reviewer pages: provenance -w $workspace users token rosa   (prints rosa's token)"
echo "                provenance -w $workspace serve              (then open http://127.0.0.1:8000/)"
