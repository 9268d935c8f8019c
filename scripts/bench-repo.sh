#!/usr/bin/env bash
# Side-by-side backup benchmark: Bulwark, restic and borg on the same corpus.
#
#   scripts/bench-repo.sh [MARKDOWN_OUT [JSON_OUT]]
#
# Prints a markdown fragment (tables and notes) to stdout and, when given, to
# MARKDOWN_OUT; writes the raw figures as JSON to JSON_OUT (default:
# MARKDOWN_OUT with .json, or $BENCH_DIR/results.json). Progress goes to stderr.
#
# Environment:
#   BENCH_DIR     work directory, on a real disk, not tmpfs (default /var/tmp/bulwark-bench)
#   BENCH_CORPUS  corpus directory, built by scripts/corpus.sh when incomplete
#                 (default $BENCH_DIR/corpus; kept between runs)
#   BENCH_RUNS    repetitions of every measurement; the table shows medians (default 3)
#   BENCH_TOOLS   tools to compare (default "bulwark restic borg"); a missing one is skipped
#   BULWARK_BIN   bulwark binary (default: built from this checkout into the work directory)
#
# Every repetition, for every tool: copy the pristine corpus to one fixed path
# ($BENCH_DIR/data, so every tool and run backs up the same path), read it once
# to warm the page cache, init a fresh repository and cache, then time with
# /usr/bin/time (wall seconds, peak RSS):
#   first      first backup of the corpus
#   unchanged  second backup, nothing changed (parent/files cache in use)
#   changed    third backup after scripts/corpus.sh --mutate changed 1% of the files
#   restore    restore of that last snapshot into an empty directory
# then measure the repository size (du -sb) and, in the first repetition,
# compare the restored tree with the data (diff -r --no-dereference).
# Caches live in the work directory (XDG_CACHE_HOME, BULWARK_CACHE_DIR, RESTIC_CACHE_DIR,
# BORG_CACHE_DIR/BORG_CONFIG_DIR/BORG_SECURITY_DIR), fresh per repository.
# Settings: restic repository version 2 (compression auto = zstd level 3),
# borg -e repokey --compression lz4 (borg's default), bulwark defaults.
set -euo pipefail
export LC_ALL=C
root=$(cd "$(dirname "$0")/.." && pwd)
export PATH=/usr/local/go/bin:$PATH

md_out=${1:-}
json_out=${2:-}
BENCH_DIR=${BENCH_DIR:-/var/tmp/bulwark-bench}
BENCH_CORPUS=${BENCH_CORPUS:-$BENCH_DIR/corpus}
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_TOOLS=${BENCH_TOOLS:-bulwark restic borg}
if [[ -z $json_out ]]; then
	if [[ -n $md_out ]]; then json_out=${md_out%.md}.json; else json_out=$BENCH_DIR/results.json; fi
fi
[[ $BENCH_RUNS =~ ^[1-9][0-9]*$ ]] || { echo "bench-repo: BENCH_RUNS must be a positive integer" >&2; exit 2; }

log() { echo "bench-repo: $*" >&2; }

[[ -x /usr/bin/time ]] || { log "/usr/bin/time is missing (apt-get install -y time)"; exit 1; }
mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
fstype=$(stat -f -c %T "$BENCH_DIR")
if [[ $fstype == tmpfs || $fstype == ramfs ]]; then
	log "warning: $BENCH_DIR is on $fstype; results will not reflect disk I/O (set BENCH_DIR)"
fi

work=$(mktemp -d "$BENCH_DIR/run.XXXXXX")
data=$BENCH_DIR/data # fixed path: the same for every tool and repetition
mnt=$work/restore-fs
cleanup() {
	mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"
	rm -rf "$work" "$data"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$root/scripts/corpus.sh" "$BENCH_CORPUS" >/dev/null
corpus_files=$(find "$BENCH_CORPUS" -mindepth 1 \( -path "$BENCH_CORPUS/.*" -prune \) -o -type f -print | wc -l)
corpus_bytes=$(find "$BENCH_CORPUS" -mindepth 1 \( -path "$BENCH_CORPUS/.*" -prune \) -o -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
random_bytes=$(find "$BENCH_CORPUS/random" -type f -printf '%s\n' 2>/dev/null | awk '{s += $1} END {print s + 0}')

# ---- tools ---------------------------------------------------------------

password=bulwark-bench-password
declare -A version
tools=()
for t in $BENCH_TOOLS; do
	case $t in
	bulwark)
		bin=${BULWARK_BIN:-}
		if [[ -z $bin ]]; then
			bin=$work/bulwark
			commit=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
			[[ -z $(git -C "$root" status --porcelain 2>/dev/null) ]] || commit+="-dirty"
			log "building bulwark ($commit)"
			if ! (cd "$root" && go build -ldflags "-X main.version=$commit" -o "$bin.linked" ./cmd/bulwark) >"$work/build.log" 2>&1; then
				log "bulwark does not build; skipping it:"
				sed 's/^/    /' "$work/build.log" >&2
				continue
			fi
			# Installed by copying, as a package manager installs restic and
			# borg. The Go linker writes its output through a memory map,
			# which leaves the new file's page cache in 2 MiB folios that
			# the kernel maps whole into every process running it: about
			# 12 MiB more file-backed RSS (34 MiB instead of 22) than the
			# same binary once copied or read back from disk.
			cp "$bin.linked" "$bin" && rm -f "$bin.linked"
		fi
		if [[ ! -x $bin ]]; then log "bulwark: $bin is not executable; skipping it"; continue; fi
		BULWARK=$bin
		if [[ -n ${commit:-} ]]; then
			version[bulwark]="bulwark $commit ($(go version 2>/dev/null | awk '{print $3}'))"
		else
			version[bulwark]=$("$bin" version 2>/dev/null | head -n 1 || true)
			version[bulwark]=${version[bulwark]:-$bin}
		fi
		;;
	restic)
		if ! command -v restic >/dev/null; then log "restic is missing (apt-get install -y restic); skipping it"; continue; fi
		version[restic]=$(restic version | head -1)
		;;
	borg)
		if ! command -v borg >/dev/null; then log "borg is missing (apt-get install -y borgbackup); skipping it"; continue; fi
		version[borg]=$(borg --version | head -1)
		;;
	*)
		log "unknown tool $t (known: bulwark restic borg); skipping it"
		continue
		;;
	esac
	tools+=("$t")
done
((${#tools[@]} > 0)) || { log "no tool to benchmark"; exit 1; }

# tool_env TOOL REPO CACHE: the environment every command of TOOL runs with.
tool_env() {
	local cache=$3
	echo "XDG_CACHE_HOME=$cache"
	case $1 in
	bulwark)
		echo "BULWARK_PASSWORD=$password"
		echo "BULWARK_CACHE_DIR=$cache/bulwark"
		;;
	restic)
		echo "RESTIC_PASSWORD=$password"
		echo "RESTIC_CACHE_DIR=$cache/restic"
		;;
	borg)
		echo "BORG_PASSPHRASE=$password"
		echo "BORG_DISPLAY_PASSPHRASE=no"
		echo "BORG_BASE_DIR=$cache/base"
		echo "BORG_CACHE_DIR=$cache/borg"
		echo "BORG_CONFIG_DIR=$cache/config"
		echo "BORG_SECURITY_DIR=$cache/security"
		echo "BORG_KEYS_DIR=$cache/keys"
		;;
	esac
}

# cmd_for TOOL OP REPO N TARGET: prints the command line (NUL-separated).
cmd_for() {
	local tool=$1 op=$2 repo=$3 n=$4 target=$5
	case $tool:$op in
	bulwark:init) printf '%s\0' "$BULWARK" repo init --repo "$repo" ;;
	bulwark:backup) printf '%s\0' "$BULWARK" backup --repo "$repo" --host bench --json "$data" ;;
	bulwark:restore) printf '%s\0' "$BULWARK" restore --repo "$repo" latest --target "$target" ;;
	restic:init) printf '%s\0' restic init --repo "$repo" --repository-version 2 ;;
	restic:backup) printf '%s\0' restic backup --repo "$repo" --host bench -q "$data" ;;
	restic:restore) printf '%s\0' restic restore --repo "$repo" latest --target "$target" ;;
	borg:init) printf '%s\0' borg init -e repokey "$repo" ;;
	borg:backup) printf '%s\0' borg create --compression lz4 "$repo::backup-$n" "$data" ;;
	borg:restore) printf '%s\0' borg extract "$repo::backup-$n" ;; # runs in TARGET
	esac
}

declare -A secs rss cpu size cachesize verified failed
# run TOOL OP KEY REPO CACHE N TARGET: runs one command; records time and RSS under KEY.
run() {
	local tool=$1 op=$2 key=$3 repo=$4 cache=$5 n=$6 target=$7
	local -a cmd envs
	mapfile -d '' cmd < <(cmd_for "$tool" "$op" "$repo" "$n" "$target")
	mapfile -t envs < <(tool_env "$tool" "$repo" "$cache")
	local dir=$work
	[[ $tool:$op == borg:restore ]] && dir=$target
	local out=$work/$key.out errf=$work/$key.err tf=$work/$key.time
	sync # earlier steps' writes must not be flushed during this one
	local rc=0
	(cd "$dir" && env "${envs[@]}" /usr/bin/time -f '%e %M %U %S' -o "$tf" "${cmd[@]}" >"$out" 2>"$errf") || rc=$?
	if ((rc != 0)); then
		log "$tool $op failed (exit status $rc): ${cmd[*]}"
		tail -n 20 "$errf" | sed 's/^/    /' >&2
		local last
		last=$(grep -v '^[[:space:]]*$' "$errf" | tail -n 1 || true)
		failed[$tool]="$op: exit status $rc${last:+: $last}"
		return 1
	fi
	[[ $op == init ]] && return 0
	local s m u k
	read -r s m u k < <(tail -n 1 "$tf")
	secs[$key]=$s
	rss[$key]=$m
	cpu[$key]=$(awk -v u="$u" -v k="$k" 'BEGIN { printf "%.2f", u + k }')
	log "  $key: ${s}s wall, ${cpu[$key]}s CPU, $((m / 1024)) MiB"
}

page_cache_note() { # whether the corpus really stays in the page cache
	# A DAMON "pageout" scheme (some VM platforms run one to hand memory
	# back to the host) reclaims pages that were idle for a while, page
	# cache included, so part of the corpus is read from disk again in
	# every run whatever the warm-up; the note says so, with the idle age.
	local k d age aggr
	for k in /sys/kernel/mm/damon/admin/kdamonds/*; do
		[[ $(cat "$k/state" 2>/dev/null) == on ]] || continue
		for d in "$k"/contexts/*/schemes/*; do
			[[ $(cat "$d/action" 2>/dev/null) == pageout ]] || continue
			age=$(cat "$d/access_pattern/age/min" 2>/dev/null || echo 0)
			aggr=$(cat "$d/../../monitoring_attrs/intervals/aggr_us" 2>/dev/null || echo 0)
			echo "page cache warmed, but DAMON pageout (a kernel daemon of this VM) reclaims pages idle for $((age * aggr / 1000000)) s, so runs read part of the corpus from disk"
			return
		done
	done
	echo "page cache warm"
}

prepare_data() { # fresh copy of the pristine corpus at $data, read once
	if command -v rsync >/dev/null; then
		rsync -a --delete --exclude='/.*' "$BENCH_CORPUS/" "$data/"
	else
		rm -rf "$data"
		mkdir -p "$data"
		(cd "$BENCH_CORPUS" && tar --exclude='./.*' -cf - .) | (cd "$data" && tar -xf -)
	fi
	sync # the copy's writes must not be flushed during a measurement
	# Read everything once so every tool starts with the same warm page cache.
	# (tar cf /dev/null would not read: GNU tar skips file data for /dev/null.)
	find "$data" -type f -print0 | xargs -0 cat >/dev/null
}

# Every restore goes to a freshly made ext4 file system (a loop-mounted
# image in the work directory) when this runs as root. On a file system
# where a large tree was just deleted, ext4 passes over every inode freed in
# the last minutes while its inode-table block is still dirty
# (recently_deleted() in fs/ext4/ialloc.c), once per file created: a restore
# after the previous run's cleanup then spends most of its time in the
# kernel, and by how much depends on the deletes before it, not the tool
# (measured: bulwark 1.7 s -> 11.7 s, restic 3.2 s -> 17 s).
restore_fs=$fstype
fresh_target() { # prints a new, empty restore directory
	if mountpoint -q "$mnt" 2>/dev/null; then umount "$mnt"; fi
	if [[ $restore_fs == ext4-fresh ]]; then
		rm -f "$work/restore.img"
		truncate -s 3G "$work/restore.img"
		mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$work/restore.img" >&2
		mkdir -p "$mnt"
		mount -o loop "$work/restore.img" "$mnt"
		echo "$mnt/restore"
	else
		rm -rf "$work/restore"
		echo "$work/restore"
	fi
}
if [[ $(id -u) == 0 ]] && command -v mkfs.ext4 >/dev/null && command -v mountpoint >/dev/null; then
	restore_fs=ext4-fresh
	if ! t=$(fresh_target 2>"$work/mkfs.err"); then
		log "cannot mount a fresh ext4 image for restores ($(head -n 1 "$work/mkfs.err")); restoring into $BENCH_DIR"
		restore_fs=$fstype
	fi
fi

ops=(first unchanged changed restore)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
start_time=$(date +%s)
for ((r = 1; r <= BENCH_RUNS; r++)); do
	for tool in "${tools[@]}"; do
		[[ -n ${failed[$tool]:-} ]] && continue
		log "run $r/$BENCH_RUNS: $tool"
		prepare_data
		repo=$work/repo-$tool cache=$work/cache-$tool
		rm -rf "$repo" "$cache"
		mkdir -p "$cache"
		run "$tool" init "$tool:init:$r" "$repo" "$cache" 0 "" || continue
		run "$tool" backup "$tool:first:$r" "$repo" "$cache" 1 "" || continue
		run "$tool" backup "$tool:unchanged:$r" "$repo" "$cache" 2 "" || continue
		"$root/scripts/corpus.sh" --mutate "$data" 2>/dev/null
		sync # the mutation's writes must not be flushed during the measurement
		run "$tool" backup "$tool:changed:$r" "$repo" "$cache" 3 "" || continue
		target=$(fresh_target)
		mkdir -p "$target"
		sync
		run "$tool" restore "$tool:restore:$r" "$repo" "$cache" 3 "$target" || continue
		size[$tool:$r]=$(du -sb "$repo" | cut -f1)
		cachesize[$tool:$r]=$(du -sb "$cache" | cut -f1)
		if ((r == 1)); then
			if [[ -d $target$data ]] && diff -r --no-dereference "$data" "$target$data" >"$work/diff.out" 2>&1; then
				verified[$tool]=OK
			else
				verified[$tool]="FAIL ($(head -n 1 "$work/diff.out" 2>/dev/null || echo "no $target$data"))"
				log "$tool: restored tree differs from the data:"
				head -n 10 "$work/diff.out" >&2 || true
			fi
			if [[ $tool == bulwark ]]; then
				for o in first unchanged changed; do
					cp "$work/$tool:$o:$r.out" "$work/bulwark-$o.json" 2>/dev/null || true
				done
			fi
		fi
		rm -rf "$target"
		log "  repo $(( ${size[$tool:$r]} / 1000000 )) MB, cache $(( ${cachesize[$tool:$r]} / 1000000 )) MB, restore ${verified[$tool]:-not checked}"
	done
done

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$(($(date +%s) - start_time))
log "measurements took ${elapsed}s; load average before: $load_before, after: $load_after"

# ---- figures -------------------------------------------------------------

median() { # numbers on stdin -> median (mean of the middle two for an even count)
	sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) exit; if (NR % 2) printf "%.2f\n", v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
values() { # TOOL OP ARRAY: the values of all repetitions
	local -n a=$3
	local i
	for ((i = 1; i <= BENCH_RUNS; i++)); do
		[[ -n ${a[$1:$2:$i]:-} ]] && echo "${a[$1:$2:$i]}"
	done
	return 0
}
sizes() { # TOOL ARRAY
	local -n a=$2
	local i
	for ((i = 1; i <= BENCH_RUNS; i++)); do
		[[ -n ${a[$1:$i]:-} ]] && echo "${a[$1:$i]}"
	done
	return 0
}
complete() { [[ -z ${failed[$1]:-} ]] && [[ -n ${size[$1:1]:-} ]]; }

declare -A med medcpu peak
for tool in "${tools[@]}"; do
	complete "$tool" || continue
	for op in "${ops[@]}"; do
		med[$tool:$op]=$(values "$tool" "$op" secs | median)
		medcpu[$tool:$op]=$(values "$tool" "$op" cpu | median)
		peak[$tool:$op]=$(values "$tool" "$op" rss | sort -n | tail -n 1)
	done
	med[$tool:size]=$(sizes "$tool" size | median)
	med[$tool:cache]=$(sizes "$tool" cachesize | median)
	peak[$tool]=$(for op in "${ops[@]}"; do echo "${peak[$tool:$op]}"; done | sort -n | tail -n 1)
done

ratio() { # BASE VALUE SMALLER-WORD LARGER-WORD: "2.7x faster" style, BASE/VALUE
	awk -v b="$1" -v v="$2" -v s="$3" -v l="$4" 'BEGIN {
		if (v <= 0 || b <= 0) { print "-"; exit }
		r = b / v
		if (r >= 1) printf "%.1fx %s\n", r, s; else printf "%.1fx %s\n", 1 / r, l }'
}
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }
cell() { # TOOL OP: "median" or, with several runs, "median (min-max)"
	local v
	v=$(values "$1" "$2" secs | sort -g | sed -n '1p;$p' | paste -sd' ' -)
	if ((BENCH_RUNS > 1)); then
		awk -v m="${med[$1:$2]}" -v r="$v" 'BEGIN { split(r, a, " "); printf "%.2f (%.2f-%.2f)", m, a[1], a[2] }'
	else
		printf '%s' "${med[$1:$2]}"
	fi
}
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }

{
	echo "Corpus: $corpus_files files, $(mb "$corpus_bytes") MB ($(awk -v r="$random_bytes" -v t="$corpus_bytes" 'BEGIN { printf "%.0f", 100 * r / t }')% incompressible random bytes; copies of /usr/local/go, /usr/share/doc, /usr/lib/python3*; built by scripts/corpus.sh)."
	echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //' || uname -m), $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r), work dir on $fstype; $(page_cache_note); load average ${load_before%% *} before, ${load_after%% *} after (other work on the machine inflates times)."
	printf 'Versions:'
	for tool in "${tools[@]}"; do printf ' %s;' "${version[$tool]}"; done
	echo
	echo "Settings: restic repository v2 (compression auto); borg -e repokey, --compression lz4 (its default); bulwark defaults. Each tool backs up the same path with its default cache in a fresh directory."
	echo "Times are wall seconds, the median of $BENCH_RUNS run(s)$( ((BENCH_RUNS > 1)) && echo ' (min-max in brackets)'), each step started after sync; restore time excludes flushing the restored files to disk. Restores go to $( [[ $restore_fs == ext4-fresh ]] && echo "a freshly made ext4 file system (loop image) each time, so earlier deletes do not slow inode allocation (see scripts/bench-repo.sh)" || echo "the work directory ($restore_fs)"). Peak is the largest RSS of any run; 1% changed = $(((corpus_files) / 100)) files with a line inserted in the middle (scripts/corpus.sh --mutate)."
	echo
	echo "| tool | first backup s | unchanged re-run s | 1% changed re-run s | restore s | repo MB | peak MiB |"
	echo "|---|---|---|---|---|---|---|"
	for tool in "${tools[@]}"; do
		if ! complete "$tool"; then
			echo "| $tool | failed: ${failed[$tool]//|/\\|} | | | | | |"
			continue
		fi
		echo "| $tool | $(cell "$tool" first) | $(cell "$tool" unchanged) | $(cell "$tool" changed) | $(cell "$tool" restore) | $(mb "${med[$tool:size]}") | $(mib "${peak[$tool]}") |"
	done
	if complete restic 2>/dev/null && [[ " ${tools[*]} " == *" restic "* ]]; then
		others=()
		for tool in "${tools[@]}"; do [[ $tool != restic ]] && complete "$tool" && others+=("$tool"); done
		if ((${#others[@]} > 0)); then
			echo
			echo "| compared with restic | first backup | unchanged re-run | 1% changed re-run | restore | repo size | peak memory |"
			echo "|---|---|---|---|---|---|---|"
			for tool in "${others[@]}"; do
				printf '| %s |' "$tool"
				for op in "${ops[@]}"; do printf ' %s |' "$(ratio "${med[restic:$op]}" "${med[$tool:$op]}" faster slower)"; done
				printf ' %s |' "$(ratio "${med[restic:size]}" "${med[$tool:size]}" smaller larger)"
				printf ' %s |\n' "$(ratio "${peak[restic]}" "${peak[$tool]}" less more)"
			done
		fi
	fi
	echo
	echo "Per step: CPU seconds (user + system, median; less sensitive to other load than wall time) / peak RSS MiB; and the tool's cache size after the runs."
	echo
	echo "| tool | first backup | unchanged re-run | 1% changed re-run | restore | cache MB |"
	echo "|---|---|---|---|---|---|"
	for tool in "${tools[@]}"; do
		complete "$tool" || continue
		printf '| %s |' "$tool"
		for op in "${ops[@]}"; do printf ' %s s / %s MiB |' "${medcpu[$tool:$op]}" "$(mib "${peak[$tool:$op]}")"; done
		echo " $(mb "${med[$tool:cache]}") |"
	done
	echo
	printf 'Restore check (diff -r of the restored tree against the backed-up data):'
	for tool in "${tools[@]}"; do complete "$tool" && printf ' %s %s;' "$tool" "${verified[$tool]:-not checked}"; done
	echo
} >"$work/table.md"

# ---- JSON ----------------------------------------------------------------

jstr() { # JSON string
	local s=${1//\\/\\\\}
	s=${s//\"/\\\"}
	s=${s//$'\t'/ }
	s=${s//$'\n'/ }
	printf '"%s"' "$s"
}
jarr() { # numbers on stdin -> JSON array
	paste -sd, - | sed 's/^/[/; s/$/]/'
}
{
	echo "{"
	echo "  \"date\": $(jstr "$(date -u +%Y-%m-%dT%H:%M:%SZ)"),"
	echo "  \"machine\": {\"nproc\": $(nproc), \"kernel\": $(jstr "$(uname -r)"), \"arch\": $(jstr "$(uname -m)"), \"cpu\": $(jstr "$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //')"), \"fs\": $(jstr "$fstype"), \"restore_fs\": $(jstr "$restore_fs")},"
	echo "  \"corpus\": {\"path\": $(jstr "$BENCH_CORPUS"), \"files\": $corpus_files, \"bytes\": $corpus_bytes, \"random_bytes\": $random_bytes, \"mutated_files\": $((corpus_files / 100))},"
	echo "  \"runs\": $BENCH_RUNS, \"elapsed_seconds\": $elapsed, \"loadavg_before\": $(jstr "$load_before"), \"loadavg_after\": $(jstr "$load_after"),"
	echo "  \"tools\": {"
	first=1
	for tool in "${tools[@]}"; do
		((first)) || echo ","
		first=0
		printf '    %s: {"version": %s' "$(jstr "$tool")" "$(jstr "${version[$tool]}")"
		if ! complete "$tool"; then
			printf ', "failed": %s}' "$(jstr "${failed[$tool]:-incomplete}")"
			continue
		fi
		for op in "${ops[@]}"; do
			printf ', "%s": {"seconds": %s, "median_seconds": %s, "cpu_seconds": %s, "median_cpu_seconds": %s, "peak_rss_kib": %s}' "$op" \
				"$(values "$tool" "$op" secs | jarr)" "${med[$tool:$op]}" "$(values "$tool" "$op" cpu | jarr)" "${medcpu[$tool:$op]}" "$(values "$tool" "$op" rss | jarr)"
		done
		printf ', "repo_bytes": %s, "cache_bytes": %s, "peak_rss_kib": %s, "restore_check": %s' \
			"$(sizes "$tool" size | jarr)" "$(sizes "$tool" cachesize | jarr)" "${peak[$tool]}" "$(jstr "${verified[$tool]:-not checked}")"
		if [[ $tool == bulwark ]]; then
			for o in first unchanged changed; do
				if [[ -s $work/bulwark-$o.json ]]; then printf ', "summary_%s": %s' "$o" "$(tr -d '\n' <"$work/bulwark-$o.json")"; fi
			done
		fi
		printf '}'
	done
	echo
	echo "  }"
	echo "}"
} >"$work/results.json"

mkdir -p "$(dirname "$json_out")"
cp "$work/results.json" "$json_out"
if command -v jq >/dev/null && ! jq -e . "$json_out" >/dev/null; then
	log "warning: $json_out is not valid JSON"
fi
if [[ -n $md_out ]]; then
	mkdir -p "$(dirname "$md_out")"
	cp "$work/table.md" "$md_out"
fi
cat "$work/table.md"
log "wrote $json_out${md_out:+ and $md_out}"
