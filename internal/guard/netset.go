package guard

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/bulwarkhq/bulwark/internal/detect"
)

// netSet is a set of networks (addresses are /32 or /128 networks) with
// lock-free lookups: a reader loads an immutable snapshot, a writer copies
// it under a mutex. A lookup masks the address once per distinct prefix
// length in the set and looks the result up in a map, so it costs a few
// map lookups however many entries there are (a deny list of 100,000
// single addresses has one length).
type netSet struct {
	mu   sync.Mutex // serialises writers
	snap atomic.Pointer[netSnapshot]
}

type netSnapshot struct {
	byBits map[int]map[netip.Prefix]struct{} // prefix length -> networks
	bits   []int                             // the keys of byBits, longest first
	n      int
}

func newNetSet(nets []netip.Prefix) *netSet {
	s := &netSet{}
	s.snap.Store(buildSnapshot(nets))
	return s
}

func buildSnapshot(nets []netip.Prefix) *netSnapshot {
	sn := &netSnapshot{byBits: map[int]map[netip.Prefix]struct{}{}}
	for _, p := range nets {
		p = detect.Canonical(p)
		m := sn.byBits[p.Bits()]
		if m == nil {
			m = map[netip.Prefix]struct{}{}
			sn.byBits[p.Bits()] = m
			sn.bits = append(sn.bits, p.Bits())
		}
		if _, dup := m[p]; !dup {
			m[p] = struct{}{}
			sn.n++
		}
	}
	slices.Sort(sn.bits)
	slices.Reverse(sn.bits)
	return sn
}

// Match returns the most specific network of the set that holds a.
func (s *netSet) Match(a netip.Addr) (netip.Prefix, bool) {
	sn := s.snap.Load()
	if sn.n == 0 {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	for _, b := range sn.bits {
		if b > a.BitLen() {
			continue
		}
		p, err := a.Prefix(b)
		if err != nil {
			continue
		}
		if _, ok := sn.byBits[b][p]; ok {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// Contains reports whether a is in one of the set's networks.
func (s *netSet) Contains(a netip.Addr) bool {
	_, ok := s.Match(a)
	return ok
}

// List returns the networks, sorted.
func (s *netSet) List() []netip.Prefix {
	sn := s.snap.Load()
	out := make([]netip.Prefix, 0, sn.n)
	for _, m := range sn.byBits {
		for p := range m {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, comparePrefix)
	return out
}

// Len is the number of networks.
func (s *netSet) Len() int { return s.snap.Load().n }

// Add adds networks; it reports how many were new.
func (s *netSet) Add(nets ...netip.Prefix) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.List()
	sn := buildSnapshot(append(old, nets...))
	s.snap.Store(sn)
	return sn.n - len(old)
}

// Remove removes networks (exactly as listed); it reports how many were
// there.
func (s *netSet) Remove(nets ...netip.Prefix) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	drop := map[netip.Prefix]bool{}
	for _, p := range nets {
		drop[detect.Canonical(p)] = true
	}
	old := s.List()
	kept := old[:0:0]
	for _, p := range old {
		if !drop[p] {
			kept = append(kept, p)
		}
	}
	s.snap.Store(buildSnapshot(kept))
	return len(old) - len(kept)
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}
