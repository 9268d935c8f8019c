// Bytes shapes a byte stream shared by many goroutines to a rate, with a
// token bucket that may go into debt.
//
// The bucket holds up to burst bytes of credit and refills at rate bytes
// per second. A Wait for n bytes takes them in pieces of at most burst. For
// each piece it reserves at once: the piece is subtracted from the credit,
// which may go negative, and the waiter is given a ticket, the running total
// of bytes reserved so far. A waiter may pass when the credit, refilled to
// the present, covers every byte reserved up to and including its ticket:
//
//	credit + (reserved - ticket) >= 0
//
// so waiters pass in the order they reserved, each after sleeping exactly
// as long as the refill takes, and the long-run throughput is the rate
// however many goroutines share the bucket and however late their timers
// fire (lateness is credited, up to burst). Pieces are what let n exceed
// burst: they wait proportionally, one burst at a time, and no single Wait
// can push the debt beyond one burst.
//
// SetRate refills at the old rate up to the present, then switches the rate
// and wakes every waiter (by closing a channel) so that it recomputes its
// sleep under the new rate: raising the rate releases them early, lowering
// it holds them longer. A cancelled Wait gives back the credit of the piece
// it was waiting for (bytes of pieces already passed count as sent).
//
// The credit is a float64 because refill is fractional; it stays within a
// few bursts of zero, so it loses no precision. The reserved total is an
// exact int64.

package limit

import (
	"context"
	"sync"
	"time"
)

// Bytes is a byte-rate shaper (a bandwidth cap) shared by many goroutines.
// It is safe for concurrent use. Make one with NewBytes.
type Bytes struct {
	mu       sync.Mutex
	rate     int64     // bytes per second; <= 0 means unlimited
	burst    int64     // largest piece, and the most credit the bucket holds
	credit   float64   // bytes that may pass now; negative while waiters are in debt
	reserved int64     // bytes reserved since the start: the ticket counter
	last     time.Time // when credit was last refilled
	changed  chan struct{}
}

// NewBytes returns a shaper letting bytesPerSecond through on average and up
// to burst at once after an idle period. bytesPerSecond <= 0 means
// unlimited. burst below 1 selects a tenth of a second's worth (at least 1
// byte). The bucket starts full.
func NewBytes(bytesPerSecond int64, burst int64) *Bytes {
	b := &Bytes{changed: make(chan struct{})}
	b.rate, b.burst = bytesPerSecond, defaultBurst(bytesPerSecond, burst)
	b.credit = float64(b.burst)
	b.last = time.Now()
	return b
}

// defaultBurst applies NewBytes's rule for burst below 1.
func defaultBurst(rate, burst int64) int64 {
	if burst >= 1 {
		return burst
	}
	return max(rate/10, 1)
}

// refillLocked adds the credit earned since b.last at the current rate.
func (b *Bytes) refillLocked(now time.Time) {
	if d := now.Sub(b.last); d > 0 && b.rate > 0 {
		b.credit += float64(b.rate) * d.Seconds()
		if limit := float64(b.burst); b.credit > limit {
			b.credit = limit
		}
	}
	b.last = now
}

// SetRate changes the rate and burst (with the same rules as NewBytes). It
// takes effect at once, also for goroutines blocked in Wait.
func (b *Bytes) SetRate(bytesPerSecond int64, burst int64) {
	now := time.Now()
	b.mu.Lock()
	wasUnlimited := b.rate <= 0
	b.refillLocked(now)
	b.rate, b.burst = bytesPerSecond, defaultBurst(bytesPerSecond, burst)
	if wasUnlimited || b.credit > float64(b.burst) {
		b.credit = float64(b.burst)
	}
	close(b.changed)
	b.changed = make(chan struct{})
	b.mu.Unlock()
}

// Rate returns the current rate in bytes per second (<= 0: unlimited).
func (b *Bytes) Rate() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rate
}

// Wait blocks until n bytes may pass, and returns nil. n may exceed the
// burst: the bytes are then let through in pieces of at most burst, each
// waiting its turn, so the wait is proportional to n. When ctx is done
// first, Wait returns ctx.Err(); the bytes of pieces that had already
// passed count as sent. A rate <= 0 (unlimited) lets everything through at
// once, including waiters blocked when the rate was set to it. n <= 0
// returns nil at once.
func (b *Bytes) Wait(ctx context.Context, n int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	remaining := int64(n)
	for remaining > 0 {
		b.mu.Lock()
		if b.rate <= 0 {
			b.mu.Unlock()
			return nil
		}
		b.refillLocked(time.Now())
		piece := min(remaining, b.burst)
		b.credit -= float64(piece)
		b.reserved += piece
		ticket := b.reserved
		for {
			// Credit still missing before this piece may pass.
			deficit := -(b.credit + float64(b.reserved-ticket))
			if deficit <= 0 || b.rate <= 0 {
				break
			}
			sleep := time.Duration(deficit*1e9/float64(b.rate)) + 1
			changed := b.changed
			b.mu.Unlock()
			if timer == nil {
				timer = time.NewTimer(sleep)
			} else {
				timer.Reset(sleep)
			}
			select {
			case <-ctx.Done():
				timer.Stop()
				b.mu.Lock()
				b.refillLocked(time.Now())
				b.credit += float64(piece)
				if limit := float64(b.burst); b.credit > limit {
					b.credit = limit
				}
				b.mu.Unlock()
				return ctx.Err()
			case <-timer.C:
			case <-changed:
				timer.Stop()
			}
			b.mu.Lock()
			b.refillLocked(time.Now())
		}
		b.mu.Unlock()
		remaining -= piece
	}
	return nil
}
