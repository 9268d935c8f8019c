package schedule

// Jitter and catch-up.
//
// A policy's effective activations are its schedule's activations shifted
// by a per-policy jitter, so that many policies with the same schedule do
// not all start at the same second. The jitter is derived from the policy
// name alone, so it survives restarts and is the same on every replica.
//
// Due is stateless: the caller keeps one time per policy, the start of its
// last run, and Due compares it with now. A run is due when an effective
// activation lies in (lastRun, now]. However many activations fell in that
// window (the process was down for a week), Due answers "one run"; the
// caller starts it and records its start as the new lastRun, which closes
// the window, so there is never a burst of catch-up runs.

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
	"time"
)

// Jitter returns a duration in [0, max) derived from name: the first 8
// bytes of SHA-256("bulwark/schedule jitter v1\x00" + name), mapped onto
// [0, max) by a 64x64-bit multiply (bias below max/2^64). It is
// deterministic, so a restart does not reshuffle policies, and spread
// evenly, so policies sharing a schedule start at different times. It
// returns 0 when max <= 0. Keep max below the schedule's period, or
// activations of consecutive periods change order but still never merge.
func Jitter(name string, max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	sum := sha256.Sum256([]byte("bulwark/schedule jitter v1\x00" + name))
	hi, _ := bits.Mul64(binary.BigEndian.Uint64(sum[:8]), uint64(max))
	return time.Duration(hi)
}

// Options tune Due. The zero value means no jitter and, for a policy that
// never ran, no reference time (see FirstRunNow).
type Options struct {
	// Jitter shifts every activation of the policy (usually
	// Jitter(policyName, maxJitter)).
	Jitter time.Duration
	// Enrolled is when the policy was first scheduled, for example when
	// the configuration that introduced it was first loaded; the caller
	// persists it. A policy that has never run (zero lastRun) first runs
	// at its first activation after Enrolled, not immediately.
	Enrolled time.Time
	// FirstRunNow makes a policy that has never run due immediately,
	// instead of waiting for its first activation after Enrolled.
	FirstRunNow bool
}

// Decision is Due's answer.
type Decision struct {
	// Due says a run should start now.
	Due bool
	// Missed says two or more activations passed since the reference
	// time without a run (the process was down, or a run lasted longer
	// than the period): this single run stands for all of them.
	Missed bool
	// Next is the first activation (plus jitter) strictly after now: when
	// to ask again. It is the zero time if the schedule never fires again.
	Next time.Time
}

// Due decides whether a policy on schedule s whose last run started at
// lastRun must run at now. lastRun is the zero time for a policy that never
// ran; the reference is then o.Enrolled, and if that is zero too the policy
// is due at once (without a reference Due cannot know which activations
// were missed, and an early first backup beats none). A reference after now
// means the clock was set back or the record is wrong; the policy is then
// due at once too, so it resumes on its schedule from that run instead of
// stalling until the clock catches up with the bad record.
func Due(s Schedule, lastRun, now time.Time, o Options) Decision {
	next := nextShifted(s, now, o.Jitter)
	ref := lastRun
	if ref.IsZero() {
		if o.FirstRunNow || o.Enrolled.IsZero() {
			return Decision{Due: true, Next: next}
		}
		ref = o.Enrolled
	}
	if ref.After(now) {
		return Decision{Due: true, Next: next}
	}
	first := nextShifted(s, ref, o.Jitter)
	if first.IsZero() || first.After(now) {
		return Decision{Next: next}
	}
	second := nextShifted(s, first, o.Jitter)
	return Decision{
		Due:    true,
		Missed: !second.IsZero() && !second.After(now),
		Next:   next,
	}
}

// nextShifted returns the first activation+jitter strictly after t, or zero.
func nextShifted(s Schedule, t time.Time, jitter time.Duration) time.Time {
	n := s.Next(t.Add(-jitter))
	if n.IsZero() {
		return n
	}
	return n.Add(jitter)
}
