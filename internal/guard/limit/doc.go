// Package limit holds the per-key limit tables of the guard, the protecting
// reverse proxy in front of Bulwark:
//
//   - [Rate]: requests per second with a burst, per key (GCRA).
//   - [Conns]: concurrent connections or in-flight requests, per key.
//   - [Window]: attempts per sliding window, per key, with the limit given
//     per call (login tries per account).
//   - [Bytes]: a byte-rate shaper shared by many goroutines (bandwidth cap).
//
// The keyed tables face attackers who cycle source addresses and account
// names, so they are built to stay cheap whatever the key stream:
//
//   - Memory is bounded. A table never holds more than Options.MaxKeys
//     entries. Rate and Window forget entries whose state is the same as a
//     fresh entry's (a full bucket, two expired windows); such entries are
//     swept incrementally on inserts and by a full sweep of a shard at most
//     once per Options.IdleAfter. When a shard is full of live entries,
//     Rate and Window evict the sampled entry closest to being forgettable
//     and count it (Evictions); Conns never evicts, because its entries are
//     live connections, and refuses new keys instead.
//   - Operations are O(1) (the full sweep amortised) and concurrent: each
//     table is split into up to 64 shards chosen by a seeded hash of the
//     key (hash/maphash, so an attacker cannot aim at one shard), each with
//     its own mutex. There is no global lock on any hot path.
//
// Keys are any comparable type; netip.Prefix (an address masked to the
// granularity the guard limits at) and string (account names) are the
// intended ones. Keys are compared with ==, so build prefixes with
// addr.Unmap().Prefix(bits), which masks the host bits (netip.PrefixFrom
// does not, and ::ffff:192.0.2.1 is not 192.0.2.1). String keys are stored
// as given, so callers should bound their length before using
// attacker-supplied names as keys. The key type is a type parameter of the
// constructors: NewRate[netip.Prefix](10, 20, Options{}).
package limit

import "time"

// DefaultMaxKeys is the table size used when Options.MaxKeys is not positive.
// At 60 to 75 bytes per entry with netip.Prefix keys (TestMemoryPerEntry)
// that is under 20 MB per table at most.
const DefaultMaxKeys = 1 << 18

// DefaultIdleAfter is the sweep period used when Options.IdleAfter is not
// positive.
const DefaultIdleAfter = time.Minute

// Options configures a keyed table (Rate, Conns, Window). The zero value
// selects the defaults.
type Options struct {
	// MaxKeys bounds the number of entries the table holds. Not positive
	// selects DefaultMaxKeys. The bound is split evenly over the shards
	// (64, or fewer so that each holds at least 16 entries),
	// so a shard can be full while the table as a whole is not.
	MaxKeys int

	// IdleAfter is the period of the full sweep of each shard: an entry
	// that has become forgettable (Rate: its bucket is full again; Window:
	// both of its windows have expired) is removed at most about IdleAfter
	// later, on the next operation on its shard (or by Sweep). Inserts also
	// remove the forgettable entries they come across. Not positive selects
	// DefaultIdleAfter. Conns ignores it: its entries are deleted as soon as
	// their count reaches zero.
	IdleAfter time.Duration

	// Now is the clock used by Sweep and when a zero time is passed to
	// Rate.Allow or Window.Hit. Nil selects time.Now.
	Now func() time.Time
}
