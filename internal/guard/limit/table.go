// The sharded map under Rate, Conns and Window.
//
// A table is up to 64 shards, each a plain Go map behind its own mutex
// (fewer shards when MaxKeys is below 64*16, so that each holds at least 16
// entries to sample from). The shard of a key is chosen by
// maphash.Comparable with a per-table random seed, so keys spread evenly and
// an attacker cannot predict which shard a key lands in. The hot path of every operation is: hash the key, lock one
// shard, one or two map operations, unlock.
//
// Memory is bounded by a per-shard cap (Options.MaxKeys split over the
// shards, the remainder spread so that the caps add up to MaxKeys exactly).
// Three mechanisms keep entries from piling up, all of them constant or
// amortised constant work per operation:
//
//   - Every insert of a new key looks at a couple of entries of its shard
//     (a Go map range starts at a random position, so this is a random
//     sample) and deletes those that are forgettable. Forgettable means the
//     entry behaves exactly like a missing one, so deleting it never changes
//     an answer.
//   - Once per sweep period (Options.IdleAfter) per shard, the first
//     operation on the shard deletes all its forgettable entries. The cost
//     is linear in the shard's size but paid once per period, and a shard
//     holds at most MaxKeys/64 entries (4,096 by default: 60µs to scan
//     when all are live, 180µs when all are deleted, measured on a loaded
//     2-core machine; only that one shard is locked meanwhile).
//   - An insert into a full shard samples a few more entries; if none is
//     forgettable it evicts the one closest to being forgettable (the
//     smallest rank) and counts the eviction. A table without a rank
//     function (Conns) refuses the insert instead.
//
// Go maps never give memory back as they empty, so after a sweep or a
// delete a shard whose map has fallen to a quarter of its peak size is
// copied into a right-sized map; the copy is paid for by the deletes that
// preceded it.

package limit

import (
	"hash/maphash"
	"math/bits"
	"sync"
	"time"
)

const (
	maxShards = 64

	// sampleOnInsert is how many entries an insert into a shard with room
	// examines for forgettable ones.
	sampleOnInsert = 2

	// sampleOnFull is how many entries an insert into a full shard examines
	// to find a forgettable entry or, failing that, an eviction victim.
	sampleOnFull = 8

	// minShardKeys is the smallest shard cap worth a shard of its own:
	// smaller tables get fewer shards, so that eviction sampling still has
	// entries to choose from.
	minShardKeys = 16

	// shrinkMin is the peak map size below which a shard never bothers to
	// reallocate its map.
	shrinkMin = 1024
)

// shard is one lock's worth of a table.
type shard[K comparable, V any] struct {
	mu        sync.Mutex
	m         map[K]V
	max       int   // entries this shard may hold
	peak      int   // largest len(m) since the map was last allocated
	lastSweep int64 // table ticks of the last full sweep
	evictions uint64
	_         [64]byte // keeps neighbouring shards' mutexes off one cache line
}

// table is the sharded map shared by the keyed limiters. V is the per-key
// state; expired and rank interpret it (see newTable).
type table[K comparable, V any] struct {
	seed   maphash.Seed
	shards []shard[K, V]
	mask   uint64
	idle   int64 // full sweep period in ticks; 0 disables sweeping
	epoch  time.Time
	now    func() time.Time

	// expired reports whether an entry is forgettable at tick now: deleting
	// it changes no answer. Nil means entries never expire.
	expired func(v V, now int64) bool

	// rank orders eviction victims: the smallest rank is evicted first.
	// Nil means the table never evicts and refuses new keys when full.
	rank func(v V) int64
}

// newTable builds a table for opt. sweep enables the expiry machinery.
func newTable[K comparable, V any](opt Options, sweep bool, expired func(V, int64) bool, rank func(V) int64) *table[K, V] {
	maxKeys := opt.MaxKeys
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	n := maxShards
	for n > 1 && maxKeys/n < minShardKeys {
		n /= 2
	}
	now := opt.Now
	if now == nil {
		now = time.Now
	}
	t := &table[K, V]{
		seed:    maphash.MakeSeed(),
		shards:  make([]shard[K, V], n),
		mask:    uint64(n - 1),
		epoch:   now(),
		now:     now,
		expired: expired,
		rank:    rank,
	}
	if sweep {
		idle := opt.IdleAfter
		if idle <= 0 {
			idle = DefaultIdleAfter
		}
		t.idle = int64(idle)
	}
	for i := range t.shards {
		s := &t.shards[i]
		s.m = make(map[K]V)
		s.max = maxKeys / n
		if i < maxKeys%n {
			s.max++
		}
	}
	return t
}

// ticks converts a time to the table's clock: nanoseconds since the table
// was made. time.Time.Sub uses the monotonic clock when both times carry a
// reading (times from time.Now do), so a step of the wall clock does not
// lock everyone out or hand out a fresh burst. A zero time means "now".
func (t *table[K, V]) ticks(now time.Time) int64 {
	if now.IsZero() {
		now = t.now()
	}
	return int64(now.Sub(t.epoch))
}

// lock finds the shard of key, locks it and, when its sweep is due at tick
// now, sweeps it. The caller unlocks s.mu.
func (t *table[K, V]) lock(key K, now int64) *shard[K, V] {
	s := &t.shards[maphash.Comparable(t.seed, key)&t.mask]
	s.mu.Lock()
	if t.idle > 0 {
		if d := now - s.lastSweep; d >= t.idle || d <= -t.idle {
			t.sweepLocked(s, now)
		}
	}
	return s
}

// sweepLocked deletes every forgettable entry of s and returns how many.
func (t *table[K, V]) sweepLocked(s *shard[K, V], now int64) int {
	s.lastSweep = now
	if t.expired == nil {
		return 0
	}
	n := 0
	for k, v := range s.m {
		if t.expired(v, now) {
			delete(s.m, k)
			n++
		}
	}
	s.shrinkLocked()
	return n
}

// sweep sweeps every shard at tick now and returns the number of entries
// deleted.
func (t *table[K, V]) sweep(now int64) int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += t.sweepLocked(s, now)
		s.mu.Unlock()
	}
	return n
}

// roomLocked makes room in s for one new key at tick now. It returns false
// only when s is full and the table never evicts.
func (t *table[K, V]) roomLocked(s *shard[K, V], now int64) bool {
	full := len(s.m) >= s.max
	if !full && t.expired == nil {
		return true
	}
	sample := sampleOnInsert
	if full {
		sample = sampleOnFull
	}
	freed := 0
	var victim K
	var victimRank int64
	haveVictim := false
	seen := 0
	for k, v := range s.m {
		if t.expired != nil && t.expired(v, now) {
			delete(s.m, k)
			freed++
		} else if full && t.rank != nil {
			if r := t.rank(v); !haveVictim || r < victimRank {
				victim, victimRank, haveVictim = k, r, true
			}
		}
		seen++
		if seen >= sample {
			break
		}
	}
	if !full || freed > 0 {
		return true
	}
	if !haveVictim {
		return false
	}
	delete(s.m, victim)
	s.evictions++
	return true
}

// insertedLocked records that s grew by one entry.
func (s *shard[K, V]) insertedLocked() {
	if len(s.m) > s.peak {
		s.peak = len(s.m)
	}
}

// shrinkLocked reallocates the map of s when it has fallen to a quarter of
// its peak size, because Go maps keep their memory as they empty.
func (s *shard[K, V]) shrinkLocked() {
	if s.peak < shrinkMin || len(s.m) > s.peak/4 {
		return
	}
	m := make(map[K]V, len(s.m))
	for k, v := range s.m {
		m[k] = v
	}
	s.m = m
	s.peak = len(m)
}

// len counts the entries of all shards.
func (t *table[K, V]) len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// evictions counts the evictions of all shards.
func (t *table[K, V]) evictions() uint64 {
	var n uint64
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += s.evictions
		s.mu.Unlock()
	}
	return n
}

// mulLE reports whether a*b <= c*d without overflow.
func mulLE(a, b, c, d uint64) bool {
	h1, l1 := bits.Mul64(a, b)
	h2, l2 := bits.Mul64(c, d)
	return h1 < h2 || (h1 == h2 && l1 <= l2)
}
