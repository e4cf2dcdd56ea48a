"""naap-db's domain and ops tools: the plugin catalogue, the access plan, and
the commands that check and change a live database. Plain Python: this package
never imports pulumi, so hooks and ops tools start fast and run anywhere.

Importing it first stops an interpreter older than 3.11 with one line naming
the version needed: pulumi itself accepts 3.10, so a venv made with 3.10
installs cleanly and would otherwise die on the first 3.11 import with a
traceback. The program (`__main__.py`) and `python -m naapdb` import it
before anything else; this file stays parseable by old interpreters."""

import sys as _sys

REQUIRED_PYTHON = (3, 11)

if _sys.version_info < REQUIRED_PYTHON:
    _sys.stderr.write(
        f"error: naap-db needs Python {REQUIRED_PYTHON[0]}.{REQUIRED_PYTHON[1]} or newer, but "
        f"{_sys.executable} is Python {_sys.version.split()[0]}; recreate the venv with a newer "
        "Python (rm -rf venv && python3.11 -m venv venv) and install requirements.txt into it "
        "again\n"
    )
    raise SystemExit(2)
