#!/usr/bin/env bash
# Debian packages the tests need: PostgreSQL (the team database the tests run against as
# well as SQLite) and Chromium (the browser tests of the reviewer pages). Installs only
# what is missing; needs root (CI runs as root) when something is.
set -euo pipefail
wanted=()
command -v pg_ctlcluster >/dev/null 2>&1 || wanted+=(postgresql)
[ -x /usr/bin/chromium ] || wanted+=(chromium)
if [ "${#wanted[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing Debian packages: ${wanted[*]} (run as root, or apt-get install them)" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${wanted[@]}" >/dev/null
fi
