package limit

import (
	"fmt"
	"math"
)

// Conns counts concurrent holders per key: connections at accept, or
// requests in flight. It is safe for concurrent use. Make one with NewConns.
//
// The table holds only keys with at least one live holder: Release deletes
// an entry when its count reaches zero. It never evicts, because every entry
// stands for live connections and forgetting one would let its key exceed
// the limit. When the shard of a new key is full (Options.MaxKeys split over
// the shards), Acquire refuses that key until entries are released; keys
// already in the table are unaffected. Size MaxKeys above the number of
// distinct keys the proxy can hold connections for (with a per-key limit of
// max and a global connection cap C, at most C keys are live).
type Conns[K comparable] struct {
	t   *table[K, int32]
	max int32
}

// NewConns returns a table that lets each key hold at most max at once.
// NewConns panics if max is below 1: that is a configuration error the
// caller must catch first. Options.IdleAfter and Options.Now are not used.
func NewConns[K comparable](max int, opt Options) *Conns[K] {
	if max < 1 {
		panic(fmt.Sprintf("limit.NewConns: max must be >= 1, got %d", max))
	}
	if max > math.MaxInt32 {
		max = math.MaxInt32
	}
	return &Conns[K]{
		t:   newTable[K, int32](opt, false, nil, nil),
		max: int32(max),
	}
}

// Acquire takes one slot for key. It returns false, taking nothing, when
// key already holds max slots or when key is new and its shard is full.
// Every successful Acquire must be paired with one Release.
func (c *Conns[K]) Acquire(key K) bool {
	s := c.t.lock(key, 0)
	n, found := s.m[key]
	switch {
	case found && n >= c.max:
		s.mu.Unlock()
		return false
	case found:
		s.m[key] = n + 1
	case len(s.m) >= s.max:
		s.mu.Unlock()
		return false
	default:
		s.m[key] = 1
		s.insertedLocked()
	}
	s.mu.Unlock()
	return true
}

// Release gives back one slot taken by Acquire for key. The entry is deleted
// when its count reaches zero. Releasing a key that holds nothing does
// nothing.
func (c *Conns[K]) Release(key K) {
	s := c.t.lock(key, 0)
	n, found := s.m[key]
	switch {
	case !found:
	case n <= 1:
		delete(s.m, key)
		s.shrinkLocked()
	default:
		s.m[key] = n - 1
	}
	s.mu.Unlock()
}

// Len returns the number of keys holding at least one slot.
func (c *Conns[K]) Len() int { return c.t.len() }
