#!/usr/bin/env bash
# Runs Bulwark's benchmarks and writes docs/benchmarks.md. Benchmarks are
# measurements, never pass/fail tests. Later capabilities add their
# side-by-side runs (restic, borg, AIDE, nginx) here.
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/benchmarks.md
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run() { # name, package, bench regexp, benchtime
	echo "bench: $1" >&2
	go test -run '^$' -bench "$3" -benchtime "$4" -count 1 -timeout 30m "$2" | tee "$tmp/$1.txt" >&2
}

run audit-append ./internal/audit 'Append' 3s
run audit-verify ./internal/audit 'Verify' 1x
run identity ./internal/identity 'Argon2|TOTP' 1s
run chunker ./internal/repo/chunker 'Chunker$|Cut$' 2s
run pack ./internal/repo/pack 'Writer|Read|Compress|Levels' 1s
run parity ./internal/repo/parity 'Encode|Repair' 1s

# Backup repository side by side with restic and borg (scripts/bench-repo.sh:
# a ~500 MB corpus of files from this machine; first backup, unchanged and
# 1%-changed re-runs, restore, repository size, peak memory). Five runs
# each: on this VM a tool's CPU time for the same backup varies by 30% from
# one minute to the next (other load on the host), and a median of three
# moved a ratio by as much as its margin.
echo "bench: repository vs restic and borg" >&2
BENCH_RUNS=${BENCH_REPO_RUNS:-5} scripts/bench-repo.sh "$tmp/repo.md" "$tmp/repo.json" >&2 || echo "(bench-repo failed; see above)" > "$tmp/repo.md"

# Continuity: backup to a vault over loopback TLS vs local, offsite copy of
# an unchanged snapshot, restore test beside a plain restore.
echo "bench: continuity (vault, offsite copy, restore test)" >&2
scripts/bench-continuity.sh "$tmp/continuity.md" "$tmp/continuity.json" >&2 || echo "(bench-continuity failed; see above)" > "$tmp/continuity.md"

# The edge guard side by side with nginx, a plain Go proxy and the naive
# Coraza wrapper (scripts/bench-guard.sh: wrk on loopback, an attack
# scenario, memory with 100,000 sources), and the firewall loading 10,000
# bans into nftables in a network namespace. Three interleaved runs per
# row, medians in the tables: one run moved a ratio by 0.3 between two
# benches a minute apart on this VM.
echo "bench: guard vs nginx" >&2
BENCH_RUNS=${BENCH_GUARD_RUNS:-3} scripts/bench-guard.sh "$tmp/guard.md" "$tmp/guard.json" >&2 || echo "(bench-guard failed; see above)" >> "$tmp/guard.md"
run firewall ./internal/firewall 'Sync10k' 5x

# File integrity side by side with Debian's AIDE on /usr (scripts/bench-integrity.sh).
echo "bench: integrity vs AIDE" >&2
BENCH_RUNS=${BENCH_INTEGRITY_RUNS:-3} scripts/bench-integrity.sh "$tmp/integrity.md" "$tmp/integrity.json" >&2 || echo "(bench-integrity failed; see above)" > "$tmp/integrity.md"

# Supervision beside node_exporter (scripts/bench-monitor.sh): 1,000 HTTP checks
# every 30 s, one host sample, the idle footprint (MONITOR_BENCH_WINDOW seconds).
echo "bench: monitor vs node_exporter" >&2
scripts/bench-monitor.sh "$tmp/monitor.md" "$tmp/monitor.json" >&2 || echo "(bench-monitor failed; see above)" > "$tmp/monitor.md"

# The web console's pages and the report with 10,000 events and 1,000
# snapshots (scripts/bench-console.sh).
echo "bench: console pages" >&2
scripts/bench-console.sh "$tmp/console.md" >&2 || true

# Where a first backup spends its CPU (a profile of one run on the corpus).
profile_backup() {
	local corpus=${BENCH_CORPUS:-${BENCH_DIR:-/var/tmp/bulwark-bench}/corpus} bin="$tmp/bulwark"
	[[ -d $corpus ]] || return 0
	go build -o "$bin" ./cmd/bulwark
	BULWARK_PASSWORD=bench BULWARK_CACHE_DIR="$tmp/cache" "$bin" repo init --repo "$tmp/prof-repo" >/dev/null 2>&1
	BULWARK_PASSWORD=bench BULWARK_CACHE_DIR="$tmp/cache" BULWARK_CPUPROFILE="$tmp/cpu.prof" \
		"$bin" backup --repo "$tmp/prof-repo" "$corpus" >/dev/null 2>&1
	rm -rf "$tmp/prof-repo"
	BULWARK_PASSWORD=bench BULWARK_CACHE_DIR="$tmp/cache" "$bin" repo init --repo "$tmp/prof-repo" >/dev/null 2>&1
	BULWARK_PASSWORD=bench BULWARK_CACHE_DIR="$tmp/cache" BULWARK_HEAPPROFILE="$tmp/heap.prof" \
		"$bin" backup --repo "$tmp/prof-repo" "$corpus" >/dev/null 2>&1
	{
		echo '```'
		go tool pprof -sample_index=inuse_space -top -nodecount=8 "$bin" "$tmp/heap.prof" 2>/dev/null |
			grep -E 'Showing nodes|^ +[0-9.]+[kMG]?B' | sed 's/^ *//'
		echo '```'
	} > "$tmp/heap.md"
	{
		echo '```'
		go tool pprof -top -cum -nodecount=400 "$bin" "$tmp/cpu.prof" 2>/dev/null |
			grep -E 'Total samples|pack\.Compress|crypto\.\(\*Secrets\)\.BlobID|chunker\.\(\*Chunker\)\.Next|repo\.\(\*Repository\)\.storePack|sha256\.block|gcm\.seal|argon2\.IDKey|archiver\.\(\*archiver\)\.saveDir$|tree\.NodeFromPath|syscall\.Syscall6?$|runtime\.gcBgMarkWorker' | sed 's/^ *//'
		echo '```'
	} > "$tmp/profile.md"
}
echo "bench: profile of a first backup" >&2
profile_backup || echo "(profile failed)" > "$tmp/profile.md"

table() { # turns `go test -bench` lines into markdown rows
	awk '/^Benchmark/ {
		name=$1; sub(/-[0-9]+$/, "", name); row="| " name " | " $2;
		extra="";
		for (i=3; i+1<=NF; i+=2) extra = extra $(i) " " $(i+1) "; ";
		print row " | " extra " |"
	}' "$1"
}

{
	echo "# Benchmarks"
	echo
	echo "Written by \`make bench\` on $(date -u +%Y-%m-%d) ($(uname -m), $(nproc) cores, $(go version | awk '{print $3}'))."
	echo "Figures are from one run on a shared machine: compare side by side, not across runs."
	echo
	echo "## Audit log (targets: >= 5,000 appends/s on SQLite; verify 1,000,000 entries < 10 s)"
	echo
	echo "Each append is one durable transaction (SQLite WAL with synchronous=NORMAL; PostgreSQL default"
	echo "synchronous_commit) that locks the chain head, hashes, inserts and, every 1,000 entries, signs a checkpoint."
	echo "BenchmarkVerify checks a log of 1,000,000 entries (ns/op is the whole verification: chain, hashes, signatures)."
	echo
	echo "| benchmark | iterations | measurements |"
	echo "|---|---|---|"
	table "$tmp/audit-append.txt"
	table "$tmp/audit-verify.txt"
	echo
	echo "## Identity"
	echo
	echo "| benchmark | iterations | measurements |"
	echo "|---|---|---|"
	table "$tmp/identity.txt"
	echo
	echo "## Backup repository"
	echo
	echo "Targets (issue 3): first backup >= 2.5x faster than restic, unchanged re-run >= 5x faster,"
	echo "restore >= 2x faster, repository <= restic + 3%, peak memory <= restic's."
	echo
	echo "What moved the figures (each measured on this corpus): the key derivation's 64 MiB on huge pages"
	echo "(argon2id per open 0.18 s -> 0.06 s median: 16,000 page faults -> about 50; internal/repo/crypto/hugepages_linux.go);"
	echo "extended attributes of unchanged entries taken from the parent snapshot (one system call less per file);"
	echo "files read and restored through raw descriptors (three system calls less per file); one-piece files get"
	echo "their metadata on the open descriptor and the rest in parallel; zstd from the reference C library in"
	echo "builds with cgo (first backup 1.98 s -> 1.63 s and 2.5% smaller), at level 1 rather than 2 (CPU 2.72 s -> 2.55 s,"
	echo "repository 1.6% larger: internal/repo/pack/compress.go); a worker goes on to the next file while the savers"
	echo "still compress a large file's chunks, and hands the chunker on as soon as the file is cut; data packs stream"
	echo "into the local repository through two 1 MiB buffers instead of being built in two 16 MiB ones (backend.Stager,"
	echo "internal/repo/packstream.go: the collector's headroom under the memory limit grows from a few MiB to about 25,"
	echo "35 collections -> 15; wall 1.32 s -> 1.23 s, CPU 2.29 s -> 2.15 s, medians of 8 alternating runs)."
	echo "Memory (first backup's peak RSS 128 -> 108 MiB on an Intel Xeon VM, same time): a soft memory limit of what is"
	echo "live after opening plus 80 MiB; a chunker buffer of 4 MiB growing only for long chunks (was 16 MiB); chunk and"
	echo "compression buffers kept across collections in two size classes (internal/repo/bufs: 117 MB fewer allocations);"
	echo "a pack's buffer back from the local backend once written, before its fsync (backend.EarlySaver: one full pack"
	echo "waiting instead of two); the index encoder's window 1 MiB (its first use allocated 18 MiB)."
	echo "Restore (CPU 2.3 s -> 1.8 s, wall 1.42 s -> 1.10 s median of 3 on that VM): blobs decrypted into kept buffers instead"
	echo "of one new buffer each, and pack ranges read into each worker's own buffer (backend.LoaderInto)."
	echo
	cat "$tmp/repo.md"
	echo
	echo "### Where a first backup's CPU goes"
	echo
	echo "One run of \`bulwark backup\` on the corpus with BULWARK_CPUPROFILE; cumulative time per stage"
	echo "(flat, flat%, sum%, cum, cum%). zstd (pack.Compress) is still the largest stage; BenchmarkLevels"
	echo "below compares this build's encoder (ours) with klauspost/compress's levels, restic's among them, per core."
	echo
	cat "$tmp/profile.md"
	echo
	echo "### Where a first backup's memory goes"
	echo
	echo "The live heap at its largest in one run with BULWARK_HEAPPROFILE (flat, flat%, sum%, cum, cum%): the chunk"
	echo "and compression buffers, the chunker, the streaming packers' 1 MiB buffers, the tree pack."
	echo
	cat "$tmp/heap.md" 2>/dev/null || echo "(no heap profile)"
	echo
	echo "## Continuity (targets: backup to the vault >= 80% of local throughput; copy of an unchanged snapshot < 1 s; restore test beside a plain restore)"
	echo
	cat "$tmp/continuity.md"
	echo
	echo "### Components (one core unless stated)"
	echo
	echo "| benchmark | iterations | measurements |"
	echo "|---|---|---|"
	table "$tmp/chunker.txt"
	table "$tmp/pack.txt"
	table "$tmp/parity.txt"
	echo
	echo "## Edge guard (targets, issue 5: guard with limits and lists >= 70% of the nginx reverse proxy;"
	echo "with CRS >= 2x the naive Coraza wrapper on GET + small POST; under attack >= 99% success and p99 <= 5x quiet)"
	echo
	cat "$tmp/guard.md"
	echo
	echo "### Firewall: 10,000 bans loaded into nftables (a network namespace)"
	echo
	echo "| benchmark | iterations | measurements |"
	echo "|---|---|---|"
	table "$tmp/firewall.txt"
	echo
	echo "## File integrity (targets, issue 6: init and check >= 5x AIDE's entries per second, peak memory <= AIDE's;"
	echo "watch mode < 1% of a core idle and p99 change-to-event < 1 s in a burst of 10,000 changes)"
	echo
	cat "$tmp/integrity.md"
	echo
	echo "## Supervision (targets, issue 7: 1,000 HTTP checks every 30 s < 10% of one core and < 100 MB;"
	echo "one host-metrics sample and the idle footprint beside node_exporter's)"
	echo
	cat "$tmp/monitor.md"
	echo
	echo "## Web console and report (targets, issue 8: every page < 100 ms on the server with 10,000 events"
	echo "and 1,000 snapshots; the report < 1 s)"
	echo
	cat "$tmp/console.md"
} > "$out"
echo "wrote $out" >&2
