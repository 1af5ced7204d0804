#!/usr/bin/env bash
# Builds the Erlang reference server used by the integration tests.
#   tests/server/build.sh OUTDIR
# Compiles asn1/Protocol.asn1 (BER, via asn1ct) and tests/server/*.erl into
# OUTDIR/ebin. Works from any working directory. Our own modules are
# compiled with warnings as errors.
# Override the schema with GAME_PROTOCOL_ASN1=/path/to/Protocol.asn1.
set -euo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
asn1=${GAME_PROTOCOL_ASN1:-$repo/asn1/Protocol.asn1}

if [[ ! -f "$asn1" ]]; then
    echo "build.sh: schema not found: $asn1" >&2
    exit 1
fi
command -v erlc >/dev/null || { echo "build.sh: erlc not found (install erlang-base, erlang-asn1, erlang-ssh)" >&2; exit 1; }

mkdir -p "$1/ebin" "$1/gen"
out=$(cd "$1" && pwd)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/game-server-build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# asn1ct names the module after the ASN.1 module (Protocol), and the file
# must be named after it too.
cp "$asn1" "$tmp/Protocol.asn1"
(cd "$tmp" && erlc -bber +maps -o "$tmp" Protocol.asn1)
cp "$tmp/Protocol.beam" "$out/ebin/"
cp "$tmp/Protocol.erl" "$tmp/Protocol.asn1db" "$out/gen/"
[[ -f "$tmp/Protocol.hrl" ]] && cp "$tmp/Protocol.hrl" "$out/gen/"

erlc -Werror +debug_info -o "$out/ebin" "$here"/*.erl
