#!/usr/bin/env bash
# Builds the backup benchmark corpus from files already on this machine, or
# changes 1% of a corpus's files for the "re-run after a small change" step.
#
#   scripts/corpus.sh DIR            build DIR (skipped when DIR/.complete exists)
#   scripts/corpus.sh --mutate DIR   change every 100th regular file of DIR
#
# The corpus is real-world, mostly compressible data plus incompressible bytes:
#   go/          a copy of /usr/local/go (Go sources, test data, binaries)
#   doc/         a copy of /usr/share/doc
#   python3*/    copies of /usr/lib/python3*
#   random/      4 x 10 MiB of pseudo-random bytes (AES-256-CTR keystream with
#                a fixed password, so every machine makes the same bytes)
# Symlinks are kept as symlinks. Files are taken in sorted order until
# CORPUS_MAX_MB (default 500, in units of 10^6 bytes, random part included) is
# reached, so the corpus is the same on two machines with the same packages.
# DIR/.manifest records what went in.
#
# --mutate takes the regular files below DIR in byte-wise sorted path order
# (LC_ALL=C) and, for every 100th of them (the 100th, 200th, ...), inserts the
# line "bulwark-bench mutation <n>" at the byte in the middle of the file, in
# place (same inode and mode; size and mtime change). Inserting rather than
# appending shifts the second half of the file, which exercises
# content-defined chunking. The change is deterministic; applying it twice
# changes the files twice, so mutate a copy of a pristine corpus.
set -euo pipefail
export LC_ALL=C

usage() {
	echo "usage: $0 DIR | $0 --mutate DIR" >&2
	exit 2
}

summary() { # DIR: prints "N files, M MB" for the corpus (dot-files at the top excluded)
	find "$1" -mindepth 1 \( -path "$1/.*" -prune \) -o -type f -printf '%s\n' |
		awk '{ s += $1; n++ } END { printf "%d files, %.1f MB (%d bytes)\n", n, s / 1e6, s }'
}

mutate() {
	local dir=${1%/} i=0 n=0 f size half
	[[ -d $dir ]] || { echo "corpus: $dir: not a directory" >&2; exit 1; }
	local tmp
	tmp=$(mktemp "$dir/.mutate.XXXXXX")
	while IFS= read -r -d '' f; do
		i=$((i + 1))
		((i % 100 == 0)) || continue
		n=$((n + 1))
		size=$(stat -c %s "$f")
		half=$((size / 2))
		{
			head -c "$half" "$f"
			printf 'bulwark-bench mutation %d\n' "$n"
			tail -c +"$((half + 1))" "$f"
		} >"$tmp"
		cat "$tmp" >"$f"
	done < <(find "$dir" -mindepth 1 \( -path "$dir/.*" -prune \) -o -type f -print0 | sort -z)
	rm -f "$tmp"
	echo "corpus: mutated $n of $i files in $dir" >&2
}

build() {
	local dir=${1%/}
	local max=$((${CORPUS_MAX_MB:-500} * 1000000))
	local nrand=4 randsize=$((10 * 1024 * 1024))
	if [[ -e $dir/.complete ]]; then
		echo "corpus: $dir is complete: $(summary "$dir")" >&2
		return
	fi
	if [[ -d $dir ]] && [[ ! -e $dir/.bulwark-corpus ]] && [[ -n $(ls -A "$dir") ]]; then
		echo "corpus: $dir exists, is not empty and is not a (partial) corpus; refusing to touch it" >&2
		exit 1
	fi
	rm -rf "$dir"
	mkdir -p "$dir"
	touch "$dir/.bulwark-corpus"
	echo "corpus: building $dir" >&2

	# Random part first: it is always included in full.
	mkdir -p "$dir/random"
	local i
	for ((i = 1; i <= nrand; i++)); do
		head -c "$randsize" /dev/zero |
			openssl enc -aes-256-ctr -pbkdf2 -nosalt -pass "pass:bulwark-$i" 2>/dev/null >"$dir/random/random-$i.bin"
		[[ $(stat -c %s "$dir/random/random-$i.bin") -eq $randsize ]] || {
			echo "corpus: openssl did not produce $randsize bytes for random-$i.bin" >&2
			exit 1
		}
	done
	local budget=$((max - nrand * randsize))

	# Copied part: sources in a fixed order, entries sorted, cut at the budget.
	local sources=(usr/local/go usr/share/doc)
	local p
	for p in /usr/lib/python3*; do
		[[ -d $p ]] && sources+=("${p#/}")
	done
	local list=$dir/.list
	: >"$list"
	local s
	for s in "${sources[@]}"; do
		if [[ ! -d /$s ]]; then
			echo "corpus: /$s is missing; the corpus will be smaller" >&2
			continue
		fi
		# %y type, %s size, %P path below the start point.
		find "/$s" -mindepth 1 \( -type d -o -type f -o -type l \) -printf "%y %s $s/%P\n" | sort -k3
	done | awk -v budget="$budget" '
		$1 == "d" { print substr($0, index($0, $3)); next }
		$1 == "l" { print substr($0, index($0, $3)); next }
		{ if (used + $2 > budget) { skipped++; next }
		  used += $2; print substr($0, index($0, $3)) }
		END { if (skipped) printf "corpus: %d files left out to stay under the size budget\n", skipped > "/dev/stderr" }
	' >"$list"
	tar -C / --no-recursion -cf - -T "$list" |
		tar -C "$dir" -xf - \
			--transform 's,^usr/local/go,go,;s,^usr/share/doc,doc,;s,^usr/lib/,,'
	rm -f "$list"

	{
		echo "# bulwark benchmark corpus, built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n)"
		for s in "$dir"/go "$dir"/doc "$dir"/python3* "$dir"/random; do
			[[ -d $s ]] || continue
			printf '%s: ' "${s##*/}"
			summary "$s"
		done
		printf 'total: '
		summary "$dir"
	} >"$dir/.manifest"
	touch "$dir/.complete"
	echo "corpus: built $dir: $(summary "$dir")" >&2
}

case ${1:-} in
--mutate)
	[[ $# -eq 2 ]] || usage
	mutate "$2"
	;;
-h | --help | "") usage ;;
*)
	[[ $# -eq 1 ]] || usage
	build "$1"
	cat "${1%/}/.manifest"
	;;
esac
