#!/usr/bin/env bash
# Debian packages the tests need: PostgreSQL (the team database the tests run against as
# well as SQLite), Chromium (the browser tests of the reviewer pages), Pango and fonts (PDF
# evidence packs). Installs only what is missing; needs root (CI runs as root) when
# something is.
#   bash scripts/system_packages.sh        everything the tests need
#   bash scripts/system_packages.sh pdf    only what PDF evidence packs need (the demo)
set -euo pipefail
wanted=()
if [ "${1:-}" != "pdf" ]; then
    command -v pg_ctlcluster >/dev/null 2>&1 || wanted+=(postgresql)
    [ -x /usr/bin/chromium ] || wanted+=(chromium)
fi
# WeasyPrint (evidence packs as PDF) draws text with Pango; DejaVu gives it fonts.
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || wanted+=(fonts-dejavu-core)
ldconfig -p | grep -q "libpangoft2-1.0.so.0" || wanted+=(libpango-1.0-0 libpangoft2-1.0-0)
if [ "${#wanted[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing Debian packages: ${wanted[*]} (run as root, or apt-get install them)" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${wanted[@]}" >/dev/null
fi
