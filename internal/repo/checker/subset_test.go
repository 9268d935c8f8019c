package checker

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/repo"
)

func TestParseSubset(t *testing.T) {
	tests := []struct {
		in      string
		want    Subset
		wantErr string
	}{
		{in: "10%", want: Subset{Percent: 10}},
		{in: "2.5%", want: Subset{Percent: 2.5}},
		{in: "100%", want: Subset{Percent: 100}},
		{in: " 1/5 ", want: Subset{N: 1, M: 5}},
		{in: "5/5", want: Subset{N: 5, M: 5}},
		{in: "256/256", want: Subset{N: 256, M: 256}},
		{in: "0%", wantErr: "above 0"},
		{in: "101%", wantErr: "at most 100"},
		{in: "-1%", wantErr: "above 0"},
		{in: "NaN%", wantErr: "percentage"},
		{in: "x%", wantErr: "percentage"},
		{in: "%", wantErr: "percentage"},
		{in: "0/5", wantErr: "N must be 1 to M"},
		{in: "6/5", wantErr: "N must be 1 to M"},
		{in: "1/0", wantErr: "M must be 1 to 256"},
		{in: "1/257", wantErr: "M must be 1 to 256"},
		{in: "1/x", wantErr: "whole numbers"},
		{in: "1.5/3", wantErr: "whole numbers"},
		{in: "10", wantErr: "write N% (e.g. 10%) or N/M"},
		{in: "", wantErr: "write N%"},
	}
	for _, tt := range tests {
		got, err := ParseSubset(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseSubset(%q) = %+v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSubset(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
		if back, err := ParseSubset(got.String()); err != nil || back != got {
			t.Errorf("ParseSubset(%q.String() = %q) = %+v, %v", tt.in, got.String(), back, err)
		}
	}
}

func TestSubsetPick(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 8))
	ids := make([]repo.ID, 1000)
	for i := range ids {
		for j := range ids[i] {
			ids[i][j] = byte(rnd.Uint32())
		}
	}
	// N/M for N = 1..M picks every pack exactly once.
	for _, m := range []int{1, 2, 7, 256} {
		seen := make([]int, len(ids))
		for n := 1; n <= m; n++ {
			for i, sel := range (Subset{N: n, M: m}).pick(ids, rnd) {
				if sel {
					seen[i]++
					if int(ids[i][0])%m != n-1 {
						t.Errorf("%d/%d picked a pack whose first byte is %d", n, m, ids[i][0])
					}
				}
			}
		}
		for i, k := range seen {
			if k != 1 {
				t.Fatalf("1/%d..%d/%d picked pack %d %d times", m, m, m, i, k)
			}
		}
	}
	for _, tt := range []struct {
		pct  float64
		n    int
		want int
	}{{10, 1000, 100}, {0.01, 1000, 1}, {33.3, 10, 4}, {100, 1000, 1000}, {50, 0, 0}} {
		n := 0
		for _, sel := range (Subset{Percent: tt.pct}).pick(ids[:tt.n], rnd) {
			if sel {
				n++
			}
		}
		if n != tt.want {
			t.Errorf("%v%% of %d packs picked %d, want %d", tt.pct, tt.n, n, tt.want)
		}
	}
	n := 0
	for _, sel := range (Subset{}).pick(ids, rnd) {
		if sel {
			n++
		}
	}
	if n != len(ids) {
		t.Errorf("the zero Subset picked %d of %d", n, len(ids))
	}
}

func FuzzParseSubset(f *testing.F) {
	for _, s := range []string{"10%", "1/5", "256/256", "0.5%", "1e2%", "+3/4", "99.9999999%", "1/", "/", "%%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sub, err := ParseSubset(s)
		if err != nil {
			return
		}
		if err := sub.validate(); err != nil {
			t.Fatalf("ParseSubset(%q) = %+v, which does not validate: %v", s, sub, err)
		}
		back, err := ParseSubset(sub.String())
		if err != nil || back != sub {
			t.Fatalf("ParseSubset(%q) = %+v; its String %q parses as %+v, %v", s, sub, sub.String(), back, err)
		}
	})
}
