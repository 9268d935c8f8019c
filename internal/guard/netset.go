package guard

import (
	"net/netip"
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

// Len is the number of networks.
func (s *netSet) Len() int { return s.snap.Load().Len() }

// Set replaces the networks.
func (s *netSet) Set(nets []netip.Prefix) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snap.Store(buildIndex(nets))
}
