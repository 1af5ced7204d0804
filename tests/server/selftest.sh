#!/usr/bin/env bash
# Self-check of the reference server (and tests/integration/harness.py)
# with OpenSSH's ssh client only; no C++ client needed.
#   tests/server/selftest.sh [unittest args, e.g. -k Registration]
# Uses GAME_SERVER_EBIN if set, else builds the server into a temp dir.
# Exits non-zero on failure; every wait inside has a timeout, and the whole
# run is capped at SELFTEST_TIMEOUT seconds (default 600).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for tool in erl ssh ssh-keygen python3; do
    command -v "$tool" >/dev/null || { echo "selftest: $tool not found" >&2; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/game-selftest-build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
if [[ -z "${GAME_SERVER_EBIN:-}" ]]; then
    "$here/build.sh" "$tmp"
    export GAME_SERVER_EBIN="$tmp/ebin"
fi

timeout --kill-after=10 "${SELFTEST_TIMEOUT:-600}" python3 "$here/selftest.py" "$@"
