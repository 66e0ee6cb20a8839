#!/usr/bin/env bash
# Find Debian's Chromium, installing it with apt-get when missing (fails loudly when it cannot).
# Sourced by scripts/browser-test.sh (sets chromium_bin); run alone by .ci/run before the tests,
# so `cargo test --workspace` finds Chromium and runs the report's headless-browser test with the
# binary it already built (no second build of scg just for the browser).
set -euo pipefail

find_chromium() {
    for c in chromium chromium-browser; do
        if command -v "$c" >/dev/null 2>&1; then
            command -v "$c"
            return 0
        fi
    done
    return 1
}

if ! chromium_bin="$(find_chromium)"; then
    echo "install-chromium: chromium not found, installing Debian's package" >&2
    sudo_cmd=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then sudo_cmd="sudo"; else
            echo "install-chromium: FAIL: not root and no sudo; install chromium first" >&2
            exit 1
        fi
    fi
    if ! { $sudo_cmd apt-get update && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y chromium; }; then
        echo "install-chromium: FAIL: apt-get install chromium failed" >&2
        exit 1
    fi
    chromium_bin="$(find_chromium)" || { echo "install-chromium: FAIL: chromium still missing after install" >&2; exit 1; }
fi

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    echo "install-chromium: $chromium_bin"
fi
