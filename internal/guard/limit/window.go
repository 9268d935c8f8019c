// Window limits attempts per key in a sliding window with the sliding
// window counter approximation.
//
// An exact sliding log keeps one timestamp per attempt; this keeps two
// counters per key. Time is cut into fixed windows of length W, starting at
// the key's first attempt. cur counts the attempts in the current window
// (which began at start) and prev those in the one before. At elapsed time
// e = now - start into the current window, the attempts of the last W are
// estimated by assuming the previous window's were spread evenly:
//
//	estimate = prev * (W - e) / W + cur
//
// An attempt is allowed, and counted, when estimate + 1 <= limit, so the
// estimate never exceeds the limit. The test is done in integers,
// prev*(W-e) + (cur+1)*W <= limit*W, with 128-bit products so that no
// window length or count overflows. The limit is an argument of each call
// (a new account may get fewer tries than an old one), and a refused
// attempt counts nothing, so an attacker hammering a locked account does not
// extend the lock beyond the window.
//
// Retry-After is computed exactly: the estimate only falls as e grows, so
// the earliest allowed moment in the current window solves the inequality
// for e; if there is none, the next window (prev = cur, cur = 0) is tried,
// and after that the one following it, where both counters are zero.
//
// When now is two windows or more past start, both counters are zero and
// the entry behaves like a missing one (which starts its windows at now),
// so the sweep deletes it without changing any answer.
//
// The estimate assumes evenly spread attempts, so it is not an exact bound:
// no fixed window ever counts more than the limit, hence the long-run rate
// is at most limit per W, but by bunching attempts at the end of one window
// and spreading them through the next an attacker can fit up to about twice
// the limit into one exact interval of length W. For login throttling that
// is the accepted price of O(1) memory per key. The other way round, the
// rule is strict under sustained pressure: a key hitting as fast as it is
// allowed gets limit-1 attempts per window after the first (the limit-th
// would need the previous window's weight to have fallen to zero, which
// happens only as the window ends), and with limit 1 one attempt every other
// window. Legitimate users, who do not hit at the limit continuously, do not
// notice.

package limit

import (
	"fmt"
	"math"
	"math/bits"
	"time"
)

// windowEntry is the per-key state of a Window: 16 bytes.
type windowEntry struct {
	start     int64 // table ticks at which the current window began
	prev, cur uint32
}

// Window limits attempts per key per sliding window. It is safe for
// concurrent use. Make one with NewWindow.
type Window[K comparable] struct {
	t *table[K, windowEntry]
	w int64 // window length in nanoseconds
}

// NewWindow returns a table of sliding windows of the given length. It
// panics if window is not positive: that is a configuration error the
// caller must catch first.
func NewWindow[K comparable](window time.Duration, opt Options) *Window[K] {
	if window <= 0 {
		panic(fmt.Sprintf("limit.NewWindow: window must be > 0, got %v", window))
	}
	w := &Window[K]{w: int64(window)}
	if w.w > math.MaxInt64/4 {
		w.w = math.MaxInt64 / 4 // about 73 years; keeps 2*w and start+2*w in range
	}
	expired := func(e windowEntry, now int64) bool { return now-e.start >= 2*w.w }
	rank := func(e windowEntry) int64 { return e.start }
	w.t = newTable[K, windowEntry](opt, true, expired, rank)
	return w
}

// roll advances e to the window containing tick now.
func (w *Window[K]) roll(e *windowEntry, now int64) {
	d := now - e.start
	switch {
	case d < w.w:
	case d < 2*w.w:
		e.start += w.w
		e.prev, e.cur = e.cur, 0
	default:
		*e = windowEntry{start: now}
	}
}

// allowedAt reports whether an attempt at elapsed time e into a window with
// counters prev and cur fits under limit (limit >= 1).
func (w *Window[K]) allowedAt(prev, cur uint64, limit uint64, e int64) bool {
	if cur+1 > limit {
		return false
	}
	return mulLE(prev, uint64(w.w-e), limit-cur-1, uint64(w.w))
}

// earliest returns the smallest elapsed time e in [0, W) at which an
// attempt fits in a window with counters prev and cur, or false if none
// does.
func (w *Window[K]) earliest(prev, cur, limit uint64) (int64, bool) {
	if cur+1 > limit {
		return 0, false
	}
	room := limit - cur - 1 // whole attempts of room left by cur
	if prev == 0 || room >= prev {
		return 0, true
	}
	// prev*(W-e) <= room*W  ⇔  W-e <= floor(room*W/prev); room < prev
	// keeps the quotient below W, so Div64 cannot overflow.
	hi, lo := bits.Mul64(room, uint64(w.w))
	q, _ := bits.Div64(hi, lo, prev)
	e := w.w - int64(q)
	if e >= w.w {
		return 0, false
	}
	return e, true
}

// Hit records an attempt for key at time now if it fits under limit
// attempts per window, and reports whether it did. A refused attempt is not
// counted; retryAfter (> 0) is then how long until the same attempt, with
// the same limit, would be allowed. limit below 1 refuses every attempt,
// with retryAfter equal to the window length and nothing stored. A zero now
// means Options.Now().
func (w *Window[K]) Hit(key K, limit int, now time.Time) (ok bool, retryAfter time.Duration) {
	if limit < 1 {
		return false, time.Duration(w.w)
	}
	n := w.t.ticks(now)
	s := w.t.lock(key, n)
	e, found := s.m[key]
	if found {
		w.roll(&e, n)
	} else {
		e = windowEntry{start: n}
	}
	el := n - e.start
	if el < 0 {
		el = 0 // a clock that went back: count the whole previous window
	}
	lim := uint64(limit)
	if !w.allowedAt(uint64(e.prev), uint64(e.cur), lim, el) {
		if found {
			s.m[key] = e
		}
		s.mu.Unlock()
		return false, w.retryAfter(e, lim, el)
	}
	if e.cur < math.MaxUint32 {
		e.cur++
	}
	if !found {
		w.t.roomLocked(s, n) // Window evicts, so there is always room
		s.m[key] = e
		s.insertedLocked()
	} else {
		s.m[key] = e
	}
	s.mu.Unlock()
	return true, 0
}

// retryAfter returns how long after elapsed time el into e's current window
// an attempt under limit is first allowed. The attempt at el was refused.
func (w *Window[K]) retryAfter(e windowEntry, limit uint64, el int64) time.Duration {
	if off, ok := w.earliest(uint64(e.prev), uint64(e.cur), limit); ok && off > el {
		return time.Duration(off - el)
	}
	// Not in this window: the next one starts at W - el with prev = cur.
	if off, ok := w.earliest(uint64(e.cur), 0, limit); ok {
		return time.Duration(w.w - el + off)
	}
	// The one after that starts empty.
	return time.Duration(2*w.w - el)
}

// Len returns the number of keys held, including forgettable ones not yet
// swept.
func (w *Window[K]) Len() int { return w.t.len() }

// Evictions returns how many live entries were evicted to make room for new
// keys in full shards. An evicted key starts again with no attempts counted,
// so a growing count means MaxKeys is too small for the traffic (or an
// attack).
func (w *Window[K]) Evictions() uint64 { return w.t.evictions() }

// Sweep deletes every forgettable entry (both windows expired) as of
// Options.Now() and returns how many it deleted. Calling it is optional: the
// table sweeps itself as it is used. It locks one shard at a time.
func (w *Window[K]) Sweep() int { return w.t.sweep(w.t.ticks(time.Time{})) }
