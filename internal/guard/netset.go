package guard

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/bulwarkhq/bulwark/internal/netindex"
)

// netSet is a set of networks (addresses are /32 or /128 networks) with
// lock-free lookups: a reader loads an immutable index (internal/netindex),
// a writer builds a new one under a mutex and swaps it in.
type netSet struct {
	mu   sync.Mutex // serialises writers
	snap atomic.Pointer[netindex.Index[struct{}]]
}

func newNetSet(nets []netip.Prefix) *netSet {
	s := &netSet{}
	s.snap.Store(buildIndex(nets))
	return s
}

func buildIndex(nets []netip.Prefix) *netindex.Index[struct{}] {
	ix := netindex.New[struct{}]()
	for _, p := range nets {
		ix.Add(p, struct{}{}, nil)
	}
	return ix
}

// Contains reports whether a is in one of the set's networks.
func (s *netSet) Contains(a netip.Addr) bool {
	_, _, ok := s.snap.Load().Match(a, nil)
	return ok
}

// List returns the networks, sorted.
func (s *netSet) List() []netip.Prefix {
	ix := s.snap.Load()
	out := make([]netip.Prefix, 0, ix.Len())
	for p := range ix.All() {
		out = append(out, p)
	}
	slices.SortFunc(out, comparePrefix)
	return out
}

// Len is the number of networks.
func (s *netSet) Len() int { return s.snap.Load().Len() }

// Add adds networks; it reports how many were new.
func (s *netSet) Add(nets ...netip.Prefix) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.List()
	ix := buildIndex(append(old, nets...))
	s.snap.Store(ix)
	return ix.Len() - len(old)
}

// Remove removes networks (exactly as listed); it reports how many were
// there.
func (s *netSet) Remove(nets ...netip.Prefix) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	drop := map[netip.Prefix]bool{}
	for _, p := range nets {
		drop[netindex.Canonical(p)] = true
	}
	old := s.List()
	kept := slices.DeleteFunc(slices.Clone(old), func(p netip.Prefix) bool { return drop[p] })
	s.snap.Store(buildIndex(kept))
	return len(old) - len(kept)
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}
