#!/usr/bin/env bash
# The workflows checked as programs: actionlint (expressions, contexts, job
# graph) with shellcheck on every `run:` script. actionlint is built from its
# Go module into a cache outside the checkout, once per version; shellcheck
# comes from Debian. Where Go is absent this says so and passes: the tests
# still check the workflows' YAML (tests/test_workflows.py).
#   bash scripts/lint-workflows.sh [WORKFLOW.yml ...]   # default: .github/workflows/*.yml
set -euo pipefail
cd "$(dirname "$0")/.."

ACTIONLINT_VERSION=v1.7.12
TOOLS="${XDG_CACHE_HOME:-$HOME/.cache}/naap-db/tools"
ACTIONLINT="$TOOLS/actionlint-$ACTIONLINT_VERSION"

if ! command -v go >/dev/null 2>&1; then
  echo "lint-workflows: skipped, no Go on this machine (actionlint is built from its Go module)"
  exit 0
fi

if [ ! -x "$ACTIONLINT" ]; then
  mkdir -p "$TOOLS"
  scratch="$(mktemp -d)"
  trap 'rm -rf "$scratch"' EXIT
  # Outside the checkout, so the project's own files never see a go.mod.
  (cd "$scratch" && GOBIN="$scratch/bin" GOFLAGS=-mod=mod \
    go install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION")
  mv "$scratch/bin/actionlint" "$ACTIONLINT"
fi

if ! command -v shellcheck >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null
  else
    echo "lint-workflows: shellcheck is missing; install it (Debian: apt-get install shellcheck)" >&2
    exit 1
  fi
fi

if [ "$#" -eq 0 ]; then
  set -- .github/workflows/*.yml
fi
"$ACTIONLINT" -shellcheck "$(command -v shellcheck)" "$@"
echo "lint-workflows: actionlint $ACTIONLINT_VERSION and shellcheck $(shellcheck --version | sed -n 's/^version: //p') found no problem in $*"
