#!/bin/sh
# Open a city-layout output directory (scg simulate ... --out DIR, 50 members or more, or
# --layout city) with pandas + pyarrow in a throw-away venv: scripts/city_outputs.sh DIR
set -eu
venv="${SCG_VENV:-/tmp/scg-city-venv}"
python3 -m venv "$venv"
"$venv/bin/pip" install -q pandas==3.1.1 pyarrow==26.0.1
"$venv/bin/python" "$(dirname "$0")/city_outputs.py" "$1"
