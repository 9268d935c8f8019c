#!/usr/bin/env bash
# Supervision benchmark, the figures issue 7 asks for, beside Debian's
# node_exporter where it has a peer:
#
#  1. 1,000 HTTP checks every 30 s against a local nginx: CPU (share of one
#     core) and memory of `bulwark up` running them, and proof that they
#     ran (bulwark's /metrics, nginx's access log);
#  2. the cost of one host-metrics sample: BenchmarkSample and
#     BenchmarkCollect (internal/monitor/host), and a scrape of the same
#     collector over HTTP (internal/monitor/monitorbench) beside a scrape
#     of node_exporter with the collectors it reproduces;
#  3. the idle footprint of `bulwark up` with the default configuration
#     (no file: host metrics every 15 s, no checks) beside node_exporter
#     with its default collectors, scraped every 15 s as a Prometheus would.
#
# usage: scripts/bench-monitor.sh [MARKDOWN_OUT [JSON_OUT]]
#
# Environment:
#   MONITOR_BENCH_WINDOW    seconds each footprint is measured over, after the warm-up (default 120)
#   MONITOR_BENCH_WARMUP    seconds of warm-up before each window (default 30: every check runs once)
#   MONITOR_BENCH_CHECKS    HTTP checks (default 1000)
#   MONITOR_BENCH_INTERVAL  their interval in seconds (default 30)
#   MONITOR_BENCH_SCRAPES   timed scrapes of each exporter (default 200)
#   MONITOR_BENCH_COUNT     go test -count of the sample benchmarks; medians reported (default 5)
#   BULWARK_BIN             bulwark binary (default: built from this checkout)
#
# CPU is utime + stime from /proc/PID/stat (the process's own threads, not
# its children) over the window's wall time; RSS is VmRSS at the end of
# the window and peak is VmHWM (the largest RSS since the process started,
# start-up included), both from /proc/PID/status. Everything listens on
# 127.0.0.1 on free ports; every process started here is stopped on exit.
set -euo pipefail
export LC_ALL=C
root=$(cd "$(dirname "$0")/.." && pwd)
export PATH=/usr/local/go/bin:$PATH
md_out=${1:-} json_out=${2:-}
window=${MONITOR_BENCH_WINDOW:-120}
warmup=${MONITOR_BENCH_WARMUP:-30}
nchecks=${MONITOR_BENCH_CHECKS:-1000}
interval=${MONITOR_BENCH_INTERVAL:-30}
nscrapes=${MONITOR_BENCH_SCRAPES:-200}
count=${MONITOR_BENCH_COUNT:-5}
log() { echo "bench-monitor: $*" >&2; }
for v in window warmup nchecks interval nscrapes count; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || { log "$v must be a positive integer, got '${!v}'"; exit 2; }
done
nginx=$(command -v nginx || true)
[[ -n $nginx ]] || [[ ! -x /usr/sbin/nginx ]] || nginx=/usr/sbin/nginx
exporter=$(command -v prometheus-node-exporter || echo /usr/bin/prometheus-node-exporter)
for t in "$nginx" "$exporter" curl ss; do
	[[ -n $t ]] && command -v "$t" >/dev/null ||
		{ log "missing ${t:-nginx} (apt-get install nginx prometheus-node-exporter curl iproute2)"; exit 2; }
done

work=$(mktemp -d)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# stop PID: ends a process started here and forgets it.
stop() {
	local p keep=()
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	for p in "${pids[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
	pids=("${keep[@]}")
}

bin=${BULWARK_BIN:-}
if [[ -z $bin ]]; then
	bin=$work/bulwark
	log "building bulwark"
	(cd "$root" && go build -o "$bin" ./cmd/bulwark)
fi
log "building monitorbench"
(cd "$root" && go build -o "$work/monitorbench" ./internal/monitor/monitorbench)

hz=$(getconf CLK_TCK)
# ticks PID: utime + stime; cticks PID: cutime + cstime (waited-for children).
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
cticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $14 + $15 }'; }
# kib PID FIELD: a /proc/PID/status field in KiB (VmRSS, VmHWM) or a count (Threads).
kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
# reset_hwm PID: prints VmHWM (the peak so far) and resets it to the current
# RSS (clear_refs 5), so that VmHWM at the window's end is the window's peak.
# Prints the peak and leaves it when the reset is refused.
reset_hwm() {
	kib "$1" VmHWM
	{ echo 5 >"/proc/$1/clear_refs"; } 2>/dev/null || true
}
now() { date +%s.%N; }
# pause SECONDS: a sleep that a signal to this script interrupts (then the EXIT trap cleans up).
pause() { sleep "$1" & wait $!; }
pct() { awk -v d="$1" -v hz="$hz" -v s="$2" 'BEGIN { printf "%.2f", 100 * d / hz / s }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k * 1024 / 1e6 }'; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
free_port() {
	local p
	for _ in $(seq 1 100); do
		p=$((20000 + RANDOM % 40000))
		ss -Htan "( sport = :$p or dport = :$p )" | grep -q . || { echo "$p"; return 0; }
	done
	log "no free port found"
	return 1
}
# await_url URL PID [CURL OPTIONS]: waits up to 60 s for URL to answer while PID lives.
await_url() {
	local url=$1 pid=$2
	shift 2
	for _ in $(seq 1 600); do
		curl -s -o /dev/null --max-time 2 "$@" "$url" && return 0
		kill -0 "$pid" 2>/dev/null || { log "process $pid exited before $url answered"; return 1; }
		sleep 0.1
	done
	log "$url did not answer within 60 s"
	return 1
}
admin_password=bench-monitor-password
bulwark_version=$("$bin" version 2>/dev/null | awk '$1 == "bulwark" { print $2 }' | head -n 1)
exporter_version=$("$exporter" --version 2>&1 | awk 'NR == 1 { print $3 }')
nginx_version=$("$nginx" -v 2>&1 | sed 's/.*nginx\///')

# --- 2. The cost of one host sample -----------------------------------------
log "host sample: go test -bench 'Sample|Collect' -count $count ./internal/monitor/host/"
(cd "$root" && go test -run '^$' -bench '^Benchmark(Sample|Collect)$' -benchmem -count "$count" ./internal/monitor/host/) >"$work/gobench.txt" 2>&1 ||
	{ log "go test -bench failed:"; cat "$work/gobench.txt" >&2; exit 1; }
# gostat NAME FIELD: median of ns/op, B/op or allocs/op over the runs.
gostat() { awk -v n="$1" -v f="$2" '$1 ~ "^Benchmark" n "(-[0-9]+)?$" { for (i = 3; i < NF; i++) if ($(i + 1) == f) print $i }' "$work/gobench.txt" | median; }
declare -A gb
for b in Sample Collect; do
	for f in ns/op B/op allocs/op; do gb[$b,$f]=$(gostat "$b" "$f"); done
done
us() { awk -v n="$1" 'BEGIN { if (n == "-") print "-"; else printf "%.0f", n / 1000 }'; }

# scrape_cost NAME URL PID: NAME_wall_ms (mean and median of the timed
# scrapes), NAME_cpu_ms (the server's CPU per scrape), NAME_bytes, NAME_series.
declare -A sc
scrape_cost() {
	local name=$1 url=$2 pid=$3 t0 t1
	curl -s -o /dev/null "$url?warm=[1-5]"
	t0=$(ticks "$pid")
	curl -s -o /dev/null -w '%{time_total} %{size_download} %{http_code}\n' "$url?n=[1-$nscrapes]" >"$work/$name.times"
	t1=$(ticks "$pid")
	if awk '$3 != 200 { bad = 1 } END { exit !bad }' "$work/$name.times"; then
		log "$name: a scrape did not answer 200"
		return 1
	fi
	sc[$name,mean]=$(awk '{ s += $1 } END { printf "%.2f", 1000 * s / NR }' "$work/$name.times")
	sc[$name,median]=$(awk '{ print 1000 * $1 }' "$work/$name.times" | median | xargs printf "%.2f")
	sc[$name,cpu]=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v n="$nscrapes" 'BEGIN { printf "%.2f", 1000 * d / hz / n }')
	sc[$name,bytes]=$(awk '{ print $2 }' "$work/$name.times" | median | xargs printf "%.0f")
	curl -s "$url" >"$work/$name.prom"
	sc[$name,series]=$(grep -vc '^#' "$work/$name.prom" || true)
}

log "host sample: $nscrapes scrapes of node_exporter $exporter_version (the collectors bulwark reproduces)"
port=$(free_port)
"$exporter" --web.listen-address="127.0.0.1:$port" --log.level=warn --collector.disable-defaults --web.disable-exporter-metrics \
	--collector.cpu --collector.loadavg --collector.meminfo --collector.filesystem --collector.diskstats --collector.netdev \
	--collector.timex --collector.time --collector.stat --collector.uname --collector.processes >"$work/ne-scrape.log" 2>&1 &
ne=$!
pids+=("$ne")
await_url "http://127.0.0.1:$port/metrics" "$ne"
scrape_cost ne "http://127.0.0.1:$port/metrics" "$ne"
# node_exporter's own account: the collectors' durations in one scrape.
sc[ne,collect]=$(awk '/^node_scrape_collector_duration_seconds/ { s += $2 } END { printf "%.2f", 1000 * s }' "$work/ne.prom")
self_series=$(grep -c '^node_scrape_collector_' "$work/ne.prom" || true)
sc[ne,series]=$((${sc[ne,series]} - self_series))
stop "$ne"

log "host sample: $nscrapes scrapes of bulwark's host collector (monitorbench)"
"$work/monitorbench" -listen 127.0.0.1:0 >"$work/mb.out" 2>"$work/mb.err" &
mbp=$!
pids+=("$mbp")
for _ in $(seq 1 100); do grep -q '^listening on ' "$work/mb.out" && break; sleep 0.1; done
mb_addr=$(sed -n 's/^listening on //p' "$work/mb.out")
[[ -n $mb_addr ]] || { log "monitorbench did not start: $(cat "$work/mb.err")"; exit 1; }
scrape_cost mb "http://$mb_addr/metrics" "$mbp"
stop "$mbp"

# --- 1. 1,000 HTTP checks every 30 s ----------------------------------------
ngx=$work/nginx
mkdir -p "$ngx/tmp"
nport=$(free_port)
cat >"$ngx/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 16384;
pid $ngx/nginx.pid;
error_log $ngx/error.log warn;
events { worker_connections 8192; }
http {
	log_format bench '\$msec \$connection \$connection_requests \$status \$request_uri';
	client_body_temp_path $ngx/tmp/body;
	proxy_temp_path $ngx/tmp/proxy;
	fastcgi_temp_path $ngx/tmp/fastcgi;
	uwsgi_temp_path $ngx/tmp/uwsgi;
	scgi_temp_path $ngx/tmp/scgi;
	keepalive_timeout 75s;
	server {
		listen 127.0.0.1:$nport;
		access_log $ngx/access.log bench;
		default_type text/plain;
		location / { return 200 "ok\n"; }
	}
}
EOF
log "checks: nginx $nginx_version on 127.0.0.1:$nport"
"$nginx" -p "$ngx/" -e "$ngx/error.log" -c "$ngx/nginx.conf" &
ng=$!
pids+=("$ng")
await_url "http://127.0.0.1:$nport/warm" "$ng"

{
	echo "monitor:"
	echo "  checks:"
	for ((i = 1; i <= nchecks; i++)); do
		printf '    - {name: web-%04d, interval: %ds, http: {url: "http://127.0.0.1:%d/web-%04d", status: 200, contains: "ok"}}\n' "$i" "$interval" "$nport" "$i"
	done
} >"$work/checks.yaml"
# first_start DATA PORT: the first start of a data directory creates the
# administrator, whose argon2id hash takes 64 MiB once in the directory's
# life; it is done (and stopped) before a measured run, so the measured
# process is a server as it runs from then on: a restart.
first_start() {
	log "first start of $1 (creates the administrator)"
	BULWARK_ADMIN_PASSWORD=$admin_password "$bin" up --data "$1" --listen "127.0.0.1:$2" >"$1.first.out" 2>"$1.first.log" &
	local first=$!
	pids+=("$first")
	await_url "https://127.0.0.1:$2/readyz" "$first" -k || { log "bulwark up: $(tail -n 5 "$1.first.log")"; exit 1; }
	kill -TERM "$first"
	wait "$first" 2>/dev/null || true
}
bport=$(free_port)
first_start "$work/checks-data" "$bport"
log "checks: bulwark up with $nchecks HTTP checks every ${interval}s on 127.0.0.1:$bport; warm-up ${warmup}s, window ${window}s"
BULWARK_ADMIN_PASSWORD=$admin_password "$bin" up --data "$work/checks-data" --config "$work/checks.yaml" \
	--listen "127.0.0.1:$bport" >"$work/checks-up.out" 2>"$work/checks-up.log" &
bw=$!
pids+=("$bw")
await_url "https://127.0.0.1:$bport/metrics" "$bw" -k || { log "bulwark up: $(tail -n 5 "$work/checks-up.log")"; exit 1; }
pause "$warmup"
kill -0 "$bw" 2>/dev/null || { log "bulwark up exited: $(tail -n 5 "$work/checks-up.log")"; exit 1; }
chk_hwm0=$(reset_hwm "$bw")
w0=$(now) c0=$(ticks "$bw") cc0=$(cticks "$bw") n0=0
for p in $(pgrep -P "$ng"); do n0=$((n0 + $(ticks "$p"))); done
pause "$window"
w1=$(now) c1=$(ticks "$bw") cc1=$(cticks "$bw") n1=0
for p in $(pgrep -P "$ng"); do n1=$((n1 + $(ticks "$p"))); done
chk_wall=$(elapsed "$w0" "$w1")
chk_cpu=$(pct $((c1 - c0)) "$chk_wall")
chk_cpu_s=$(awk -v d=$((c1 - c0)) -v hz="$hz" 'BEGIN { printf "%.2f", d / hz }')
chk_child_s=$(awk -v d=$((cc1 - cc0)) -v hz="$hz" 'BEGIN { printf "%.2f", d / hz }')
chk_nginx_cpu=$(pct $((n1 - n0)) "$chk_wall")
chk_rss=$(kib "$bw" VmRSS) chk_whwm=$(kib "$bw" VmHWM) chk_threads=$(kib "$bw" Threads)
chk_hwm=$((chk_whwm > chk_hwm0 ? chk_whwm : chk_hwm0))
chk_fds=$(find "/proc/$bw/fd" -mindepth 1 -maxdepth 1 | wc -l)
chk_estab=$(ss -Htn state established "( dport = :$nport )" | wc -l)
# What ran: the checks' last results at /metrics (read after the window:
# a scrape takes a host sample), nginx's log within the window.
curl -sk "https://127.0.0.1:$bport/metrics" >"$work/checks.prom"
chk_up=$(grep -c '^bulwark_check_up{.*} 1$' "$work/checks.prom" || true)
chk_down=$(grep -c '^bulwark_check_up{.*} 0$' "$work/checks.prom" || true)
chk_goroutines=$(awk '$1 == "go_goroutines" { print $2 }' "$work/checks.prom")
chk_heap=$(awk '$1 == "go_memstats_heap_inuse_bytes" { printf "%.1f", $2 / 1048576 }' "$work/checks.prom")
read -r chk_req chk_conns chk_reused chk_non200 < <(awk -v a="$w0" -v b="$w1" '$1 >= a && $1 < b { n++; c[$2] = 1; if ($3 > 1) r++; if ($4 != 200) bad++ }
	END { printf "%d %d %d %d\n", n, length(c), r, bad }' "$ngx/access.log")
chk_expect=$(awk -v n="$nchecks" -v w="$chk_wall" -v i="$interval" 'BEGIN { printf "%.0f", n * w / i }')
chk_warn=$(grep -cE 'level=(WARN|ERROR)' "$work/checks-up.log" || true)
grep -E 'level=(WARN|ERROR)' "$work/checks-up.log" | head -n 5 >"$work/checks-warn.txt" || true
ngx_err=$(grep -cE '\[(error|crit|alert|emerg)\]' "$ngx/error.log" || true)
stop "$bw"
stop "$ng"
log "checks: CPU ${chk_cpu}% of a core, RSS $(mib "$chk_rss") MiB, peak $(mib "$chk_hwm") MiB (in the window $(mib "$chk_whwm")); $chk_up up, $chk_down down; nginx logged $chk_req requests (expected ~$chk_expect) on $chk_conns connections ($chk_reused on reused ones); $chk_warn warnings in bulwark's log"

# --- 3. Idle footprint: bulwark up (defaults) beside node_exporter ----------
bport=$(free_port)
eport=$(free_port)
while [[ $eport == "$bport" ]]; do eport=$(free_port); done
first_start "$work/idle-data" "$bport"
log "idle: bulwark up (no configuration file) on 127.0.0.1:$bport and node_exporter (default collectors) on 127.0.0.1:$eport; warm-up ${warmup}s, window ${window}s"
BULWARK_ADMIN_PASSWORD=$admin_password "$bin" up --data "$work/idle-data" --listen "127.0.0.1:$bport" \
	>"$work/idle-up.out" 2>"$work/idle-up.log" &
bw=$!
pids+=("$bw")
"$exporter" --web.listen-address="127.0.0.1:$eport" --log.level=warn >"$work/ne-idle.log" 2>&1 &
ne=$!
pids+=("$ne")
await_url "https://127.0.0.1:$bport/metrics" "$bw" -k || { log "bulwark up: $(tail -n 5 "$work/idle-up.log")"; exit 1; }
await_url "http://127.0.0.1:$eport/metrics" "$ne"
# Prometheus's way: node_exporter scraped every 15 s from the start.
ne_url="http://127.0.0.1:$eport/metrics"
next_scrape=$(date +%s) scrapes=0
scrape_until() { # END_EPOCH: scrapes node_exporter every 15 s until then
	while (($(date +%s) < $1)); do
		if (($(date +%s) >= next_scrape)); then
			curl -s -o /dev/null --max-time 10 "$ne_url" || log "idle: a scrape of node_exporter failed"
			scrapes=$((scrapes + 1))
			next_scrape=$((next_scrape + 15))
		fi
		sleep 0.5
	done
}
scrape_until $(($(date +%s) + warmup))
for p in "$bw" "$ne"; do kill -0 "$p" 2>/dev/null || { log "idle: process $p exited"; exit 1; }; done
s0=$scrapes
idle_bw_hwm0=$(reset_hwm "$bw") idle_ne_hwm0=$(reset_hwm "$ne")
w0=$(now) b0=$(ticks "$bw") e0=$(ticks "$ne") bc0=$(cticks "$bw")
scrape_until $(($(date +%s) + window))
w1=$(now) b1=$(ticks "$bw") e1=$(ticks "$ne") bc1=$(cticks "$bw")
idle_wall=$(elapsed "$w0" "$w1")
idle_scrapes=$((scrapes - s0))
idle_bw_cpu=$(pct $((b1 - b0)) "$idle_wall") idle_ne_cpu=$(pct $((e1 - e0)) "$idle_wall")
idle_bw_child_s=$(awk -v d=$((bc1 - bc0)) -v hz="$hz" 'BEGIN { printf "%.2f", d / hz }')
idle_bw_rss=$(kib "$bw" VmRSS) idle_bw_whwm=$(kib "$bw" VmHWM) idle_bw_threads=$(kib "$bw" Threads)
idle_ne_rss=$(kib "$ne" VmRSS) idle_ne_whwm=$(kib "$ne" VmHWM) idle_ne_threads=$(kib "$ne" Threads)
idle_bw_hwm=$((idle_bw_whwm > idle_bw_hwm0 ? idle_bw_whwm : idle_bw_hwm0))
idle_ne_hwm=$((idle_ne_whwm > idle_ne_hwm0 ? idle_ne_whwm : idle_ne_hwm0))
idle_warn=$(grep -cE 'level=(WARN|ERROR)' "$work/idle-up.log" || true)
grep -E 'level=(WARN|ERROR)' "$work/idle-up.log" | head -n 5 >"$work/idle-warn.txt" || true
stop "$bw"
stop "$ne"
log "idle: bulwark ${idle_bw_cpu}% of a core, RSS $(mib "$idle_bw_rss") MiB (peak $(mib "$idle_bw_hwm")); node_exporter ${idle_ne_cpu}%, RSS $(mib "$idle_ne_rss") MiB (peak $(mib "$idle_ne_hwm")), $idle_scrapes scrapes in the window"

# --- The section ------------------------------------------------------------
below() { awk -v v="$1" -v g="$2" 'BEGIN { if (v + 0 < g + 0) print "met"; else print "missed" }'; }
cpu_verdict=$(below "$chk_cpu" 10) mem_verdict=$(below "$(mb "$chk_hwm")" 100)
if ((chk_up < nchecks)); then
	cpu_verdict="not judged: only $chk_up of $nchecks checks up"
	mem_verdict=$cpu_verdict
fi
{
	echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r)."
	echo "Versions: bulwark ${bulwark_version:-?} ($(go version | awk '{ print $3 }')); node_exporter $exporter_version (Debian); nginx $nginx_version (Debian)."
	echo "CPU is utime + stime of the process from /proc/PID/stat over the window's wall time (100% = one core); RSS is VmRSS at the"
	echo "end of the window; peak is VmHWM, the largest RSS since the process started (start-up included), and peak in the window"
	echo "VmHWM reset at the window's start (/proc/PID/clear_refs). Windows of ${window} s after ${warmup} s of warm-up;"
	echo "everything on 127.0.0.1 (scripts/bench-monitor.sh)."
	echo
	echo "### $nchecks HTTP checks every ${interval} s"
	echo
	echo "\`bulwark up\` with $nchecks checks \`{interval: ${interval}s, http: {url: http://127.0.0.1:PORT/web-NNNN, status: 200, contains: ok}}\`"
	echo "against nginx (\`return 200 \"ok\"\`, one worker, keep-alive 75 s), host metrics sampled every 15 s as by default,"
	echo "results written to the history (SQLite); the data directory was created by a first start before (the administrator's"
	echo "argon2id hash, 64 MiB, is made once in a directory's life). The checks' results are read from bulwark's /metrics after the window,"
	echo "requests and connections from nginx's access log within it."
	echo
	echo "| measured | value |"
	echo "|---|---|"
	echo "| checks up / down at the end (bulwark_check_up) | $chk_up / $chk_down of $nchecks |"
	echo "| requests nginx served in the window (expected $nchecks x ${chk_wall} s / ${interval} s) | $chk_req (expected $chk_expect; $chk_non200 not 200) |"
	echo "| connections those requests came on (requests on a connection used before) / established to nginx at the end | $chk_conns ($chk_reused) / $chk_estab |"
	echo "| bulwark CPU over ${chk_wall} s | ${chk_cpu}% of one core (${chk_cpu_s} s; children ${chk_child_s} s) |"
	echo "| bulwark RSS at the end / peak since start / peak in the window | $(mib "$chk_rss") / $(mib "$chk_hwm") / $(mib "$chk_whwm") MiB ($(mb "$chk_rss") / $(mb "$chk_hwm") / $(mb "$chk_whwm") MB) |"
	echo "| bulwark Go heap in use, goroutines, threads, open descriptors | ${chk_heap:-?} MiB, ${chk_goroutines:-?}, $chk_threads, $chk_fds |"
	echo "| warnings and errors in bulwark's log (whole run) | $chk_warn |"
	echo "| nginx worker CPU over the window (not counted against bulwark) | ${chk_nginx_cpu}% of one core |"
	echo
	echo "| target (issue 7) | measured | goal | |"
	echo "|---|---|---|---|"
	echo "| $nchecks HTTP checks every ${interval} s: CPU | ${chk_cpu}% of one core | < 10% | $cpu_verdict |"
	echo "| $nchecks HTTP checks every ${interval} s: peak memory (RSS since start; in the window alone) | $(mb "$chk_hwm") MB ($(mb "$chk_whwm") MB) | < 100 MB | $mem_verdict |"
	echo
	echo "### One host-metrics sample"
	echo
	echo "| measured | what it includes | time per sample | server CPU per sample | per sample |"
	echo "|---|---|---|---|---|"
	echo "| bulwark BenchmarkSample (median of $count) | one host.Sample into a Go struct: /proc and /sys files, statfs(2) of each mount, every /proc/PID/stat (named processes sshd, systemd); no SMART or apt (cached for minutes to hours), no exposition | $(us "${gb[Sample,ns/op]}") µs | (wall time; the sample runs on one goroutine at a time, so about its CPU time) | ${gb[Sample,B/op]} B, ${gb[Sample,allocs/op]} allocs |"
	echo "| bulwark BenchmarkCollect (median of $count) | a sample and its Prometheus metrics (no named processes), no text encoding | $(us "${gb[Collect,ns/op]}") µs | (as above) | ${gb[Collect,B/op]} B, ${gb[Collect,allocs/op]} allocs |"
	echo "| bulwark's host collector over HTTP (internal/monitor/monitorbench) | a sample, its metrics, text exposition and an HTTP response on loopback; $nscrapes scrapes by one curl (keep-alive, no compression) | ${sc[mb,mean]} ms mean, ${sc[mb,median]} ms median | ${sc[mb,cpu]} ms | ${sc[mb,series]} series, ${sc[mb,bytes]} bytes |"
	echo "| node_exporter $exporter_version, the 11 collectors bulwark reproduces, --web.disable-exporter-metrics | the same for its collectors (cpu loadavg meminfo filesystem diskstats netdev timex time stat uname processes), scraped the same way | ${sc[ne,mean]} ms mean, ${sc[ne,median]} ms median | ${sc[ne,cpu]} ms | ${sc[ne,series]} series, ${sc[ne,bytes]} bytes; its collectors' own durations sum to ${sc[ne,collect]} ms |"
	echo
	echo "Server CPU per sample is the serving process's utime + stime over the $nscrapes scrapes divided by $nscrapes (clock ticks of $((1000 / hz)) ms)."
	echo
	echo "### Idle footprint"
	echo
	echo "Both started together; \`bulwark up\` with no configuration file (data directory created by a first start; monitor on, host metrics"
	echo "sampled every 15 s and kept in the history, SMART and apt checks cached, no checks, nothing scraping it) and node_exporter"
	echo "with its default collectors, scraped every 15 s from its start like a Prometheus would ($idle_scrapes scrapes in the window)."
	echo
	echo "| process | CPU over ${idle_wall} s | RSS at the end MiB | peak since start MiB | peak in the window MiB | threads |"
	echo "|---|---|---|---|---|---|"
	echo "| bulwark up (defaults) | ${idle_bw_cpu}% of one core (children ${idle_bw_child_s} s) | $(mib "$idle_bw_rss") | $(mib "$idle_bw_hwm") | $(mib "$idle_bw_whwm") | $idle_bw_threads |"
	echo "| node_exporter $exporter_version (defaults, scraped every 15 s) | ${idle_ne_cpu}% of one core | $(mib "$idle_ne_rss") | $(mib "$idle_ne_hwm") | $(mib "$idle_ne_whwm") | $idle_ne_threads |"
	echo
	echo "Warnings and errors in bulwark's log while idle: $idle_warn."
	if [[ -s $work/checks-warn.txt || -s $work/idle-warn.txt ]]; then
		echo
		echo "First warnings logged:"
		echo
		echo '```'
		cat "$work/checks-warn.txt" "$work/idle-warn.txt"
		echo '```'
	fi
	if ((ngx_err > 0)); then
		echo
		echo "nginx logged $ngx_err errors during the checks run."
	fi
} >"$work/table.md"
cat "$work/table.md"
if [[ -n $md_out ]]; then cp "$work/table.md" "$md_out"; fi
if [[ -n $json_out ]]; then
	printf '{"window_seconds":%s,"warmup_seconds":%s,"checks":{"configured":%d,"interval_seconds":%d,"up":%d,"down":%d,"wall_seconds":%s,"cpu_percent":%s,"cpu_seconds":%s,"rss_kib":%s,"hwm_kib":%s,"window_hwm_kib":%s,"threads":%s,"fds":%s,"goroutines":%s,"nginx_requests":%d,"nginx_requests_expected":%s,"nginx_connections":%d,"nginx_reused_requests":%d,"established":%d,"nginx_cpu_percent":%s,"warnings":%d},' \
		"$window" "$warmup" "$nchecks" "$interval" "$chk_up" "$chk_down" "$chk_wall" "$chk_cpu" "$chk_cpu_s" "$chk_rss" "$chk_hwm" "$chk_whwm" "$chk_threads" "$chk_fds" "${chk_goroutines:-null}" \
		"$chk_req" "$chk_expect" "$chk_conns" "$chk_reused" "$chk_estab" "$chk_nginx_cpu" "$chk_warn" >"$json_out"
	printf '"sample":{"go_count":%d,"sample_ns":%s,"sample_bytes":%s,"sample_allocs":%s,"collect_ns":%s,"collect_bytes":%s,"collect_allocs":%s,"scrapes":%d,' \
		"$count" "${gb[Sample,ns/op]/-/null}" "${gb[Sample,B/op]/-/null}" "${gb[Sample,allocs/op]/-/null}" "${gb[Collect,ns/op]/-/null}" "${gb[Collect,B/op]/-/null}" "${gb[Collect,allocs/op]/-/null}" "$nscrapes" >>"$json_out"
	printf '"bulwark_scrape":{"mean_ms":%s,"median_ms":%s,"cpu_ms":%s,"series":%s,"bytes":%s},"node_exporter_scrape":{"mean_ms":%s,"median_ms":%s,"cpu_ms":%s,"series":%s,"bytes":%s,"collectors_ms":%s}},' \
		"${sc[mb,mean]}" "${sc[mb,median]}" "${sc[mb,cpu]}" "${sc[mb,series]}" "${sc[mb,bytes]}" "${sc[ne,mean]}" "${sc[ne,median]}" "${sc[ne,cpu]}" "${sc[ne,series]}" "${sc[ne,bytes]}" "${sc[ne,collect]}" >>"$json_out"
	printf '"idle":{"wall_seconds":%s,"node_exporter_scrapes":%d,"bulwark":{"cpu_percent":%s,"rss_kib":%s,"hwm_kib":%s,"window_hwm_kib":%s,"threads":%s,"warnings":%d},"node_exporter":{"cpu_percent":%s,"rss_kib":%s,"hwm_kib":%s,"window_hwm_kib":%s,"threads":%s}}}\n' \
		"$idle_wall" "$idle_scrapes" "$idle_bw_cpu" "$idle_bw_rss" "$idle_bw_hwm" "$idle_bw_whwm" "$idle_bw_threads" "$idle_warn" "$idle_ne_cpu" "$idle_ne_rss" "$idle_ne_hwm" "$idle_ne_whwm" "$idle_ne_threads" >>"$json_out"
fi
log "done"
