//go:build linux

package firewall

// Reconciliation and incremental updates, and the packing of their changes
// into netlink transactions of at most BatchSize elements (see the package
// documentation for the algorithm and its ordering rules).

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/google/nftables"
)

// Phases order the operations inside one transaction.
const (
	phaseDelete   = iota // deletions of conflicting or unwanted elements
	phaseAdd             // additions (Add: the add that makes the delete safe)
	phaseRedelete        // Add, Remove: the delete of "add, delete[, add]"
	phaseReadd           // Add: the final add with the new timeout
)

// op is one span added to or deleted from one set.
type op struct {
	set   int
	phase int
	del   bool
	elems []nftables.SetElement
}

// group holds operations that must land in the same transaction when they
// fit in one.
type group []op

func (g group) size() int {
	n := 0
	for _, o := range g {
		n += len(o.elems)
	}
	return n
}

// pack splits groups into transactions of at most limit elements, in
// order, keeping each group whole when it fits in a transaction, and sorts
// each transaction's operations by phase (stable).
func pack(groups []group, limit int) [][]op {
	var out [][]op
	var cur []op
	n := 0
	emit := func() {
		if len(cur) > 0 {
			slices.SortStableFunc(cur, func(a, b op) int { return cmp.Compare(a.phase, b.phase) })
			out = append(out, cur)
		}
		cur, n = nil, 0
	}
	for _, g := range groups {
		size := g.size()
		if size > limit {
			// Too big for one transaction (a network replacing many
			// narrower ones): split at operation boundaries, in phase
			// order, so its deletions land first.
			emit()
			g = slices.Clone(g)
			slices.SortStableFunc(g, func(a, b op) int { return cmp.Compare(a.phase, b.phase) })
			for _, o := range g {
				if n+len(o.elems) > limit {
					emit()
				}
				cur = append(cur, o)
				n += len(o.elems)
			}
			emit()
			continue
		}
		if n+size > limit {
			emit()
		}
		cur = append(cur, g...)
		n += size
	}
	emit()
	return out
}

// apply sends the transactions, coalescing consecutive operations of the
// same kind on the same set into one netlink message.
func (f *Firewall) apply(txs [][]op, what string) error {
	for _, tx := range txs {
		for i := 0; i < len(tx); {
			j := i + 1
			for j < len(tx) && tx[j].set == tx[i].set && tx[j].del == tx[i].del && tx[j].phase == tx[i].phase {
				j++
			}
			var els []nftables.SetElement
			for _, o := range tx[i:j] {
				els = append(els, o.elems...)
			}
			s := f.sets[tx[i].set]
			var err error
			if tx[i].del {
				err = f.conn.SetDeleteElements(s, els)
			} else {
				err = f.conn.SetAddElements(s, els)
			}
			if err != nil {
				return fmt.Errorf("firewall: table inet %s: %s: set %s: %w", f.opt.Table, what, s.Name, err)
			}
			i = j
		}
		if err := f.conn.Flush(); err != nil {
			return fmt.Errorf("firewall: table inet %s: %s: %w", f.opt.Table, what, err)
		}
	}
	return nil
}

// read dumps set i from the kernel.
func (f *Firewall) read(set int, now time.Time) (map[span]time.Time, error) {
	els, err := f.conn.GetSetElements(f.sets[set])
	if err != nil {
		return nil, fmt.Errorf("firewall: table inet %s: read set %s: %w", f.opt.Table, setNames[set], err)
	}
	return decode(set, els, now)
}

// Sync reconciles the kernel with want: it re-asserts the table as Open
// does, then makes the sets hold exactly the unexpired elements of want
// (merged: see the package documentation) with their expiries; foreign,
// expired and unwanted elements are gone.
func (f *Firewall) Sync(want []Element) (SyncStats, error) {
	start := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return SyncStats{}, errClosed
	}
	now := f.opt.Now()
	plan, err := plan(want, now)
	if err != nil {
		return SyncStats{}, err
	}
	// Re-assert the table first: after `nft flush ruleset` or a deleted
	// rule there would be nothing, or no rule, to hold the elements.
	if err := f.assert(); err != nil {
		return SyncStats{}, err
	}
	var st SyncStats
	var replaces, deletes, adds []group
	for set := range numSets {
		have, err := f.read(set, now)
		if err != nil {
			return st, err
		}
		for sp, exp := range have {
			wexp, wanted := plan[set][sp]
			switch {
			case !wanted:
				deletes = append(deletes, group{{set: set, phase: phaseDelete, del: true, elems: elements(set, sp, 0)}})
				st.Removed++
			case differs(exp, wexp):
				d, _ := timeout(wexp, now)
				replaces = append(replaces, group{
					{set: set, phase: phaseDelete, del: true, elems: elements(set, sp, 0)},
					{set: set, phase: phaseAdd, elems: elements(set, sp, d)},
				})
				st.Updated++
			}
		}
		for sp, exp := range plan[set] {
			if _, ok := have[sp]; ok {
				continue
			}
			d, _ := timeout(exp, now)
			adds = append(adds, group{{set: set, phase: phaseAdd, elems: elements(set, sp, d)}})
			st.Added++
		}
	}
	groups := slices.Concat(replaces, deletes, adds)
	if err := f.apply(pack(groups, f.opt.BatchSize), "sync"); err != nil {
		return st, err
	}
	st.Total = plan.len()
	st.Duration = time.Since(start)
	return st, nil
}

// Add bans elements now, between reconciliations; an element already
// there gets the new expiry. Expired elements are skipped, and a network
// held by a wider banned network is skipped (the wider one wins).
func (f *Firewall) Add(e ...Element) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errClosed
	}
	now := f.opt.Now()
	plan, err := plan(e, now)
	if err != nil {
		return err
	}
	var groups []group
	for set := range numSets {
		if len(plan[set]) == 0 {
			continue
		}
		if !isInterval(set) {
			// "add, delete, add": the first add makes the delete safe
			// whether or not the address is there, the last one sets
			// the new timeout.
			for _, sp := range sortedSpans(plan[set]) {
				d, _ := timeout(plan[set][sp], now)
				groups = append(groups, group{
					{set: set, phase: phaseAdd, elems: elements(set, sp, d)},
					{set: set, phase: phaseRedelete, del: true, elems: elements(set, sp, 0)},
					{set: set, phase: phaseReadd, elems: elements(set, sp, d)},
				})
			}
			continue
		}
		// Interval sets: the kernel's rbtree fails "add, delete" of a
		// range in a transaction that also deletes an overlapping range
		// (ENOENT, seen on 6.18), and we need the ranges anyway to find
		// overlaps, so read them and send exact changes.
		have, err := f.read(set, now)
		if err != nil {
			return err
		}
		deleted := map[span]bool{}
	next:
		for _, sp := range sortedSpans(plan[set]) {
			d, _ := timeout(plan[set][sp], now)
			if _, ok := have[sp]; ok {
				groups = append(groups, group{
					{set: set, phase: phaseDelete, del: true, elems: elements(set, sp, 0)},
					{set: set, phase: phaseAdd, elems: elements(set, sp, d)},
				})
				continue
			}
			var g group
			for k := range have {
				switch {
				case deleted[k] || !k.overlaps(sp):
				case k.contains(sp) && isCIDR(k):
					continue next // held by a wider network: it wins
				default:
					g = append(g, op{set: set, phase: phaseDelete, del: true, elems: elements(set, k, 0)})
					deleted[k] = true
				}
			}
			groups = append(groups, append(g, op{set: set, phase: phaseAdd, elems: elements(set, sp, d)}))
		}
	}
	return f.apply(pack(groups, f.opt.BatchSize), "add")
}

// Remove lifts the bans on exactly these networks (a network not banned is
// ignored). An address inside a still-banned wider network stays blocked;
// a narrower network that was merged into a removed wider one comes back
// at the next Sync.
func (f *Firewall) Remove(nets ...netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errClosed
	}
	now := f.opt.Now()
	var have [numSets]map[span]time.Time
	seen := map[netip.Prefix]bool{}
	var groups []group
	for _, n := range nets {
		p, _, err := canonical(Element{Net: n}, now)
		if err != nil {
			return err
		}
		if seen[p] {
			continue
		}
		seen[p] = true
		set := target(p)
		sp := spanOf(p, isInterval(set))
		if !isInterval(set) {
			// "add, delete": deleting a missing element would fail the
			// whole transaction.
			groups = append(groups, group{
				{set: set, phase: phaseAdd, elems: elements(set, sp, 0)},
				{set: set, phase: phaseRedelete, del: true, elems: elements(set, sp, 0)},
			})
			continue
		}
		// Adding a network that overlaps another fails, so look first.
		if have[set] == nil {
			h, err := f.read(set, now)
			if err != nil {
				return err
			}
			have[set] = h
		}
		if _, ok := have[set][sp]; ok {
			groups = append(groups, group{{set: set, phase: phaseDelete, del: true, elems: elements(set, sp, 0)}})
		}
	}
	return f.apply(pack(groups, f.opt.BatchSize), "remove")
}

func isCIDR(s span) bool { _, ok := s.prefix(true); return ok }

// sortedSpans orders spans by address, for reproducible transactions.
func sortedSpans(m map[span]time.Time) []span {
	out := make([]span, 0, len(m))
	for sp := range m {
		out = append(out, sp)
	}
	slices.SortFunc(out, func(a, b span) int { return a.lo.Compare(b.lo) })
	return out
}

// Elements returns the bans in the kernel now, ordered by set (ban4,
// bannet4, ban6, bannet6) and address. Expiries are the kernel's, to its
// millisecond granularity. Ranges that are not one CIDR network (added by
// hand, never by this package) are left out.
func (f *Firewall) Elements() ([]Element, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, errClosed
	}
	now := f.opt.Now()
	var out []Element
	for set := range numSets {
		have, err := f.read(set, now)
		if err != nil {
			return nil, err
		}
		for _, sp := range sortedSpans(have) {
			p, ok := sp.prefix(isInterval(set))
			if !ok {
				continue
			}
			out = append(out, Element{Net: p, Expires: have[sp]})
		}
	}
	return out, nil
}
