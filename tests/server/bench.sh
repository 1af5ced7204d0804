#!/usr/bin/env bash
# Timing of 100,000 addScore requests against the reference server, with
# the Erlang load client (tests/server/game_load.erl):
#   seed mode, one PDU per SSH data message
#   ack mode, many PDUs per data message (1000 per send call)
#   ack mode, one PDU per data message
#   tests/server/bench.sh [COUNT]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
count=${1:-100000}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/game-bench.XXXXXX")
pid=
cleanup() {
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

if [[ -z "${GAME_SERVER_EBIN:-}" ]]; then
    "$here/build.sh" "$tmp/build"
    GAME_SERVER_EBIN="$tmp/build/ebin"
fi
mkdir -p "$tmp/client"
ssh-keygen -q -t ed25519 -N '' -f "$tmp/client/id_ed25519"

run() { # mode framing
    local mode=$1 how=$2 state="$tmp/state-$1-$2" port
    mkfifo "$tmp/ready"
    "$here/game-server" --ebin "$GAME_SERVER_EBIN" --state "$state" --mode "$mode" \
        >"$tmp/ready" 2>"$tmp/server-$mode-$how.stderr" &
    pid=$!
    read -r -t 30 _ port <"$tmp/ready"
    rm -f "$tmp/ready"
    local out
    out=$(timeout 300 erl -noinput -kernel logger_level warning -pa "$GAME_SERVER_EBIN" \
        -run game_load main -extra "$port" "bench-user" "$tmp/client" game "$count" "$how")
    local logged
    logged=$(grep -c '^addScore' "$state/requests.log" || true)
    printf '%-5s %-8s %s logged=%s\n' "$mode" "$how" "$out" "$logged"
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
    [[ "$logged" == "$count" ]]
}

run seed message
run ack batch
run ack message
