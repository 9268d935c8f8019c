// Rate limits requests per key with the Generic Cell Rate Algorithm (GCRA).
//
// GCRA is a token bucket that stores one number instead of two. A bucket of
// rate r and burst b lets one request through every T = 1/r seconds on
// average and up to b back to back after an idle period. Instead of a token
// count and a last-refill time, GCRA keeps the theoretical arrival time
// (TAT): the time at which the bucket would be full again if nothing else
// arrived. With the current time now:
//
//	tat' = max(tat, now) + T     // the TAT if this request is let through
//	allow  iff  tat' - now <= b*T
//
// tat' - now is how much "future" has been spent; b*T is the burst the
// bucket may borrow. On allow the key's TAT becomes tat'; a refused request
// changes nothing, and tat' - now - b*T is exactly how long until the same
// request would be allowed (the Retry-After). Example, r = 10/s, b = 5,
// T = 100ms, all at t = 0: the first five requests move the TAT to 100,
// 200, ..., 500ms (tat' - now = 500ms <= 500ms is still allowed); the sixth
// would need tat' - now = 600ms and is refused with a retry of 100ms.
//
// Why GCRA: one int64 per key is the smallest possible state, there is no
// floating point on the hot path, and "forgettable" is exact: once
// tat <= now the bucket is full, max(tat, now) = now, and the entry behaves
// like a missing one, so the sweep deletes it without changing any answer.
// The TAT is kept on the table's monotonic clock (nanoseconds since the
// table was made), so wall-clock steps do not disturb it.

package limit

import (
	"fmt"
	"math"
	"time"
)

// maxInterval caps the emission interval (and maxTau the burst allowance)
// so that TAT arithmetic cannot overflow int64: both are far beyond any
// useful limit (about 36 and 73 years).
const (
	maxInterval = int64(1) << 60
	maxTau      = int64(1) << 61
)

// Rate is a per-key token bucket (rate and burst) implemented as GCRA. It
// is safe for concurrent use. Make one with NewRate.
type Rate[K comparable] struct {
	t        *table[K, int64] // key → TAT in table ticks
	interval int64            // T, nanoseconds between requests at the steady rate
	tau      int64            // burst*T, how far the TAT may run ahead of now
}

// NewRate returns a table that lets each key through perSecond times per
// second on average and burst times back to back. burst below 1 is taken
// as 1. Rates above one per nanosecond are unlimited (Allow always allows
// and stores nothing). The emission interval 1/perSecond is rounded to the
// nanosecond and capped at about 36 years, and burst times it at about 73
// years. NewRate panics if perSecond is not positive (or is
// NaN): that is a configuration error the caller must catch first.
func NewRate[K comparable](perSecond float64, burst int, opt Options) *Rate[K] {
	if !(perSecond > 0) {
		panic(fmt.Sprintf("limit.NewRate: perSecond must be > 0, got %v", perSecond))
	}
	if burst < 1 {
		burst = 1
	}
	var interval int64 // 0: unlimited
	switch f := math.Round(1e9 / perSecond); {
	case perSecond > 1e9:
	case f >= float64(maxInterval):
		interval = maxInterval
	default:
		interval = int64(f)
	}
	tau := maxTau
	if interval > 0 && int64(burst) <= maxTau/interval {
		tau = int64(burst) * interval
	}
	r := &Rate[K]{interval: interval, tau: tau}
	r.t = newTable[K, int64](opt, true, rateExpired, rateRank)
	return r
}

// rateExpired: a bucket whose TAT has passed is full, like a missing one.
func rateExpired(tat int64, now int64) bool { return tat <= now }

// rateRank: the smallest TAT is the bucket closest to full.
func rateRank(tat int64) int64 { return tat }

// Allow reports whether a request for key at time now may pass, and counts
// it when it may. When it may not, retryAfter (> 0) is how long until the
// same request would be allowed, suitable for a Retry-After header
// (rounded up to whole seconds by the caller). A zero now means
// Options.Now().
func (r *Rate[K]) Allow(key K, now time.Time) (ok bool, retryAfter time.Duration) {
	if r.interval == 0 {
		return true, 0
	}
	n := r.t.ticks(now)
	s := r.t.lock(key, n)
	tat, found := s.m[key]
	if !found {
		r.t.roomLocked(s, n) // Rate evicts, so there is always room
		s.m[key] = n + r.interval
		s.insertedLocked()
		s.mu.Unlock()
		return true, 0
	}
	if tat < n {
		tat = n
	}
	next := tat + r.interval
	if wait := next - n - r.tau; wait > 0 {
		s.mu.Unlock()
		return false, time.Duration(wait)
	}
	s.m[key] = next
	s.mu.Unlock()
	return true, 0
}

// Len returns the number of keys held, including forgettable ones not yet
// swept.
func (r *Rate[K]) Len() int { return r.t.len() }

// Evictions returns how many live entries were evicted to make room for new
// keys in full shards. An evicted key starts again with a full burst, so a
// growing count means MaxKeys is too small for the traffic (or an attack).
func (r *Rate[K]) Evictions() uint64 { return r.t.evictions() }

// Sweep deletes every forgettable entry (full bucket) as of Options.Now()
// and returns how many it deleted. Calling it is optional: the table sweeps
// itself as it is used. It locks one shard at a time.
func (r *Rate[K]) Sweep() int { return r.t.sweep(r.t.ticks(time.Time{})) }
