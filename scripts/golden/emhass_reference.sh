#!/usr/bin/env bash
# Regenerate crates/scg-home/tests/data/emhass_day.json with a pinned EMHASS (heavy: pandas,
# cvxpy, HiGHS, scikit-learn...). Installs into a throw-away venv; the repo's tests never run
# Python, they read the committed JSON.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${EMHASS_VENV:-/tmp/scg-emhass-venv}"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet "emhass==0.18.7"
"$venv/bin/python" "$here/emhass_reference.py"
