//go:build linux

package firewall

// Elements as sets of spans. A ban is turned into a span [lo, hi) of
// addresses and a target set; interval sets store a span as a start element
// and an end marker at hi, hash sets store lo alone. Reading back reverses
// this (see the package documentation on end markers). Wanted networks are
// merged so that no two spans of one interval set overlap.

import (
	"bytes"
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/bulwarkhq/bulwark/internal/netindex"
	"github.com/google/nftables"
)

// span is the address range [lo, hi). For a hash set hi is the zero Addr;
// for an interval set a zero hi means "to the top of the address space".
type span struct {
	lo, hi netip.Addr
}

func (s span) String() string {
	if !s.hi.IsValid() {
		return s.lo.String() + "-"
	}
	return s.lo.String() + "-" + s.hi.String()
}

// overlaps reports whether two interval spans share an address.
func (s span) overlaps(o span) bool {
	return (!o.hi.IsValid() || s.lo.Less(o.hi)) && (!s.hi.IsValid() || o.lo.Less(s.hi))
}

// contains reports whether interval span s holds all of o.
func (s span) contains(o span) bool {
	if o.lo.Less(s.lo) {
		return false
	}
	if !s.hi.IsValid() {
		return true
	}
	return o.hi.IsValid() && !s.hi.Less(o.hi)
}

// prefix returns the network a span stands for, if it is exactly one
// (a foreign interval such as 10.0.0.1-10.0.0.5 is not).
func (s span) prefix(interval bool) (netip.Prefix, bool) {
	if !interval {
		return netip.PrefixFrom(s.lo, s.lo.BitLen()), true
	}
	for bits := 0; bits <= s.lo.BitLen(); bits++ {
		p := netip.PrefixFrom(s.lo, bits)
		if p.Masked() == p && spanOf(p, true) == s {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// spanOf is the span of canonical network p in a hash (interval false) or
// interval set.
func spanOf(p netip.Prefix, interval bool) span {
	if !interval {
		return span{lo: p.Addr()}
	}
	return span{lo: p.Addr(), hi: lastAddr(p).Next()} // Next past the top is the zero Addr
}

// target returns the set for canonical network p.
func target(p netip.Prefix) int {
	switch {
	case p.Addr().Is4() && p.Bits() == 32:
		return setBan4
	case p.Addr().Is4():
		return setBanNet4
	case p.Bits() == 128:
		return setBan6
	}
	return setBanNet6
}

func isInterval(set int) bool { return set == setBanNet4 || set == setBanNet6 }

// state is the content of the four sets: span -> expiry (zero: none).
type state [numSets]map[span]time.Time

func newState() state {
	var s state
	for i := range s {
		s[i] = map[span]time.Time{}
	}
	return s
}

func (s state) len() int {
	n := 0
	for _, m := range s {
		n += len(m)
	}
	return n
}

// later reports whether expiry a ends after b (zero: never).
func later(a, b time.Time) bool {
	if a.IsZero() {
		return !b.IsZero()
	}
	return !b.IsZero() && a.After(b)
}

// canonical validates e and returns its canonical network, and whether it
// is still in force at now.
func canonical(e Element, now time.Time) (netip.Prefix, bool, error) {
	if !e.Net.IsValid() {
		return netip.Prefix{}, false, fmt.Errorf("firewall: invalid network %v", e.Net)
	}
	p := netindex.Canonical(e.Net)
	return p, e.Expires.IsZero() || e.Expires.After(now), nil
}

// maxTimeout is the longest timeout loaded. The kernel rejects timeouts
// beyond about 584 years (ERANGE); a ban ending more than ten years away
// is loaded without one, so that its kernel expiry never drifts from the
// wanted one.
const maxTimeout = 10 * 365 * 24 * time.Hour

// plan turns wanted bans into set contents: canonical, unexpired,
// deduplicated (the later expiry wins) and merged (a network held by a
// wider one is dropped: the covering network wins).
func plan(want []Element, now time.Time) (state, error) {
	st := newState()
	nets := map[netip.Prefix]time.Time{}
	for _, e := range want {
		p, live, err := canonical(e, now)
		if err != nil {
			return st, err
		}
		if !live {
			continue
		}
		exp := e.Expires
		if exp.Sub(now) > maxTimeout {
			exp = time.Time{}
		}
		t := target(p)
		if !isInterval(t) {
			sp := spanOf(p, false)
			if old, dup := st[t][sp]; !dup || later(exp, old) {
				st[t][sp] = exp
			}
			continue
		}
		if old, dup := nets[p]; !dup || later(exp, old) {
			nets[p] = exp
		}
	}
	for _, p := range merge(nets) {
		st[target(p)][spanOf(p, true)] = nets[p]
	}
	return st, nil
}

// merge returns the networks not held by another one of nets. Two CIDRs
// overlap only when one holds the other, so visiting the widest first and
// keeping those not under a kept one leaves disjoint networks.
func merge[V any](nets map[netip.Prefix]V) []netip.Prefix {
	order := make([]netip.Prefix, 0, len(nets))
	for p := range nets {
		order = append(order, p)
	}
	slices.SortFunc(order, func(a, b netip.Prefix) int {
		if c := cmp.Compare(a.Bits(), b.Bits()); c != 0 {
			return c
		}
		return a.Addr().Compare(b.Addr())
	})
	kept := netindex.New[struct{}]()
	out := order[:0]
	for _, p := range order {
		if _, _, held := kept.Match(p.Addr(), nil); held {
			continue
		}
		kept.Add(p, struct{}{}, nil)
		out = append(out, p)
	}
	return out
}

// timeout is the kernel timeout for an expiry: the time left rounded up
// to a whole second; 0 for no expiry. ok is false when already expired.
func timeout(exp, now time.Time) (d time.Duration, ok bool) {
	if exp.IsZero() {
		return 0, true
	}
	left := exp.Sub(now)
	if left <= 0 {
		return 0, false
	}
	return (left + time.Second - 1) / time.Second * time.Second, true
}

// elements encodes a span for set i, with timeout d (0: none).
func elements(set int, sp span, d time.Duration) []nftables.SetElement {
	out := []nftables.SetElement{{Key: sp.lo.AsSlice(), Timeout: d}}
	if isInterval(set) && sp.hi.IsValid() {
		out = append(out, nftables.SetElement{Key: sp.hi.AsSlice(), IntervalEnd: true})
	}
	return out
}

// decode turns the elements of set i, as dumped by the kernel, into spans
// with their expiry relative to now.
func decode(set int, els []nftables.SetElement, now time.Time) (map[span]time.Time, error) {
	size := 4
	if set == setBan6 || set == setBanNet6 {
		size = 16
	}
	expiry := func(e nftables.SetElement) time.Time {
		if e.Timeout == 0 {
			return time.Time{}
		}
		return now.Add(e.Expires)
	}
	addr := func(e nftables.SetElement) (netip.Addr, error) {
		if len(e.Key) != size {
			return netip.Addr{}, fmt.Errorf("firewall: set %s: element key of %d bytes, want %d", setNames[set], len(e.Key), size)
		}
		a, _ := netip.AddrFromSlice(e.Key)
		return a, nil
	}
	out := make(map[span]time.Time, len(els))
	if !isInterval(set) {
		for _, e := range els {
			a, err := addr(e)
			if err != nil {
				return nil, err
			}
			out[span{lo: a}] = expiry(e)
		}
		return out, nil
	}
	// Sort by key, end markers first at equal keys: an end marker closes
	// the span before it, and the next span may start at the same address.
	els = slices.Clone(els)
	slices.SortStableFunc(els, func(a, b nftables.SetElement) int {
		if c := bytes.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		switch {
		case a.IntervalEnd == b.IntervalEnd:
			return 0
		case a.IntervalEnd:
			return -1
		}
		return 1
	})
	var open *nftables.SetElement
	var openAddr netip.Addr
	for i := range els {
		e := &els[i]
		a, err := addr(*e)
		if err != nil {
			return nil, err
		}
		switch {
		case e.IntervalEnd && open != nil:
			out[span{lo: openAddr, hi: a}] = expiry(*open)
			open = nil
		case e.IntervalEnd:
			// An end marker with no start: matches nothing.
		case open != nil:
			// Two starts in a row (not something nft or this package
			// sends): record the first without an end so that deleting
			// it deletes exactly the element that is there.
			out[span{lo: openAddr}] = expiry(*open)
			open, openAddr = e, a
		default:
			open, openAddr = e, a
		}
	}
	if open != nil {
		out[span{lo: openAddr}] = expiry(*open)
	}
	return out, nil
}

// differs reports whether a kernel expiry is too far from the wanted one
// to leave as it is: rounding up adds up to a second and the kernel counts
// in jiffies.
func differs(have, want time.Time) bool {
	if have.IsZero() || want.IsZero() {
		return have.IsZero() != want.IsZero()
	}
	d := have.Sub(want)
	return d > 2*time.Second || d < -2*time.Second
}
