#!/usr/bin/env bash
# Sets up ./venv (the virtualenv Pulumi.yaml names) from requirements-test.txt
# and runs the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x venv/bin/python ]; then
  python3 -m venv venv
fi
venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
exec venv/bin/python -m pytest "$@"
