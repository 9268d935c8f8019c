#!/usr/bin/env bash
# Console benchmark, the figures issue 8 asks for: how long each page of the
# web console takes on the server with 10,000 events in the store and 1,000
# snapshots in a backup policy's repository (default key derivation, as in
# production), and how long the security-practices report takes.
#
# It runs TestBenchPages (internal/web/console/bench_test.go): the whole
# product in process on a loopback port, each page fetched
# CONSOLE_BENCH_ROUNDS times (default 20) by a signed-in administrator;
# median, p95 and max, as the client on loopback sees them (the server's
# time plus a loopback round trip).
#
# usage: scripts/bench-console.sh [MARKDOWN_OUT]
set -euo pipefail
export LC_ALL=C
root=$(cd "$(dirname "$0")/.." && pwd)
export PATH=/usr/local/go/bin:$PATH
out=${1:-/dev/stdout}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$root"
BULWARK_CONSOLE_BENCH="$tmp/pages.md" go test -v -count=1 -run '^TestBenchPages$' -timeout 20m ./internal/web/console/ >"$tmp/log" 2>&1 || {
	tail -40 "$tmp/log" >&2
	echo "(bench-console failed; see above)" >"$out"
	exit 1
}
{
	echo "Each page fetched ${CONSOLE_BENCH_ROUNDS:-20} times by a signed-in administrator, with"
	echo "${CONSOLE_BENCH_EVENTS:-10000} events in the store and ${CONSOLE_BENCH_SNAPSHOTS:-1000} snapshots in the policy's repository."
	{ grep -o 'seeded .*' "$tmp/log" || true; } | head -1 | sed 's/^/(The seeding: /; s/$/.)/'
	echo
	cat "$tmp/pages.md"
} >"$out"
