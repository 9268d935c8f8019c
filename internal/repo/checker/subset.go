package checker

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/repo"
)

// Subset selects the packs that ReadData reads. The zero value selects
// every pack.
//
// A percentage picks that share of the indexed packs at random (rounded
// up, so a non-empty repository always has at least one pack read): run
// daily with 5%, a check reads every pack about every 20 days on average.
// N/M picks the packs whose id's first byte modulo M is N-1, as restic
// does: running 1/M, 2/M, ..., M/M in turn reads every pack exactly once,
// and the groups are stable as the repository grows.
type Subset struct {
	Percent float64 // 0 < Percent <= 100, or 0 with N/M
	N, M    int     // 1 <= N <= M <= 256, or 0
}

// ParseSubset reads "N%" (N a decimal number in (0, 100]) or "N/M".
func ParseSubset(s string) (Subset, error) {
	s = strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || math.IsNaN(v) || v <= 0 || v > 100 {
			return Subset{}, fmt.Errorf("subset %q: the percentage must be a number above 0 and at most 100", s)
		}
		return Subset{Percent: v}, nil
	}
	n, m, ok := strings.Cut(s, "/")
	if !ok {
		return Subset{}, fmt.Errorf("subset %q: write N%% (e.g. 10%%) or N/M (e.g. 1/5)", s)
	}
	nv, err1 := strconv.Atoi(n)
	mv, err2 := strconv.Atoi(m)
	switch {
	case err1 != nil || err2 != nil:
		return Subset{}, fmt.Errorf("subset %q: N and M of N/M must be whole numbers", s)
	case mv < 1 || mv > 256:
		return Subset{}, fmt.Errorf("subset %q: M must be 1 to 256 (packs are grouped by their id's first byte)", s)
	case nv < 1 || nv > mv:
		return Subset{}, fmt.Errorf("subset %q: N must be 1 to M", s)
	}
	return Subset{N: nv, M: mv}, nil
}

// IsZero reports whether s selects every pack.
func (s Subset) IsZero() bool { return s == Subset{} }

// String formats s as ParseSubset reads it ("" for the zero value).
func (s Subset) String() string {
	switch {
	case s.M > 0:
		return fmt.Sprintf("%d/%d", s.N, s.M)
	case s.Percent > 0:
		return strconv.FormatFloat(s.Percent, 'f', -1, 64) + "%"
	}
	return ""
}

func (s Subset) validate() error {
	switch {
	case s.IsZero():
		return nil
	case s.M > 0 && s.Percent == 0 && s.N >= 1 && s.N <= s.M && s.M <= 256:
		return nil
	case s.M == 0 && s.N == 0 && s.Percent > 0 && s.Percent <= 100:
		return nil
	}
	return errors.New("invalid subset: give either Percent or N/M")
}

// pick returns which of ids s selects.
func (s Subset) pick(ids []repo.ID, rnd *rand.Rand) []bool {
	sel := make([]bool, len(ids))
	switch {
	case s.M > 0:
		for i, id := range ids {
			sel[i] = int(id[0])%s.M == s.N-1
		}
	case s.Percent > 0:
		n := int(math.Ceil(float64(len(ids)) * s.Percent / 100))
		for _, i := range rnd.Perm(len(ids))[:min(n, len(ids))] {
			sel[i] = true
		}
	default:
		for i := range sel {
			sel[i] = true
		}
	}
	return sel
}
