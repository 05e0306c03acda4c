#!/usr/bin/env bash
# Install everything the tests need, then lint, type-check and run the tests.
# Extra arguments go to pytest (for example: bash scripts/test.sh -k audit).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system_packages.sh
bash scripts/_env.sh dev,clip,cluster
# The database tests run on SQLite and on this machine's PostgreSQL server.
if [ -z "${TEST_POSTGRES_URL:-}" ]; then
    TEST_POSTGRES_URL=$(bash scripts/postgres.sh)
    export TEST_POSTGRES_URL
fi
case "$TEST_POSTGRES_URL" in
    postgresql://*) ;;
    *) echo "TEST_POSTGRES_URL is not a postgresql:// URL: $TEST_POSTGRES_URL" >&2; exit 1 ;;
esac
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# The layers of DESIGN.md (contracts in pyproject.toml).
.venv/bin/lint-imports --no-logo
status=0
.venv/bin/python -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "pytest ran no tests: failing" >&2
    exit 1
fi
exit "$status"
