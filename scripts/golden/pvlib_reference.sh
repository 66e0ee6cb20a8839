#!/usr/bin/env bash
# Regenerate crates/scg-resource/tests/data/pvlib_chicago_hourly.csv.gz: pvlib's hourly PV for the
# Chicago O'Hare TMY3 EPW with scg's model chain (see pvlib_reference.py). Not part of the build
# or of CI; the tests read the committed numbers.
#
#   scripts/golden/pvlib_reference.sh [path/to/USA_IL_Chicago-OHare.Intl.AP.725300_TMY3.epw]
#
# Creates a venv in ${VENV:-/tmp/scg-pvlib-venv} with pinned versions.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${VENV:-/tmp/scg-pvlib-venv}"
epw="${1:-$repo/crates/scg-resource/tests/data/chicago_ohare_tmy3.epw.gz}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet pvlib==0.13.1 pandas==2.3.3 numpy==2.3.5 scipy==1.16.3
fi
"$venv/bin/python" "$here/pvlib_reference.py" "$epw" \
  | gzip -9n > "$repo/crates/scg-resource/tests/data/pvlib_chicago_hourly.csv.gz"
echo "wrote crates/scg-resource/tests/data/pvlib_chicago_hourly.csv.gz"
