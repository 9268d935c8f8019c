#!/usr/bin/env bash
# Side-by-side benchmark of the edge guard: nginx, a plain Go reverse proxy,
# the naive Coraza + CRS wrapper and `bulwark guard`, on loopback.
#
#   scripts/bench-guard.sh [MARKDOWN_OUT [JSON_OUT]]
#
# Prints a markdown fragment (tables and notes) to stdout and, when given, to
# MARKDOWN_OUT; writes the raw figures as JSON to JSON_OUT (default:
# MARKDOWN_OUT with .json, or $BENCH_DIR/guard-results.json). Progress goes
# to stderr. Exits non-zero when a component fails to start or a measurement
# fails (errors or non-2xx answers from wrk, a scenario that did not run);
# a target missed is a result, reported in the tables, not a failure.
#
# Environment:
#   BENCH_SECONDS         length of each wrk run (default 10)
#   BENCH_RUNS            wrk runs per row, interleaved; tables show medians (default 1;
#                         each extra run adds about 10 x BENCH_SECONDS)
#   BENCH_THREADS, BENCH_CONNS   wrk -t and -c (default 2 and 50)
#   BENCH_ATTACK_SECONDS  the well-behaved client's run, alone and under attack (default 15)
#   BENCH_ATTACK_RUNS     pairs of those runs, each with a fresh guard (default 3; about
#                         2 x BENCH_ATTACK_SECONDS + 6 s each)
#   BENCH_ATTACK_NICE     nice level of the attack driver (default 10; 0: same priority as the guard)
#   BENCH_SOURCES         distinct client addresses for the memory figure (default 100000)
#   BENCH_PROFILE         1: CPU-profile the two guards under wrk and add pprof summaries
#   BENCH_KEEP            1: keep the work directory (configurations, logs, raw results)
#   BENCH_DIR             where the default JSON_OUT goes (default /var/tmp/bulwark-bench)
#   BULWARK_BIN           bulwark binary (default: built from this checkout into the work directory)
#
# What runs (all on 127.0.0.0/8; every process is started here and stopped
# by its pid on exit):
#   upstream      nginx serving a 612-byte index.html (and a few static assets)
#                 and answering any POST with 200 "ok"; every proxy below forwards
#                 to it, and the first row measures it directly
#   nginx-proxy   nginx reverse proxy: limit_req per $binary_remote_addr (a rate
#                 that never triggers), upstream keepalive 64, HTTP/1.1 upstream,
#                 the client-address fields the guard sends (X-Forwarded-For,
#                 X-Real-IP, X-Forwarded-Proto, X-Forwarded-Host, Forwarded), as a
#                 production proxy sets them, so the upstream reads the same request
#                 from both
#   go-proxy      httputil.NewSingleHostReverseProxy, default transport
#                 (internal/guard/guardbench proxy)
#   coraza-naive  the same, wrapped in Coraza's txhttp middleware with the CRS
#                 as its README suggests (paranoia 1, SecRuleEngine On)
#   guard         bulwark guard: per-source rate, connection and in-progress
#                 limits that never trigger for wrk, a few hundred allow/deny entries
#   guard-crs     the same with waf: block at paranoia 1
# Each is measured with wrk -t2 -c50 GETting /index.html; the two WAF rows
# also on a GET-with-query + small-POST mix and on a page-load mix (Lua
# scripts written below). Then, against fresh guards: a well-behaved client
# alone and while a flooder (100x its rate limit) and a 1,000-connection
# slowloris attack from two other source addresses; and 100,000 distinct
# client addresses through a trusted proxy, for memory and table sizes.
set -euo pipefail
export LC_ALL=C
root=$(cd "$(dirname "$0")/.." && pwd)
export PATH=/usr/local/go/bin:$PATH

md_out=${1:-}
json_out=${2:-}
BENCH_DIR=${BENCH_DIR:-/var/tmp/bulwark-bench}
BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_RUNS=${BENCH_RUNS:-1}
BENCH_THREADS=${BENCH_THREADS:-2}
BENCH_CONNS=${BENCH_CONNS:-50}
BENCH_ATTACK_SECONDS=${BENCH_ATTACK_SECONDS:-15}
BENCH_ATTACK_RUNS=${BENCH_ATTACK_RUNS:-3}
BENCH_ATTACK_NICE=${BENCH_ATTACK_NICE:-10}
BENCH_SOURCES=${BENCH_SOURCES:-100000}
BENCH_PROFILE=${BENCH_PROFILE:-0}
BENCH_KEEP=${BENCH_KEEP:-0}
if [[ -z $json_out ]]; then
	if [[ -n $md_out ]]; then json_out=${md_out%.md}.json; else json_out=$BENCH_DIR/guard-results.json; fi
fi

log() { echo "bench-guard: $*" >&2; }
for v in BENCH_SECONDS BENCH_RUNS BENCH_THREADS BENCH_CONNS BENCH_ATTACK_SECONDS BENCH_ATTACK_RUNS BENCH_SOURCES; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || { log "$v must be a positive integer, got '${!v}'"; exit 2; }
done
[[ $BENCH_ATTACK_NICE =~ ^[0-9]+$ && $BENCH_ATTACK_NICE -le 19 ]] || { log "BENCH_ATTACK_NICE must be 0 to 19"; exit 2; }
for t in nginx wrk go timeout pgrep; do
	if ! command -v "$t" >/dev/null; then
		log "$t is missing (apt-get install -y nginx wrk; Go 1.26 in /usr/local/go)"
		exit 1
	fi
done

# Settings of the scenarios (the report quotes them).
host=bench.example
file_bytes=612
guard_conns=200              # per source at accept, and requests in progress per source (wrk uses 50)
attack_rate=50 attack_burst=100 attack_inflight=50
attack_conns=2000            # per source at accept: the guard must hold (or cut) all 1,000 slow connections
attack_max_conns=10000 attack_header=10s attack_trickle=2s
client_rate=40               # the well-behaved client, under its limit of 50/s
slow_conns=1000
mem_rate=1 mem_burst=1

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-guard.XXXXXX")
chmod 755 "$work" # nginx workers run as nobody and read the files below
declare -A pids   # name -> pid of every process started here
cleanup() {
	local name
	for name in "${!pids[@]}"; do stop "$name"; done
	if [[ $BENCH_KEEP == 1 ]]; then log "kept $work"; else rm -rf "$work"; fi
}
# running PID: the process exists and is not a zombie.
running() {
	local st
	st=$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n $st && $st != Z && $st != X ]]
}
# stop NAME: SIGTERM, up to 15 s to exit (the guard lets requests finish), then SIGKILL.
stop() {
	local pid=${pids[$1]:-} i
	[[ -n $pid ]] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 150; i++)); do running "$pid" || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	unset "pids[$1]"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# die MESSAGE [LOG]: fail loudly, with the end of the component's log.
die() {
	log "FAILED: $1"
	if [[ -n ${2:-} && -f $2 ]]; then
		log "last lines of $2:"
		tail -n 30 "$2" | sed 's/^/    /' >&2
	fi
	exit 1
}

# start NAME CMD...: runs CMD in the background, output to $work/NAME.log.
start() {
	local name=$1
	shift
	"$@" >"$work/$name.log" 2>&1 &
	pids[$name]=$!
}

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
(($(ulimit -n) >= 4096)) || log "warning: only $(ulimit -n) file descriptors; the slowloris needs more than $slow_conns"

# ---- build -----------------------------------------------------------------

commit=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
[[ -z $(git -C "$root" status --porcelain 2>/dev/null) ]] || commit+="-dirty"
BULWARK=${BULWARK_BIN:-}
if [[ -z $BULWARK ]]; then
	BULWARK=$work/bulwark
	log "building bulwark ($commit)"
	(cd "$root" && go build -ldflags "-X main.version=$commit" -o "$BULWARK" ./cmd/bulwark) >"$work/build.log" 2>&1 ||
		die "bulwark does not build" "$work/build.log"
	bulwark_version="bulwark $commit ($(go version | awk '{print $3}'))"
else
	[[ -x $BULWARK ]] || die "BULWARK_BIN=$BULWARK is not executable"
	bulwark_version=$("$BULWARK" version 2>/dev/null | head -n 1 || echo "$BULWARK")
fi
log "building the load driver (internal/guard/guardbench)"
GB=$work/guardbench
(cd "$root" && go build -o "$GB" ./internal/guard/guardbench) >"$work/build-gb.log" 2>&1 ||
	die "internal/guard/guardbench does not build" "$work/build-gb.log"
modver() { awk -v m="$1" '$1 == m { print $2; exit }' "$root/go.mod"; }

mapfile -t ports < <("$GB" ports 10)
((${#ports[@]} == 10)) || die "could not find free ports"
declare -A port=(
	[upstream]=${ports[0]} [nginx-proxy]=${ports[1]} [go-proxy]=${ports[2]} [coraza-naive]=${ports[3]}
	[guard]=${ports[4]} [guard-crs]=${ports[5]} [guard-attack]=${ports[6]} [guard-mem]=${ports[7]}
	[metrics-attack]=${ports[8]} [metrics-mem]=${ports[9]}
)
port[nginx-static]=${port[upstream]}

# ---- files -----------------------------------------------------------------

www=$work/www
mkdir -p "$www/static/css" "$www/static/js" "$www/static/fonts" "$www/img"
repeat() { # TEXT BYTES: TEXT repeated, cut to BYTES (no pipe: pipefail and SIGPIPE)
	awk -v t="$1" -v n="$2" 'BEGIN { s = ""; while (length(s) < n) s = s t; printf "%s", substr(s, 1, n) }'
}
page_top='<!DOCTYPE html>
<html>
<head>
<title>Welcome to bench.example</title>
</head>
<body>
<h1>Welcome</h1>
<p>'
page_end='</p>
</body>
</html>
'
{
	printf '%s' "$page_top"
	repeat 'Lorem ipsum dolor sit amet, consectetur adipiscing elit. ' $((file_bytes - ${#page_top} - ${#page_end}))
	printf '%s' "$page_end"
} >"$www/index.html"
[[ $(stat -c %s "$www/index.html") == "$file_bytes" ]] || die "index.html is not $file_bytes bytes"
repeat 'body { margin: 0; font: 16px/1.5 sans-serif; color: #222; }
' 2048 >"$www/static/css/site.css"
repeat 'document.querySelectorAll("a").forEach(function (a) { a.rel = "noopener"; });
' 6144 >"$www/static/js/app.js"
head -c 1536 /dev/urandom >"$www/img/logo.png"
head -c 4096 /dev/urandom >"$www/static/fonts/inter.woff2"
chmod -R a+rX "$www"

# nginx_conf NAME SERVER_BLOCK_AND_HTTP_EXTRAS: a whole nginx.conf in $work/NAME/.
nginx_conf() {
	local dir=$work/$1
	mkdir -p "$dir"
	chmod 755 "$dir"
	cat >"$dir/nginx.conf" <<EOF
worker_processes auto;
worker_rlimit_nofile 65536;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 16384; }
http {
    types { text/html html; text/css css; application/javascript js; image/png png; font/woff2 woff2; }
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
$2
}
EOF
}
nginx_conf upstream "
    server {
        listen 127.0.0.1:${port[upstream]} default_server;
        root $www;
        location / {
            # POST gets a short answer (nginx reads and discards the body);
            # any other path serves index.html, like a dynamic page.
            if (\$request_method = POST) { return 200 \"ok\\n\"; }
            try_files \$uri /index.html;
        }
    }"
nginx_conf nginx-proxy "
    limit_req_zone \$binary_remote_addr zone=perip:10m rate=1000000r/s;
    upstream backend {
        server 127.0.0.1:${port[upstream]};
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:${port[nginx-proxy]} default_server;
        location / {
            limit_req zone=perip burst=1000000 nodelay;
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Real-IP \$remote_addr;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$host;
            proxy_set_header Forwarded \"for=\$remote_addr;proto=\$scheme;host=\$host\";
        }
    }"

# Allow and deny lists: a few hundred CIDRs, IPv4 and IPv6, none of them
# covering 127.0.0.0/8 (an allowed client would skip every limit).
lists=$work/lists.yaml
{
	echo "  allow:"
	for ((i = 0; i < 40; i++)); do echo "    - 10.$i.0.0/16"; done
	for ((i = 0; i < 10; i++)); do printf '    - 2001:db8:a%x::/48\n' "$i"; done
	echo "  deny:"
	for ((i = 0; i < 240; i++)); do echo "    - 100.$((64 + i / 200)).$((i % 200)).0/24"; done
	for ((i = 0; i < 30; i++)); do echo "    - 192.0.2.$((i * 8))/29"; done
	for ((i = 0; i < 30; i++)); do printf '    - 2001:db8:d%x::/48\n' "$i"; done
} >"$lists"
n_allow=50 n_deny=300

# guard_conf NAME LISTEN LIMITS SITE_EXTRA [GUARD_EXTRA]
guard_conf() {
	cat >"$work/$1.yaml" <<EOF
log:
  level: warn
guard:
  listen: $2
  access_log: "off"
  limits: $3
$(cat "$lists")
${5:-}
  sites:
    - hosts: [$host]
      upstreams: ["http://127.0.0.1:${port[upstream]}"]
$4
EOF
	"$BULWARK" config check "$work/$1.yaml" >"$work/$1.check" 2>&1 || die "the $1 configuration does not validate" "$work/$1.check"
}
big="{rate: 1000000, burst: 1000000, connections: $guard_conns, max_connections: 10000}"
guard_conf guard "127.0.0.1:${port[guard]}" "$big" "      limits: {connections: $guard_conns}"
guard_conf guard-crs "127.0.0.1:${port[guard-crs]}" "$big" "      limits: {connections: $guard_conns}
      waf: block
      waf_options: {paranoia: 1}"
guard_conf guard-attack "127.0.0.1:${port[guard-attack]}" \
	"{rate: $attack_rate, burst: $attack_burst, connections: $attack_conns, max_connections: $attack_max_conns}" \
	"      limits: {connections: $attack_inflight}" "  timeouts: {header: $attack_header}"
guard_conf guard-mem "127.0.0.1:${port[guard-mem]}" \
	"{rate: $mem_rate, burst: $mem_burst, connections: $guard_conns, max_connections: 10000}" \
	"      limits: {connections: $guard_conns}" "  trusted_proxies: [127.0.0.1]"

# wrk scripts: browser-like headers; done() prints one JSON line.
cat >"$work/common.lua" <<EOF
wrk.headers["Host"] = "$host"
wrk.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
wrk.headers["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
wrk.headers["Accept-Language"] = "en-US,en;q=0.9"
wrk.headers["Cookie"] = "session=4f2a9c0e77b1d3a5; theme=dark; consent=1"
wrk.headers["Referer"] = "https://$host/products"

-- with_headers returns wrk.headers plus extra (wrk.format replaces, not merges).
function with_headers(extra)
   local h = {}
   for k, v in pairs(wrk.headers) do h[k] = v end
   for k, v in pairs(extra or {}) do h[k] = v end
   return h
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%.0f,"p90_us":%.0f,"p99_us":%.0f,"max_us":%.0f,"mean_us":%.1f}\n',
      summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
EOF
cp "$work/common.lua" "$work/get.lua"
{
	cat "$work/common.lua"
	cat <<'EOF'
local reqs, i = {}, 0
function init(args)
   local form = with_headers({["Content-Type"] = "application/x-www-form-urlencoded"})
   reqs = {
      wrk.format("GET", "/index.html?q=summer+dress&page=2", with_headers()),
      wrk.format("POST", "/post", form, "name=alice&comment=nice+dress&rating=5"),
   }
end
function request()
   i = i + 1
   return reqs[i % #reqs + 1]
end
EOF
} >"$work/mix.lua"
{
	cat "$work/common.lua"
	cat <<'EOF'
local reqs, i = {}, 0
function init(args)
   local form = with_headers({["Content-Type"] = "application/x-www-form-urlencoded"})
   local json = with_headers({["Content-Type"] = "application/json"})
   reqs = {
      wrk.format("GET", "/products/view?id=42&sort=price&q=red+shoes", with_headers()),
      wrk.format("GET", "/static/css/site.css?v=3.1.4", with_headers()),
      wrk.format("GET", "/static/js/app.js?v=3.1.4", with_headers()),
      wrk.format("GET", "/img/logo.png", with_headers()),
      wrk.format("POST", "/cart/add", form, "item=42&qty=1&note=gift+wrap+please"),
      wrk.format("GET", "/search?q=summer+dress&page=2", with_headers()),
      wrk.format("GET", "/static/fonts/inter.woff2", with_headers()),
      wrk.format("POST", "/api/v1/events", json, '{"type":"view","item":42,"ref":"home"}'),
   }
end
function request()
   i = i + 1
   return reqs[i % #reqs + 1]
end
EOF
} >"$work/page.lua"

# ---- servers ---------------------------------------------------------------

# ready NAME ROW-PORT [TIMEOUT]: waits for 200 and the whole file, or dies.
ready() {
	"$GB" ready -name "$1" -pid "${pids[$1]}" -url "http://127.0.0.1:$2/index.html" -host "$host" -size "$file_bytes" -timeout "${3:-60s}" 2>"$work/$1.ready" ||
		die "$(cat "$work/$1.ready")" "$work/$1.log"
}
start_nginx() { # NAME
	start "$1" nginx -c "$work/$1/nginx.conf" -p "$work/$1" -e "$work/$1/error.log" -g 'daemon off;'
}
start_guard() { # NAME [METRICS_PORT]
	local args=(guard --config "$work/$1.yaml")
	[[ -n ${2:-} ]] && args+=(--metrics "127.0.0.1:$2")
	local env=()
	[[ $BENCH_PROFILE == 1 && ($1 == guard || $1 == guard-crs) ]] && env=(BULWARK_CPUPROFILE="$work/cpu-$1.prof")
	start "$1" env "${env[@]}" "$BULWARK" "${args[@]}"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
start_time=$(date +%s)
log "starting the upstream, nginx reverse proxy, Go proxy, naive Coraza wrapper and two guards"
start_nginx upstream
ready upstream "${port[upstream]}"
start_nginx nginx-proxy
start go-proxy "$GB" proxy -listen "127.0.0.1:${port[go-proxy]}" -upstream "http://127.0.0.1:${port[upstream]}"
start coraza-naive "$GB" proxy -coraza -listen "127.0.0.1:${port[coraza-naive]}" -upstream "http://127.0.0.1:${port[upstream]}"
start_guard guard
start_guard guard-crs
for name in nginx-proxy go-proxy coraza-naive guard guard-crs; do ready "$name" "${port[$name]}"; done

# ---- throughput ------------------------------------------------------------

measures=(
	nginx-static:get nginx-proxy:get go-proxy:get coraza-naive:get guard:get guard-crs:get
	coraza-naive:mix guard-crs:mix coraza-naive:page guard-crs:page
)
server_of() { [[ $1 == nginx-static ]] && echo upstream || echo "$1"; }
wrk_run() { # ROW MODE SECONDS OUT
	timeout $(($3 + 60)) wrk -t"$BENCH_THREADS" -c"$BENCH_CONNS" -d"$3"s --timeout 5s -s "$work/$2.lua" \
		"http://127.0.0.1:${port[$1]}/index.html" >"$4" 2>&1
}
log "warming up (1 s of wrk each)"
for m in "${measures[@]}"; do
	wrk_run "${m%%:*}" "${m##*:}" 1 "$work/warmup.out" || die "wrk failed against ${m%%:*}" "$work/warmup.out"
done
: >"$work/wrk.jsonl"
for ((r = 1; r <= BENCH_RUNS; r++)); do
	for m in "${measures[@]}"; do
		row=${m%%:*} mode=${m##*:} out=$work/wrk-$row-$mode-$r.out
		srv=$(server_of "$row")
		rc=0
		wrk_run "$row" "$mode" "$BENCH_SECONDS" "$out" || rc=$?
		line=$(grep '^WRKJSON ' "$out" | tail -n 1 | cut -d' ' -f2- || true)
		if ((rc != 0)) || [[ -z $line ]]; then
			err="wrk exit status $rc: $(grep -v '^WRKJSON' "$out" | tail -n 1 | tr -d '"\\')"
			printf '{"row":"%s","mode":"%s","run":%d,"error":"%s"}\n' "$row" "$mode" "$r" "$err" >>"$work/wrk.jsonl"
			log "run $r/$BENCH_RUNS: $row $mode: $err"
		else
			printf '{"row":"%s","mode":"%s","run":%d,"wrk":%s}\n' "$row" "$mode" "$r" "$line" >>"$work/wrk.jsonl"
			log "run $r/$BENCH_RUNS: $row $mode: $(awk -F'[:,{}]' '{
				for (i = 2; i < NF; i += 2) v[$i] = $(i + 1)
				printf "%.0f req/s, p50 %.2f ms, p99 %.2f ms, %d non-2xx", v["\"requests\""] / v["\"duration_us\""] * 1e6,
					v["\"p50_us\""] / 1000, v["\"p99_us\""] / 1000, v["\"status_errors\""] }' <<<"$line")"
		fi
		running "${pids[$srv]}" || die "$srv exited during the measurement of $row $mode" "$work/$srv.log"
	done
done

# Peak memory of each server (nginx: master and workers added up).
: >"$work/rss.jsonl"
for row in nginx-static nginx-proxy go-proxy coraza-naive guard guard-crs; do
	pid=${pids[$(server_of "$row")]}
	procs=("$pid")
	[[ $row == nginx-* ]] && mapfile -t -O 1 procs < <(pgrep -P "$pid")
	kib=0
	for p in "${procs[@]}"; do
		k=$(awk '/^VmHWM:/ { print $2 }' "/proc/$p/status" 2>/dev/null || true)
		kib=$((kib + ${k:-0}))
	done
	printf '{"row":"%s","hwm_kib":%d,"procs":%d}\n' "$row" "$kib" "${#procs[@]}" >>"$work/rss.jsonl"
done
for name in nginx-proxy go-proxy coraza-naive guard guard-crs; do stop "$name"; done
if [[ $BENCH_PROFILE == 1 ]]; then
	for name in guard guard-crs; do
		if [[ -s $work/cpu-$name.prof ]]; then
			go tool pprof -top -nodecount=30 "$BULWARK" "$work/cpu-$name.prof" 2>/dev/null |
				sed -n '/^Showing\|flat%/,$p' >"$work/profile-$name.txt" || true
		else
			log "no CPU profile from $name"
		fi
	done
fi

# ---- under attack ----------------------------------------------------------

log "under attack: $BENCH_ATTACK_RUNS runs of the well-behaved client alone for ${BENCH_ATTACK_SECONDS}s, then under attack"
target="http://127.0.0.1:${port[guard-attack]}/index.html"
client() { # OUT-NAME
	"$GB" client -url "$target" -host "$host" -source 127.0.0.4 -rate "$client_rate" -duration "${BENCH_ATTACK_SECONDS}s" \
		-size "$file_bytes" -out "$work/$1.json" 2>"$work/$1.error" && rm -f "$work/$1.error"
}
ramp=3
for ((r = 1; r <= BENCH_ATTACK_RUNS; r++)); do
	log "  run $r/$BENCH_ATTACK_RUNS"
	start_guard guard-attack "${port[metrics-attack]}"
	ready guard-attack "${port[guard-attack]}"
	sleep 1 # the readiness probe's source (127.0.0.1) is not one of the three
	client "client-quiet-$r" || log "the quiet client failed: $(cat "$work/client-quiet-$r.error")"
	# The attacker runs at a lower CPU priority: on one machine its own CPU
	# would count against the guard, which a remote attacker's does not. The
	# guard's work answering the flood still counts.
	start attack nice -n "$BENCH_ATTACK_NICE" "$GB" attack -url "$target" -host "$host" -flood-source 127.0.0.2 -flood-rate $((100 * attack_rate)) -flood-conns 16 \
		-slow-source 127.0.0.3 -slow-conns "$slow_conns" -trickle "$attack_trickle" -duration "$((ramp + BENCH_ATTACK_SECONDS + 1))s" \
		-metrics "http://127.0.0.1:${port[metrics-attack]}/metrics" -pid "${pids[guard-attack]}" -out "$work/attack-$r.json"
	sleep "$ramp"
	client "client-attack-$r" || log "the client under attack failed: $(cat "$work/client-attack-$r.error")"
	rc=0
	wait "${pids[attack]}" || rc=$?
	unset "pids[attack]"
	if ((rc != 0)); then
		tail -n 5 "$work/attack.log" >"$work/attack-$r.error"
		log "the attack driver failed (exit status $rc): $(cat "$work/attack-$r.error")"
	fi
	running "${pids[guard-attack]}" || die "the guard exited during the attack" "$work/guard-attack.log"
	stop guard-attack
done

# ---- memory with many sources ----------------------------------------------

log "memory: $BENCH_SOURCES distinct client addresses through a trusted proxy"
start_guard guard-mem "${port[metrics-mem]}"
ready guard-mem "${port[guard-mem]}"
"$GB" sources -url "http://127.0.0.1:${port[guard-mem]}/index.html" -host "$host" -n "$BENCH_SOURCES" \
	-metrics "http://127.0.0.1:${port[metrics-mem]}/metrics" -pid "${pids[guard-mem]}" -out "$work/sources.json" 2>"$work/sources.log" || {
	cp "$work/sources.log" "$work/sources.error"
	rm -f "$work/sources.json"
	log "the memory scenario failed: $(cat "$work/sources.error")"
}
running "${pids[guard-mem]}" || die "the guard exited during the memory scenario" "$work/guard-mem.log"
stop guard-mem
stop upstream

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
log "measurements took $(($(date +%s) - start_time))s; load average before: $load_before, after: $load_after"

# ---- report ----------------------------------------------------------------

facts=(
	cores="$(nproc)"
	cpu="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //' || uname -m)"
	memory="$(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo)"
	kernel="$(uname -r)"
	load_before="${load_before%% *}" load_after="${load_after%% *}"
	bulwark="$bulwark_version"
	nginx="$(nginx -v 2>&1 | sed 's/^nginx version: //')"
	wrk="$(wrk -v 2>&1 | head -n 1 | awk '{ print $1, $2 }')"
	coraza="$(modver github.com/corazawaf/coraza/v3)" crs="$(modver github.com/corazawaf/coraza-coreruleset/v4)"
	seconds="$BENCH_SECONDS" runs="$BENCH_RUNS" threads="$BENCH_THREADS" conns="$BENCH_CONNS"
	upstream_workers="$(nproc)" file_bytes="$file_bytes" guard_conns="$guard_conns" allow="$n_allow" deny="$n_deny"
	attack_rate="$attack_rate" attack_burst="$attack_burst" attack_inflight="$attack_inflight" attack_conns="$attack_conns"
	attack_max_conns="$attack_max_conns" attack_header="$attack_header" attack_trickle="$attack_trickle"
	attack_nice="$BENCH_ATTACK_NICE" mem_rate="$mem_rate" mem_burst="$mem_burst" max_sources=200,000
)
fact_args=()
for f in "${facts[@]}"; do fact_args+=(-fact "$f"); done
mkdir -p "$(dirname "$json_out")"
rc=0
"$GB" report -dir "$work" -md "$work/table.md" -json "$json_out" "${fact_args[@]}" || rc=$?
[[ -s $work/table.md ]] || die "the report step wrote nothing (exit status $rc)"
if [[ -n $md_out ]]; then
	mkdir -p "$(dirname "$md_out")"
	cp "$work/table.md" "$md_out"
fi
cat "$work/table.md"
log "wrote $json_out${md_out:+ and $md_out}"
if ((rc != 0)); then
	log "some measurements failed (see Failures above); exit status 1"
	exit 1
fi
