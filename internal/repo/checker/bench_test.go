package checker

import (
	"testing"

	"github.com/bulwarkhq/bulwark/internal/repo/repotest"
)

// BenchmarkReadData measures check --read-data on the plain test
// repository; MB/s is pack bytes read and verified per second.
func BenchmarkReadData(b *testing.B) {
	l := readLayout(b, base(b, "plain"))
	var total int64
	for _, s := range l.packSizes {
		total += s
	}
	r := openRepo(b, l.dir, repotest.Password)
	b.SetBytes(total)
	for b.Loop() {
		if rep := check(b, r, Options{ReadData: true}); !rep.OK {
			b.Fatal(dump(rep))
		}
	}
}

// BenchmarkStructure measures the check without --read-data.
func BenchmarkStructure(b *testing.B) {
	r := openRepo(b, base(b, "plain"), repotest.Password)
	for b.Loop() {
		if rep := check(b, r, Options{}); !rep.OK {
			b.Fatal(dump(rep))
		}
	}
}
