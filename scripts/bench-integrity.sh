#!/usr/bin/env bash
# Side-by-side file-integrity benchmark: `bulwark integrity` against
# Debian's AIDE on one tree, as issue 6 asks: a baseline (init) and a check
# of it, the same attributes (AIDE's sha256+p+u+g+s+m+c+i+n), AIDE with
# num_workers equal to the core count, a warm page cache, runs interleaved.
#
# usage: scripts/bench-integrity.sh [MARKDOWN_OUT [JSON_OUT]]
#
# Environment:
#   BENCH_INTEGRITY_PATH  the tree (default /usr)
#   BENCH_RUNS            runs of each step, interleaved; medians reported (default 3)
#   BULWARK_BIN           bulwark binary (default: built from this checkout)
#   BENCH_WATCH_IDLE      seconds of idle watching of the tree's baseline (default 30)
#   BENCH_WATCH_BURST     files changed at once under watch (default 10000)
#
# Both tools record every entry of the tree: bulwark with
# --no-default-excludes (its built-in policy leaves out __pycache__ and
# editor files, AIDE's rule here does not). Peak memory is the largest
# maximum RSS of any run (GNU time).
set -euo pipefail
export LC_ALL=C
root=$(cd "$(dirname "$0")/.." && pwd)
export PATH=/usr/local/go/bin:$PATH
md_out=${1:-} json_out=${2:-}
tree=${BENCH_INTEGRITY_PATH:-/usr}
runs=${BENCH_RUNS:-3}
log() { echo "bench-integrity: $*" >&2; }
[[ $runs =~ ^[1-9][0-9]*$ ]] || { log "BENCH_RUNS must be a positive integer"; exit 2; }
for t in aide /usr/bin/time; do
	command -v "$t" >/dev/null || { log "$t is missing (apt-get install aide time)"; exit 2; }
done
[[ -d $tree ]] || { log "$tree is not a directory"; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bin=${BULWARK_BIN:-}
if [[ -z $bin ]]; then
	bin=$work/bulwark
	(cd "$root" && go build -o "$bin" ./cmd/bulwark)
fi
cores=$(nproc)
cat >"$work/aide.conf" <<EOF
database_in=file:$work/aide.db
database_out=file:$work/aide.db.new
num_workers=$cores
R = sha256+p+u+g+s+m+c+i+n
$tree R
EOF

log "warming the page cache with $tree"
find "$tree" -xdev -type f -print0 2>/dev/null | xargs -0 -r cat >/dev/null 2>&1 || true

# timed NAME CMD...: runs CMD under GNU time, appends "NAME seconds maxrss_kib" to results.
timed() {
	local name=$1 rc=0
	shift
	/usr/bin/time -f "%e %M" -o "$work/time.out" "$@" >"$work/$name.out" 2>"$work/$name.err" || rc=$?
	echo "$name $(cat "$work/time.out" | tail -n 1)" >>"$work/results"
	return $rc
}

attrs=p+u+g+s+m+c+i+n+sha256
for ((r = 1; r <= runs; r++)); do
	log "run $r/$runs"
	rm -f "$work/aide.db" "$work/aide.db.new"
	timed aide-init aide --init -c "$work/aide.conf" || { log "aide --init failed: $(tail -n 3 "$work/aide-init.err")"; exit 1; }
	mv "$work/aide.db.new" "$work/aide.db"
	timed bulwark-init "$bin" integrity init --data "$work/data" --baseline "$work/bulwark.baseline" --path "$tree" \
		--attrs "$attrs" --no-default-excludes --json || { log "bulwark integrity init failed: $(tail -n 3 "$work/bulwark-init.err")"; exit 1; }
	rc=0
	timed aide-check aide --check -c "$work/aide.conf" || rc=$?
	((rc <= 7)) || { log "aide --check failed (exit $rc): $(tail -n 3 "$work/aide-check.err")"; exit 1; }
	rc=0
	timed bulwark-check "$bin" integrity check --data "$work/data" --baseline "$work/bulwark.baseline" --json || rc=$?
	((rc <= 1)) || { log "bulwark integrity check failed (exit $rc): $(tail -n 3 "$work/bulwark-check.err")"; exit 1; }
done

# Watch mode. Idle: `integrity watch` of the tree's baseline, its CPU time
# (utime + stime from /proc) over BENCH_WATCH_IDLE seconds after the first
# scan. Burst: a fresh tree of BENCH_WATCH_BURST files in 10 directories,
# its baseline, a watch, then every file rewritten as fast as the shell
# can; each file's first "changed" report gives its delay_ms (from the
# file's ctime to the report).
watch_idle=${BENCH_WATCH_IDLE:-30}
burst=${BENCH_WATCH_BURST:-10000}
await_scan() { # FILE PID: waits (up to 600 s) for the watch's first scan report
	for ((i = 0; i < 6000; i++)); do
		grep -q '"kind":"scan"' "$1" 2>/dev/null && return 0
		kill -0 "$2" 2>/dev/null || { log "watch exited: $(tail -n 3 "${1%.out}.err")"; return 1; }
		sleep 0.1
	done
	log "watch: no first scan within 600 s"
	return 1
}
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
log "watch: idle for ${watch_idle}s on the baseline of $tree"
"$bin" integrity watch --data "$work/data" --baseline "$work/bulwark.baseline" --json --rescan 0 >"$work/watch-idle.out" 2>"$work/watch-idle.err" &
wpid=$!
await_scan "$work/watch-idle.out" $wpid || exit 1
watches=$(sed -n 's/.*"watches":\([0-9]*\).*/\1/p' "$work/watch-idle.out" | head -n 1)
t0=$(ticks $wpid)
sleep "$watch_idle"
t1=$(ticks $wpid)
kill $wpid
wait $wpid 2>/dev/null || true
idle_pct=$(awk -v d=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v s="$watch_idle" 'BEGIN { printf "%.2f", 100 * d / hz / s }')

log "watch: a burst of $burst changed files"
bt=$work/burst
for ((d = 0; d < 10; d++)); do mkdir -p "$bt/d$d"; done
for ((i = 0; i < burst; i++)); do echo "before $i" >"$bt/d$((i % 10))/f$i"; done
"$bin" integrity init --data "$work/data" --baseline "$work/burst.baseline" --path "$bt" --json >/dev/null 2>"$work/burst-init.err" ||
	{ log "integrity init of the burst tree failed: $(tail -n 3 "$work/burst-init.err")"; exit 1; }
"$bin" integrity watch --data "$work/data" --baseline "$work/burst.baseline" --json --rescan 0 >"$work/watch-burst.out" 2>"$work/watch-burst.err" &
wpid=$!
await_scan "$work/watch-burst.out" $wpid || exit 1
b0=$(date +%s.%N)
for ((i = 0; i < burst; i++)); do echo "after $i" >"$bt/d$((i % 10))/f$i"; done
b1=$(date +%s.%N)
first_changes() { grep '"kind":"changed"' "$work/watch-burst.out" | grep '/f[0-9]*","type":"file"' |
	sed -n 's/.*"path":"\([^"]*\)".*"delay_ms":\([0-9.e+-]*\).*/\1 \2/p' | awk '!seen[$1]++'; }
for ((i = 0; i < 600; i++)); do
	(($(first_changes | wc -l) >= burst)) && break
	sleep 0.1
done
kill $wpid
wait $wpid 2>/dev/null || true
reported=$(first_changes | wc -l)
overflows=$(grep -c '"reason":"overflow"' "$work/watch-burst.out" || true)
read -r p50 p99 dmax < <(first_changes | awk '{ print $2 }' | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "- - -"; exit }
	i50 = int(NR * 0.50); i99 = int(NR * 0.99); if (i50 < 1) i50 = 1; if (i99 < 1) i99 = 1; printf "%.0f %.0f %.0f\n", v[i50], v[i99], v[NR] }')
write_s=$(awk -v a="$b0" -v b="$b1" 'BEGIN { printf "%.2f", b - a }')
log "watch: idle ${idle_pct}% of a core ($watches directories watched); burst: $reported of $burst reported, delay p50 ${p50} ms, p99 ${p99} ms, max ${dmax} ms, written in ${write_s}s, $overflows overflow scan(s)"

aide_entries=$(awk -F'\t' '/^Number of entries:/ { print $2; exit }' "$work/aide-init.out")
bw_entries=$(sed -n 's/.*"entries": \([0-9]*\).*/\1/p' "$work/bulwark-init.out" | head -n 1)
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
stat() { # NAME FIELD(2 seconds, 3 rss): median seconds or max rss
	if [[ $2 == 2 ]]; then awk -v n="$1" '$1 == n { print $2 }' "$work/results" | median
	else awk -v n="$1" '$1 == n && $3 > m { m = $3 } END { print m }' "$work/results"; fi
}
declare -A sec rss
for s in aide-init bulwark-init aide-check bulwark-check; do
	sec[$s]=$(stat "$s" 2)
	rss[$s]=$(stat "$s" 3)
done
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
init_ratio=$(ratio "$(rate "$bw_entries" "${sec[bulwark-init]}")" "$(rate "$aide_entries" "${sec[aide-init]}")")
check_ratio=$(ratio "$(rate "$bw_entries" "${sec[bulwark-check]}")" "$(rate "$aide_entries" "${sec[aide-check]}")")
verdict() { awk -v v="$1" -v g="$2" -v op="$3" 'BEGIN { if ((op == ">=" && v >= g) || (op == "<=" && v <= g)) print "met"; else print "missed" }'; }
peak_bw=$(( rss[bulwark-init] > rss[bulwark-check] ? rss[bulwark-init] : rss[bulwark-check] ))
peak_aide=$(( rss[aide-init] > rss[aide-check] ? rss[aide-init] : rss[aide-check] ))

{
	echo "Tree: $tree; $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'); $(aide --version 2>&1 | head -n 1), num_workers $cores; $("$bin" version 2>/dev/null | head -n 1 || echo "bulwark ?")."
	echo "Both record $attrs (bulwark: \`integrity init --path $tree --attrs $attrs --no-default-excludes\`), warm page cache, $runs interleaved runs, median seconds; peak is the largest maximum RSS of any run."
	echo
	echo "| tool | entries | init s | init entries/s | check s | check entries/s | peak RSS init / check MiB |"
	echo "|---|---|---|---|---|---|---|"
	echo "| AIDE | $aide_entries | ${sec[aide-init]} | $(rate "$aide_entries" "${sec[aide-init]}") | ${sec[aide-check]} | $(rate "$aide_entries" "${sec[aide-check]}") | $(mib "${rss[aide-init]}") / $(mib "${rss[aide-check]}") |"
	echo "| bulwark | $bw_entries | ${sec[bulwark-init]} | $(rate "$bw_entries" "${sec[bulwark-init]}") | ${sec[bulwark-check]} | $(rate "$bw_entries" "${sec[bulwark-check]}") | $(mib "${rss[bulwark-init]}") / $(mib "${rss[bulwark-check]}") |"
	echo
	echo "| target (issue 6) | measured | goal | |"
	echo "|---|---|---|---|"
	echo "| init entries/s, bulwark / AIDE | ${init_ratio}x | >= 5x | $(verdict "$init_ratio" 5 ">=") |"
	echo "| check entries/s, bulwark / AIDE | ${check_ratio}x | >= 5x | $(verdict "$check_ratio" 5 ">=") |"
	echo "| peak memory, bulwark / AIDE | $(mib "$peak_bw") / $(mib "$peak_aide") MiB | <= AIDE's | $(verdict "$peak_bw" "$peak_aide" "<=") |"
	echo "| watch mode: idle CPU ($watches directories watched, ${watch_idle} s) | ${idle_pct}% of a core | < 1% | $(verdict "$idle_pct" 1 "<=") |"
	echo "| watch mode: p99 change-to-event delay, burst of $burst changes ($reported reported, written in ${write_s} s, $overflows overflow scans) | ${p99} ms (p50 ${p50}, max ${dmax}) | < 1000 ms | $( ((reported == burst)) && verdict "$p99" 1000 "<=" || echo "missed: $((burst - reported)) unreported") |"
} >"$work/table.md"
cat "$work/table.md"
if [[ -n $md_out ]]; then cp "$work/table.md" "$md_out"; fi
if [[ -n $json_out ]]; then
	printf '{"tree":"%s","runs":%d,"aide":{"entries":%s,"init_seconds":%s,"check_seconds":%s,"init_rss_kib":%s,"check_rss_kib":%s},"bulwark":{"entries":%s,"init_seconds":%s,"check_seconds":%s,"init_rss_kib":%s,"check_rss_kib":%s},"init_ratio":%s,"check_ratio":%s,"watch":{"directories":%s,"idle_cpu_percent":%s,"burst":%s,"reported":%s,"delay_ms_p50":%s,"delay_ms_p99":%s,"delay_ms_max":%s,"overflow_scans":%s}}\n' \
		"$tree" "$runs" "$aide_entries" "${sec[aide-init]}" "${sec[aide-check]}" "${rss[aide-init]}" "${rss[aide-check]}" \
		"$bw_entries" "${sec[bulwark-init]}" "${sec[bulwark-check]}" "${rss[bulwark-init]}" "${rss[bulwark-check]}" "$init_ratio" "$check_ratio" \
		"${watches:-0}" "$idle_pct" "$burst" "$reported" "${p50/-/null}" "${p99/-/null}" "${dmax/-/null}" "$overflows" >"$json_out"
fi
log "done"
