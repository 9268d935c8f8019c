package crypto

// Opening a repository runs argon2id over 64 MiB. On Linux, first touching
// 64 MiB of fresh anonymous memory in 4 KiB pages costs about 16,000 page
// faults (33,000 with the runtime's own), measured at 0.22 s of system time
// on a 2-core VM: more than the hashing itself (0.10 s of user time). Backed
// by 2 MiB pages the same memory takes 32 faults.
//
// The Go runtime does not ask for huge pages for the heap, and with the
// common transparent_hugepage=madvise setting the kernel gives them only to
// ranges marked MADV_HUGEPAGE. argon2 allocates its memory itself, so
// primeHugePages makes the heap range it will get huge-page eligible first:
// it allocates a slightly larger slice (fresh, untouched memory from the
// OS), marks the 2 MiB-aligned part of it MADV_HUGEPAGE, and frees it again
// with a collection. argon2's allocation of the same size then reuses that
// range, which stays mapped with its mark (the runtime releases free memory
// with MADV_DONTNEED, which keeps the mark).
//
// It is only a hint: when the range is not reused, the kernel has THP off,
// or no huge page is free, the KDF runs as before with the same result.
// Measured (scripts/bench-repo.sh, docs/benchmarks.md): the KDF falls from
// a median of 0.18 s to 0.06 s.

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

const hugePage = 2 << 20

func primeHugePages(n int) {
	if n < hugePage {
		return
	}
	b := make([]byte, n+2*hugePage)
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	beg := (start + hugePage - 1) &^ (hugePage - 1)
	end := (start + uintptr(len(b))) &^ (hugePage - 1)
	if beg < end {
		_ = unix.Madvise(b[beg-start:end-start], unix.MADV_HUGEPAGE) // a hint; errors change nothing
	}
	runtime.KeepAlive(b)
	b = nil
	runtime.GC()
}
