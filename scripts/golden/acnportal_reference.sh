#!/usr/bin/env bash
# Regenerate crates/scg-ev/tests/data/acnportal_golden.json with pinned acnportal (PyPI).
# Checked on Python 3.11. VENV may point at an existing virtual environment.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${VENV:-${TMPDIR:-/tmp}/scg-acnportal-venv}"
python3 -m venv "$venv"
"$venv/bin/pip" install -q "acnportal==0.3.3" "numpy==2.4.6" "pandas==3.1.1"
"$venv/bin/python" "$here/acnportal_reference.py"
