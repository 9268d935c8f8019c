//go:build !race

// The race detector shadows every heap write in memory of its own, whose
// page faults this test would count.

package crypto

import (
	"bytes"
	"os"
	"syscall"
	"testing"

	"golang.org/x/crypto/argon2"
)

// minorFaults is this process's count of minor page faults so far.
func minorFaults(t *testing.T) int64 {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return ru.Minflt
}

// TestPrimeHugePages: with transparent huge pages available on request,
// argon2's 64 MiB after primeHugePages take a few hundred page faults
// instead of 16,384 (they are backed by 2 MiB pages), and the derived key
// is the one argon2 gives without the hint.
func TestPrimeHugePages(t *testing.T) {
	mode, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil || bytes.Contains(mode, []byte("[never]")) {
		t.Skipf("transparent huge pages off or unknown (%q, %v)", mode, err)
	}
	const memKiB = 64 << 10
	pw, salt := []byte("correct horse"), []byte("0123456789abcdef")
	plain := argon2.IDKey(pw, salt, 1, memKiB, 1, KeySize)

	primeHugePages(memKiB << 10)
	before := minorFaults(t)
	got := argon2.IDKey(pw, salt, 1, memKiB, 1, KeySize)
	faults := minorFaults(t) - before
	if !bytes.Equal(got, plain) {
		t.Fatal("the key differs after priming huge pages")
	}
	// 4 KiB pages would take memKiB/4 = 16,384 faults. Allow for huge
	// pages missing at the range's ends or none being free for a few.
	if faults > memKiB/4/4 {
		t.Errorf("argon2 over %d KiB took %d page faults after priming, want under %d (huge pages)", memKiB, faults, memKiB/4/4)
	}
	t.Logf("%d page faults for %d KiB", faults, memKiB)
}
