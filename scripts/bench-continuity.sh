#!/usr/bin/env bash
# Continuity benchmark: backup to a vault against a local backup, offsite
# copies of an unchanged snapshot, and a restore test beside a plain restore.
#
#   scripts/bench-continuity.sh [MARKDOWN_OUT [JSON_OUT]]
#
# Prints a markdown fragment to stdout and, when given, to MARKDOWN_OUT;
# writes the raw figures as JSON to JSON_OUT (default: MARKDOWN_OUT with
# .json, or $BENCH_DIR/continuity.json). Progress goes to stderr. Timings are
# reported, never judged: the script fails only when a command fails.
#
# Environment:
#   BENCH_DIR     work directory, on a real disk, not tmpfs (default /var/tmp/bulwark-bench)
#   BENCH_CORPUS  corpus directory, built by scripts/corpus.sh when incomplete
#                 (default $BENCH_DIR/corpus; kept between runs)
#   BENCH_RUNS    repetitions of every measurement; the tables show medians (default 3)
#   BULWARK_BIN   bulwark binary (default: built from this checkout into the work directory)
#
# Every repetition, with the page cache warm and a sync before each timed step:
#   (a) first backup of the corpus into a fresh local repository, then into a
#       fresh vault: `bulwark vault serve` on 127.0.0.1 (port chosen by the
#       kernel) with a new data directory, an append-only token, the client
#       trusting its self-signed certificate with --cacert. Throughput is
#       corpus bytes / wall seconds; the ratio is local seconds / vault seconds.
#   (b) offsite copies: repositories made with `repo init --copy-params-from`
#       the local repository of (a), one a directory, one on the vault; the
#       first `bulwark copy` of its snapshot, then one more (unchanged) backup
#       of the corpus into the primary and a second copy, which moves only
#       the new snapshot.
#   (c) a policy (`bulwark policy run`) backs the corpus up into a fresh
#       repository; then `bulwark restore --verify` of that snapshot, and the
#       restore test of the policy (`bulwark restore-test POLICY --json`:
#       restore into scratch space, content verified by chunk id, metadata
#       against the snapshot). When this bulwark has no restore-test, its
#       equivalent is measured instead: restore --verify into a scratch
#       directory plus a comparison of every entry's type, mode, owner, size
#       and modification time with the corpus (find -printf).
#       Restores go to a freshly made ext4 file system (loop image) each time
#       when run as root, as in scripts/bench-repo.sh: deletes just before a
#       restore would otherwise slow its inode allocation.
set -euo pipefail
export LC_ALL=C
root=$(cd "$(dirname "$0")/.." && pwd)
export PATH=/usr/local/go/bin:$PATH

md_out=${1:-}
json_out=${2:-}
BENCH_DIR=${BENCH_DIR:-/var/tmp/bulwark-bench}
BENCH_CORPUS=${BENCH_CORPUS:-$BENCH_DIR/corpus}
BENCH_RUNS=${BENCH_RUNS:-3}
if [[ -z $json_out ]]; then
	if [[ -n $md_out ]]; then json_out=${md_out%.md}.json; else json_out=$BENCH_DIR/continuity.json; fi
fi
[[ $BENCH_RUNS =~ ^[1-9][0-9]*$ ]] || { echo "bench-continuity: BENCH_RUNS must be a positive integer" >&2; exit 2; }

log() { echo "bench-continuity: $*" >&2; }

[[ -x /usr/bin/time ]] || { log "/usr/bin/time is missing (apt-get install -y time)"; exit 1; }
mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
fstype=$(stat -f -c %T "$BENCH_DIR")
if [[ $fstype == tmpfs || $fstype == ramfs ]]; then
	log "warning: $BENCH_DIR is on $fstype; results will not reflect disk I/O (set BENCH_DIR)"
fi

work=$(mktemp -d "$BENCH_DIR/continuity.XXXXXX")
mnt=$work/restore-fs
vault_pid=
stop_vault() {
	if [[ -n $vault_pid ]]; then
		kill -TERM "$vault_pid" 2>/dev/null || true
		wait "$vault_pid" 2>/dev/null || true
		vault_pid=
	fi
}
cleanup() {
	stop_vault
	mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$root/scripts/corpus.sh" "$BENCH_CORPUS" >/dev/null
BENCH_CORPUS=$(cd "$BENCH_CORPUS" && pwd)
corpus_files=$(find "$BENCH_CORPUS" -mindepth 1 \( -path "$BENCH_CORPUS/.*" -prune \) -o -type f -print | wc -l)
corpus_bytes=$(find "$BENCH_CORPUS" -mindepth 1 \( -path "$BENCH_CORPUS/.*" -prune \) -o -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')

# ---- bulwark -------------------------------------------------------------

BULWARK=${BULWARK_BIN:-}
if [[ -z $BULWARK ]]; then
	BULWARK=$work/bulwark
	commit=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
	[[ -z $(git -C "$root" status --porcelain 2>/dev/null) ]] || commit+="-dirty"
	log "building bulwark ($commit)"
	if ! (cd "$root" && go build -ldflags "-X main.version=$commit" -o "$BULWARK" ./cmd/bulwark) >"$work/build.log" 2>&1; then
		log "bulwark does not build:"
		sed 's/^/    /' "$work/build.log" >&2
		exit 1
	fi
	version="bulwark $commit ($(go version 2>/dev/null | awk '{print $3}'))"
else
	[[ -x $BULWARK ]] || { log "$BULWARK is not executable"; exit 1; }
	version=$("$BULWARK" version 2>/dev/null | head -n 1 || true)
	version=${version:-$BULWARK}
fi
restore_test_cmd=no
if "$BULWARK" restore-test --help >/dev/null 2>&1; then restore_test_cmd=yes; fi

# Every command runs with these: one password for all repositories (the
# offsite ones take theirs as TO, --copy-params-from as FROM), a cache in
# the work directory.
password=bulwark-bench-password
printf '%s\n' "$password" >"$work/password"
chmod 600 "$work/password"
export BULWARK_PASSWORD=$password BULWARK_FROM_PASSWORD=$password BULWARK_TO_PASSWORD=$password
export XDG_CACHE_HOME=$work/xdg-cache
unset BULWARK_REPO BULWARK_VAULT_TOKEN BULWARK_TO_VAULT_TOKEN BULWARK_CACERT BULWARK_CPUPROFILE || true

declare -A secs failed
# timed KEY CMD...: runs CMD after a sync; records its wall seconds under KEY.
timed() {
	local key=$1
	shift
	local out=$work/$key.out errf=$work/$key.err tf=$work/$key.time rc=0
	sync
	/usr/bin/time -f '%e' -o "$tf" "$@" >"$out" 2>"$errf" || rc=$?
	if ((rc != 0)); then
		log "$key failed (exit status $rc): $*"
		tail -n 20 "$errf" | sed 's/^/    /' >&2
		failed[$key]="exit status $rc: $(grep -v '^[[:space:]]*$' "$errf" | tail -n 1 || true)"
		return 1
	fi
	secs[$key]=$(tail -n 1 "$tf")
	log "  $key: ${secs[$key]}s"
}
# quiet CMD...: runs an untimed setup command, showing its output on failure.
quiet() {
	local errf=$work/setup.err
	if ! "$@" >"$errf" 2>&1; then
		log "setup failed: $*"
		tail -n 20 "$errf" | sed 's/^/    /' >&2
		return 1
	fi
}

# start_vault DIR: a fresh vault in DIR with an append-only token; sets
# vault_url, vault_token and vault_cert.
start_vault() {
	local dir=$1
	mkdir -p "$dir"
	vault_token=$("$BULWARK" vault token add bench --data "$dir" --append-only 2>&1 | grep -o 'bwv_[A-Za-z0-9_-]*' | head -n 1 || true)
	[[ -n $vault_token ]] || { log "vault token add printed no token"; return 1; }
	"$BULWARK" vault serve --data "$dir" --listen 127.0.0.1:0 --log "$dir/refused.log" 2>"$dir/serve.err" &
	vault_pid=$!
	local i addr=
	for ((i = 0; i < 200; i++)); do
		addr=$(grep -o 'serving https://[0-9.:]*' "$dir/serve.err" 2>/dev/null | head -n 1 | sed 's,serving https://,,' || true)
		[[ -n $addr ]] && break
		kill -0 "$vault_pid" 2>/dev/null || break
		sleep 0.05
	done
	if [[ -z $addr ]]; then
		log "vault did not start:"
		sed 's/^/    /' "$dir/serve.err" >&2
		return 1
	fi
	vault_url=https://$addr
	vault_cert=$dir/tls/cert.pem
}

restore_fs=$fstype
fresh_target() { # prints a new, empty directory for a restore
	if mountpoint -q "$mnt" 2>/dev/null; then umount "$mnt"; fi
	if [[ $restore_fs == ext4-fresh ]]; then
		rm -f "$work/restore.img"
		truncate -s 3G "$work/restore.img"
		mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$work/restore.img" >&2
		mkdir -p "$mnt"
		mount -o loop "$work/restore.img" "$mnt"
		mkdir -p "$mnt/restore"
		echo "$mnt/restore"
	else
		rm -rf "$work/restore"
		mkdir -p "$work/restore"
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

# metadata TREE: type, mode, owner, size (files) and mtime of every entry
# below TREE, by relative path (dot files at the top left out, as in the
# corpus figures).
metadata() {
	(cd "$1" && find . -mindepth 1 \( -path './.*' -prune \) -o -printf '%P %y %m %U %G %s %T@\n' |
		awk '$2 == "d" { $6 = "-" } { print }' | sort)
}

# Restore test without the command: restore --verify into scratch space,
# then compare the restored entries' metadata with the corpus.
restore_test_equivalent() {
	local repo=$1 target=$2
	"$BULWARK" restore --repo "$repo" latest --target "$target" --verify || return 1
	if ! diff <(metadata "$BENCH_CORPUS") <(metadata "$target$BENCH_CORPUS") >"$work/meta.diff"; then
		echo "metadata differs from the corpus:" >&2
		head -n 5 "$work/meta.diff" >&2
		return 1
	fi
}
export -f restore_test_equivalent metadata
export BULWARK BENCH_CORPUS work

log "warming the page cache with the corpus ($corpus_files files)"
find "$BENCH_CORPUS" -type f -print0 | xargs -0 cat >/dev/null

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
start_time=$(date +%s)
declare -A rt_json
for ((r = 1; r <= BENCH_RUNS; r++)); do
	log "run $r/$BENCH_RUNS"
	d=$work/run$r
	mkdir -p "$d"
	export BULWARK_CACHE_DIR=$d/cache
	primary=$d/primary

	# (a) first backup: local, then vault.
	quiet "$BULWARK" repo init --repo "$primary" || { failed[a_local:$r]="repo init failed"; continue; }
	timed "a_local:$r" "$BULWARK" backup --repo "$primary" --host bench --json "$BENCH_CORPUS" || continue
	start_vault "$d/vault" || { failed[a_vault:$r]="vault did not start"; continue; }
	export BULWARK_VAULT_TOKEN=$vault_token BULWARK_TO_VAULT_TOKEN=$vault_token BULWARK_CACERT=$vault_cert
	if quiet "$BULWARK" repo init --repo "$vault_url/bench"; then
		timed "a_vault:$r" "$BULWARK" backup --repo "$vault_url/bench" --host bench --json "$BENCH_CORPUS" || true
	else
		failed[a_vault:$r]="repo init on the vault failed"
	fi

	# (b) copies of the primary's snapshot to a directory and to the vault.
	declare -A dst=([dir]=$d/offsite [vault]=$vault_url/offsite)
	for k in dir vault; do
		quiet "$BULWARK" repo init --repo "${dst[$k]}" --copy-params-from "$primary" || { failed[b_${k}_first:$r]="repo init --copy-params-from failed"; continue; }
		timed "b_${k}_first:$r" "$BULWARK" copy --repo "$primary" --to "${dst[$k]}" || true
	done
	if timed "b_unchanged_backup:$r" "$BULWARK" backup --repo "$primary" --host bench --json "$BENCH_CORPUS"; then
		for k in dir vault; do
			[[ -n ${secs[b_${k}_first:$r]:-} ]] || continue
			timed "b_${k}_second:$r" "$BULWARK" copy --repo "$primary" --to "${dst[$k]}" || true
		done
	fi
	stop_vault
	unset BULWARK_VAULT_TOKEN BULWARK_TO_VAULT_TOKEN BULWARK_CACERT

	# (c) a policy's snapshot: plain restore --verify, then the restore test.
	crepo=$d/policy-repo
	quiet "$BULWARK" repo init --repo "$crepo" || { failed[c_restore:$r]="repo init failed"; continue; }
	scratch=$d/scratch
	mkdir -p "$scratch"
	cat >"$d/bulwark.yaml" <<-EOF
		continuity:
		  repositories:
		    - name: primary
		      location: $crepo
		      password: {file: $work/password}
		  policies:
		    - name: bench
		      sources:
		        - paths: [$BENCH_CORPUS]
		      schedule: "@daily"
		      repository: primary
		      restore_test:
		        schedule: "@weekly"
		        scratch: $scratch
	EOF
	if [[ $restore_test_cmd == yes ]]; then
		quiet "$BULWARK" policy run bench --config "$d/bulwark.yaml" --data "$d/data" || { failed[c_restore:$r]="policy run failed"; continue; }
	else
		quiet "$BULWARK" backup --repo "$crepo" --host bench "$BENCH_CORPUS" || { failed[c_restore:$r]="backup failed"; continue; }
	fi
	target=$(fresh_target)
	timed "c_restore:$r" "$BULWARK" restore --repo "$crepo" latest --target "$target" --verify || true
	target=$(fresh_target)
	if [[ $restore_test_cmd == yes ]]; then
		# The scratch space is on the fresh file system, like the plain restore's target.
		sed -i "s|scratch: $scratch\$|scratch: $target|" "$d/bulwark.yaml"
		if timed "c_test:$r" "$BULWARK" restore-test bench --config "$d/bulwark.yaml" --data "$d/data" --json; then
			rt_json[$r]=$(tr -d '\n' <"$work/c_test:$r.out")
		fi
	else
		timed "c_test:$r" bash -c 'restore_test_equivalent "$1" "$2"' _ "$crepo" "$target" || true
	fi
	if mountpoint -q "$mnt" 2>/dev/null; then umount "$mnt"; fi
	rm -rf "$d"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$(($(date +%s) - start_time))
log "measurements took ${elapsed}s; load average before: $load_before, after: $load_after"

# ---- figures -------------------------------------------------------------

median() { # numbers on stdin -> median (mean of the middle two for an even count)
	sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) exit; if (NR % 2) printf "%.2f\n", v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
values() { # KEY: the seconds of every repetition
	local i
	for ((i = 1; i <= BENCH_RUNS; i++)); do
		[[ -n ${secs[$1:$i]:-} ]] && echo "${secs[$1:$i]}"
	done
	return 0
}
declare -A med
keys=(a_local a_vault b_dir_first b_vault_first b_unchanged_backup b_dir_second b_vault_second c_restore c_test)
for k in "${keys[@]}"; do med[$k]=$(values "$k" | median); done
cell() { # KEY: "median" or "median (min-max)"; "failed: ..." when no run succeeded
	local k=$1 v
	if [[ -z ${med[$k]} ]]; then
		local i
		for ((i = 1; i <= BENCH_RUNS; i++)); do
			if [[ -n ${failed[$k:$i]:-} ]]; then
				printf 'failed: %s' "${failed[$k:$i]//|/\\|}"
				return
			fi
		done
		printf -- '-'
		return
	fi
	v=$(values "$k" | sort -g | sed -n '1p;$p' | paste -sd' ' -)
	if ((BENCH_RUNS > 1)); then
		awk -v m="${med[$k]}" -v r="$v" 'BEGIN { split(r, a, " "); printf "%.2f (%.2f-%.2f)", m, a[1], a[2] }'
	else
		printf '%s' "${med[$k]}"
	fi
}
rate() { # SECONDS -> MB/s of the corpus
	[[ -n $1 ]] || { printf -- '-'; return; }
	awk -v s="$1" -v b="$corpus_bytes" 'BEGIN { if (s > 0) printf "%.0f", b / 1e6 / s; else printf "-" }'
}
ratio=
if [[ -n ${med[a_local]} && -n ${med[a_vault]} ]]; then
	ratio=$(awk -v l="${med[a_local]}" -v v="${med[a_vault]}" 'BEGIN { printf "%.0f", 100 * l / v }')
fi
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }
rt_field() { # FIELD: from the restore test's JSON of the first run that has one
	local i
	for ((i = 1; i <= BENCH_RUNS; i++)); do
		[[ -n ${rt_json[$i]:-} ]] || continue
		grep -o "\"$1\": *[^,}]*" <<<"${rt_json[$i]}" | head -n 1 | sed 's/^[^:]*: *//; s/[[:space:]]*$//; s/^"//; s/"$//'
		return
	done
}

{
	echo "Corpus: $corpus_files files, $(mb "$corpus_bytes") MB (scripts/corpus.sh). Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //' || uname -m), Linux $(uname -r), work dir on $fstype; page cache warm; load average ${load_before%% *} before, ${load_after%% *} after. $version."
	echo "Wall seconds, the median of $BENCH_RUNS run(s)$( ((BENCH_RUNS > 1)) && echo ' (min-max in brackets)'), each step started after sync. The vault runs on the same machine (127.0.0.1, TLS with its self-signed certificate, append-only token): client and server share the cores."
	echo
	echo "| first backup | seconds | MB/s |"
	echo "|---|---|---|"
	echo "| local directory | $(cell a_local) | $(rate "${med[a_local]}") |"
	echo "| vault over loopback TLS | $(cell a_vault) | $(rate "${med[a_vault]}") |"
	echo
	echo "Vault throughput: ${ratio:--}% of local (target >= 80%)."
	echo
	echo "| offsite copy (\`bulwark copy\`, destination made with \`repo init --copy-params-from\`) | first copy s | after an unchanged backup s (target < 1 s) |"
	echo "|---|---|---|"
	echo "| to a local directory | $(cell b_dir_first) | $(cell b_dir_second) |"
	echo "| to the vault | $(cell b_vault_first) | $(cell b_vault_second) |"
	echo
	echo "The unchanged backup between the copies took $(cell b_unchanged_backup) s."
	echo
	echo "| restore of the corpus snapshot | seconds |"
	echo "|---|---|"
	echo "| \`bulwark restore --verify\` | $(cell c_restore) |"
	if [[ $restore_test_cmd == yes ]]; then
		echo "| \`bulwark restore-test POLICY\` (restore into scratch, verify content and metadata, clean up) | $(cell c_test) |"
	else
		echo "| restore test equivalent (this bulwark has no restore-test: restore --verify into scratch + metadata comparison with find) | $(cell c_test) |"
	fi
	if [[ -n $(rt_field recovery_seconds) ]]; then
		echo
		echo "The restore test's own evidence (first run): recovery $(printf '%.2f' "$(rt_field recovery_seconds)") s for $(rt_field files_verified) files verified, $(rt_field metadata_checked) metadata entries checked, result $(rt_field result)."
	fi
	echo
	echo "Restores go to $( [[ $restore_fs == ext4-fresh ]] && echo "a freshly made ext4 file system (loop image) each time" || echo "the work directory ($restore_fs)")."
} >"$work/table.md"

# ---- JSON ----------------------------------------------------------------

jstr() {
	local s=${1//\\/\\\\}
	s=${s//\"/\\\"}
	s=${s//$'\t'/ }
	s=${s//$'\n'/ }
	printf '"%s"' "$s"
}
jarr() { paste -sd, - | sed 's/^/[/; s/$/]/'; }
jnum() { if [[ -n $1 ]]; then printf '%s' "$1"; else printf 'null'; fi; }
{
	echo "{"
	echo "  \"date\": $(jstr "$(date -u +%Y-%m-%dT%H:%M:%SZ)"),"
	echo "  \"version\": $(jstr "$version"),"
	echo "  \"machine\": {\"nproc\": $(nproc), \"kernel\": $(jstr "$(uname -r)"), \"cpu\": $(jstr "$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //')"), \"fs\": $(jstr "$fstype"), \"restore_fs\": $(jstr "$restore_fs")},"
	echo "  \"corpus\": {\"path\": $(jstr "$BENCH_CORPUS"), \"files\": $corpus_files, \"bytes\": $corpus_bytes},"
	echo "  \"runs\": $BENCH_RUNS, \"elapsed_seconds\": $elapsed, \"loadavg_before\": $(jstr "$load_before"), \"loadavg_after\": $(jstr "$load_after"),"
	echo "  \"restore_test_command\": $([[ $restore_test_cmd == yes ]] && echo true || echo false),"
	echo "  \"vault_ratio_percent\": $(jnum "$ratio"),"
	echo "  \"steps\": {"
	first=1
	for k in "${keys[@]}"; do
		((first)) || echo ","
		first=0
		printf '    %s: {"seconds": %s, "median_seconds": %s' "$(jstr "$k")" "$(values "$k" | jarr)" "$(jnum "${med[$k]}")"
		for ((i = 1; i <= BENCH_RUNS; i++)); do
			if [[ -n ${failed[$k:$i]:-} ]]; then printf ', "failed": %s' "$(jstr "${failed[$k:$i]}")"; break; fi
		done
		printf '}'
	done
	echo
	echo "  },"
	printf '  "restore_test_evidence": '
	shown=0
	for ((i = 1; i <= BENCH_RUNS; i++)); do
		if [[ -n ${rt_json[$i]:-} ]]; then printf '%s\n' "${rt_json[$i]}"; shown=1; break; fi
	done
	((shown)) || echo null
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
