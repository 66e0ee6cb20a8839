#!/usr/bin/env bash
# Load report.html in a real headless Chromium (Debian's package) and check it:
#   - no console errors, uncaught exceptions or network requests (the report is offline);
#   - every chart (svg[data-chart]) has a title shown as its caption, x and y units, data
#     points and drawn marks, and a non-zero rendered size;
#   - at 420 px and 1400 px the page never scrolls sideways (tables and charts scroll in
#     their own boxes) and no caption is cut;
#   - screenshots at both widths go to target/report-artifacts/.
#
# Usage: scripts/browser-test.sh [REPORT_HTML]
# Without an argument it builds scg and simulates the built-in scenario (--no-ledger).
# Chromium is installed with apt-get when missing; if that fails, this script fails.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
artifacts="$repo/target/report-artifacts"
mkdir -p "$artifacts"

# shellcheck source=scripts/install-chromium.sh
source "$repo/scripts/install-chromium.sh"

report="${1:-}"
if [ -z "$report" ]; then
    target_dir="${CARGO_TARGET_DIR:-$repo/target}"
    (cd "$repo" && cargo build -p scg-cli)
    "$target_dir/debug/scg" simulate --no-ledger --quiet --out "$artifacts/run"
    report="$artifacts/run/report.html"
fi
if [ ! -f "$report" ]; then
    echo "browser-test: FAIL: no report at $report" >&2
    exit 1
fi

exec python3 "$repo/scripts/browser_test.py" --chromium "$chromium_bin" \
    --report "$report" --artifacts "$artifacts"
