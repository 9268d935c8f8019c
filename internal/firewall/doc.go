// Package firewall enforces ban decisions in the kernel with nftables
// (github.com/google/nftables, netlink only: no nft binary is run).
//
// # Table layout
//
// Bulwark owns one table in the inet family (default name "bulwark") and
// never changes any other table; it only lists table and chain names to
// find its own. Inside it:
//
//	table inet bulwark {
//		set ban4    { type ipv4_addr; flags timeout; }           # single IPv4 addresses
//		set ban6    { type ipv6_addr; flags timeout; }           # single IPv6 addresses
//		set bannet4 { type ipv4_addr; flags interval,timeout; }  # IPv4 networks
//		set bannet6 { type ipv6_addr; flags interval,timeout; }  # IPv6 networks
//		chain input {                                            # and chain forward, when asked
//			type filter hook input priority -150; policy accept;
//			ip saddr @ban4 counter drop
//			ip saddr @bannet4 counter drop
//			ip6 saddr @ban6 counter drop
//			ip6 saddr @bannet6 counter drop
//		}
//	}
//
// Priority -150 runs the chain before the usual filter chains (priority 0)
// of other tables, so banned packets are dropped before anything else spends
// work on them. The order does not decide the outcome: a drop in any base
// chain is final, while an accept only ends its own chain. Each rule carries
// a counter, summed by Dropped for metrics, and a comment naming its set.
//
// Open asserts this layout idempotently: it reads the table back and changes
// nothing when chains, sets and rules are exactly as above (so counters and
// elements survive a restart). When anything differs (a rule deleted or
// added by hand, a set of the wrong type, the forward chain switched on or
// off, another priority) it deletes and recreates the table in one netlink
// transaction; the elements are then gone until the next Sync, which callers
// run right after Open anyway.
//
// # Elements
//
// A ban is an Element: a network and an expiry (zero: none). Networks are
// made canonical with netindex.Canonical, so an IPv4-mapped IPv6 address is
// banned as IPv4. A /32 or /128 goes to the hash set ban4/ban6, anything
// wider to the interval set bannet4/bannet6. The per-element timeout is the
// time left, rounded up to the next whole second; an element whose expiry
// has passed is never loaded. The kernel removes elements when their
// timeout runs out, so an expired ban is lifted even if Bulwark is not
// running. It rejects timeouts beyond about 584 years, so an expiry more
// than ten years away is loaded without a timeout.
//
// In an interval set the kernel stores a network as two elements: its first
// address, carrying the timeout, and an end marker (flag interval-end) at the
// first address past it; a network that reaches the top of the address space
// has no end marker. This is what nft itself sends. Reading back, elements
// are sorted by key, end markers before starts at equal keys, and each start
// is paired with the next end marker; an end marker without a start (left
// over by nft, or by a start whose timeout ran out before the kernel's
// garbage collection) matches no address and is ignored. An expired start
// is not dumped by the kernel.
//
// # Merge rule
//
// The kernel rejects overlapping ranges in an interval set, and two CIDRs
// overlap only when one holds the other. Before loading, networks are
// deduplicated (the later expiry wins, no expiry being the latest) and a
// network held by a wider wanted network is dropped: the covering network
// wins. If the narrower one had the longer expiry, it is not in the kernel
// while the wider one is; once the wider one expires, the next
// reconciliation (Sync) finds the narrower one wanted, no longer covered,
// and loads it with its remaining time. Between the wider expiry and that
// Sync the narrower network is not blocked, so callers should Sync at least
// as often as they can tolerate that gap. Single addresses live in the hash
// sets, which cannot conflict with networks, so they are never merged away.
//
// # Reconciliation (Sync)
//
// Sync makes the four sets equal to the wanted bans minus expired and
// merged-away ones:
//
//  1. re-assert the table as Open does (after `nft flush ruleset`, or a
//     rule deleted by hand, the table is rebuilt and refilled);
//  2. canonicalise, drop expired, deduplicate and merge the wanted list;
//  3. dump the four sets from the kernel and pair interval elements;
//  4. diff per set: kernel-only entries (foreign, expired or merged away)
//     are deleted; wanted-only entries are added; an entry in both whose
//     kernel expiry differs from the wanted one by more than two seconds
//     (the rounding plus the kernel's clock granularity) is replaced by a
//     delete and an add of the same element in the same transaction, which
//     works on every kernel (recent kernels update a timeout when an
//     element is added again; older ones, such as 6.1, keep the old one);
//  5. send the changes in netlink transactions ("flushes") of at most
//     BatchSize kernel elements each (an interval network counts as two:
//     start and end marker). Replacements go first, then deletions, then
//     additions; inside a transaction deletions precede additions. A wider
//     network that replaces narrower ones therefore never collides with
//     them, and no element is ever absent between transactions except where
//     it is meant to go.
//
// Add and Remove make incremental changes between reconciliations. Older
// kernels do not update an existing element's timeout, and deleting a
// missing element fails the whole transaction, so for single addresses Add
// sends "add, delete, add" in one transaction (the first add makes the
// delete safe, the second sets the new timeout) and Remove "add, delete".
// For networks this idiom is not usable: the kernel's interval tree fails
// it (ENOENT) when the same transaction also deletes an overlapping range.
// So Add and Remove read the interval set first and send exact changes: a
// network already there is deleted and re-added with its new timeout; one
// held by a wider kernel network is skipped (covering wins); kernel ranges
// inside or partly overlapping a new network are deleted in the same
// transaction. If those exceed BatchSize they are deleted in earlier
// transactions, leaving them unblocked for the few milliseconds until the
// wider network lands.
//
// # Limits of the library and kernel
//
// google/nftables v0.3.0 returns a Flush error without saying which message
// failed; errors here name the operation and table instead. Its set IDs come
// from an unsynchronised package counter, so this package sets its own IDs.
// Priority 0 cannot be chosen through Options (0 selects the default -150);
// use -1 or 1.
package firewall
