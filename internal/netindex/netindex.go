// Package netindex finds, among many networks, the most specific one that
// holds an address: the lookup behind the guard's allow and deny lists and
// the ban decisions.
//
// Networks are kept in one map per prefix length. A lookup masks the
// address once per distinct length, longest first, and probes that map, so
// it costs a few map lookups however many networks there are (100,000
// single addresses are one length, one probe). An Index is built once and
// then only read; callers that change their set build a new one and swap
// it in atomically, so readers never lock.
package netindex

import (
	"iter"
	"net/netip"
	"slices"
)

// Index maps networks to values.
type Index[V any] struct {
	byBits map[int]map[netip.Prefix]V // prefix length -> networks
	bits   []int                      // the keys of byBits, longest first
	n      int
}

// New returns an empty index.
func New[V any]() *Index[V] { return &Index[V]{byBits: map[int]map[netip.Prefix]V{}} }

// Canonical masks a network and unmaps an IPv4-mapped one, so that one
// network has one spelling.
func Canonical(p netip.Prefix) netip.Prefix {
	a := p.Addr()
	if a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked()
	}
	return p.Masked()
}

// Add puts v under network p (made canonical). When p is already there,
// keep chooses between the old and the new value (nil: the new one). It
// reports whether p was new. Add must not be called once the index is
// shared with readers.
func (ix *Index[V]) Add(p netip.Prefix, v V, keep func(old, new V) V) bool {
	p = Canonical(p)
	m := ix.byBits[p.Bits()]
	if m == nil {
		m = map[netip.Prefix]V{}
		ix.byBits[p.Bits()] = m
		i, _ := slices.BinarySearchFunc(ix.bits, p.Bits(), func(a, b int) int { return b - a })
		ix.bits = slices.Insert(ix.bits, i, p.Bits())
	}
	old, dup := m[p]
	if dup && keep != nil {
		v = keep(old, v)
	}
	m[p] = v
	if !dup {
		ix.n++
	}
	return !dup
}

// Match returns the most specific network holding a whose value ok
// accepts (nil: any), with its value.
func (ix *Index[V]) Match(a netip.Addr, ok func(V) bool) (netip.Prefix, V, bool) {
	var zero V
	if ix.n == 0 {
		return netip.Prefix{}, zero, false
	}
	a = a.Unmap()
	for _, b := range ix.bits {
		if b > a.BitLen() {
			continue
		}
		p, err := a.Prefix(b)
		if err != nil {
			continue
		}
		if v, found := ix.byBits[b][p]; found && (ok == nil || ok(v)) {
			return p, v, true
		}
	}
	return netip.Prefix{}, zero, false
}

// Len is the number of networks.
func (ix *Index[V]) Len() int { return ix.n }

// All yields every network and its value, in no particular order.
func (ix *Index[V]) All() iter.Seq2[netip.Prefix, V] {
	return func(yield func(netip.Prefix, V) bool) {
		for _, m := range ix.byBits {
			for p, v := range m {
				if !yield(p, v) {
					return
				}
			}
		}
	}
}

// Compare orders networks by address, then by length (shorter first): the
// order of a sorted list.
func Compare(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}
