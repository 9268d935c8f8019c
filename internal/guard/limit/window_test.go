package limit

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type windowStep struct {
	At    time.Duration // offset from t0
	Key   string
	Limit int
	OK    bool
	Retry time.Duration
}

func TestWindowSliding(t *testing.T) {
	s, ns := time.Second, time.Nanosecond
	tests := []struct {
		name  string
		steps []windowStep
	}{
		{
			name: "limit 5",
			steps: []windowStep{
				{0, "old", 5, true, 0}, {0, "old", 5, true, 0}, {0, "old", 5, true, 0},
				{0, "old", 5, true, 0}, {0, "old", 5, true, 0},
				// Full: the next window must start and the 5 of this one
				// must have slid out to 4: 60s + 60s/5.
				{0, "old", 5, false, 72 * s},
				{30 * s, "old", 5, false, 42 * s},
				{72*s - ns, "old", 5, false, ns},
				{72 * s, "old", 5, true, 0}, // 5*48/60 + 0 + 1 = 5
				{72 * s, "old", 5, false, 12 * s},
				{84 * s, "old", 5, true, 0},
				{96 * s, "old", 5, true, 0},
				// Next window: 3 in the previous, 59s in.
				{179 * s, "old", 5, true, 0},
				// Both windows expired: a fresh start with the full limit.
				{300 * s, "old", 5, true, 0}, {300 * s, "old", 5, true, 0}, {300 * s, "old", 5, true, 0},
				{300 * s, "old", 5, true, 0}, {300 * s, "old", 5, true, 0},
				{300 * s, "old", 5, false, 72 * s},
			},
		},
		{
			name: "limit 2",
			steps: []windowStep{
				{0, "new", 2, true, 0}, {0, "new", 2, true, 0},
				{0, "new", 2, false, 90 * s}, // 60s + 60s/2
				{89 * s, "new", 2, false, s},
				{90 * s, "new", 2, true, 0},
				{90 * s, "new", 2, false, 30 * s}, // not again in this window
				{120 * s, "new", 2, true, 0},
			},
		},
		{
			name: "limit per call",
			steps: []windowStep{
				{0, "mix", 5, true, 0}, {0, "mix", 5, true, 0}, {0, "mix", 5, true, 0},
				{0, "mix", 2, false, 100 * s}, // stricter limit: 3 must fall to 1
				{0, "mix", 5, true, 0},        // the refusal counted nothing
				{0, "mix", 5, true, 0},
				{0, "mix", 5, false, 72 * s},
			},
		},
		{
			name: "limit 1 and 0",
			steps: []windowStep{
				{0, "one", 1, true, 0},
				{0, "one", 1, false, 120 * s}, // both windows must pass
				{119 * s, "one", 1, false, s},
				{120 * s, "one", 1, true, 0},
				{0, "zero", 0, false, 60 * s},
				{0, "zero", -3, false, 60 * s},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewWindow[string](time.Minute, fixedClock())
			var got []windowStep
			for _, st := range tt.steps {
				ok, retry := w.Hit(st.Key, st.Limit, t0.Add(st.At))
				got = append(got, windowStep{st.At, st.Key, st.Limit, ok, retry})
			}
			if diff := cmp.Diff(tt.steps, got); diff != "" {
				t.Errorf("Hit sequence mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWindowSteadyRate(t *testing.T) {
	// Hitting as fast as allowed for 100 windows. The first window takes
	// the full limit; after that the previous window's weight keeps the
	// estimate plus the next hit within the limit only for limit-1 hits per
	// window (see the file comment), and for limit 1 every other window.
	tests := []struct {
		limit, want int
	}{
		{10, 10 + 99*9},
		{5, 5 + 99*4},
		{2, 2 + 99*1},
		{1, 50},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.limit), func(t *testing.T) {
			w := NewWindow[string](time.Minute, fixedClock())
			now := time.Duration(0)
			allowed := 0
			for now < 100*time.Minute {
				ok, retry := w.Hit("k", tt.limit, t0.Add(now))
				if ok {
					allowed++
					continue
				}
				now += retry
			}
			if allowed != tt.want {
				t.Errorf("%d allowed in 100 windows of limit %d, want %d", allowed, tt.limit, tt.want)
			}
		})
	}
}

func TestWindowForgetsExpired(t *testing.T) {
	now := t0
	w := NewWindow[string](time.Minute, Options{Now: func() time.Time { return now }})
	w.Hit("a", 3, now)
	w.Hit("b", 3, now.Add(30*time.Second))
	tests := []struct {
		at        time.Duration
		wantSwept int
		wantLen   int
	}{
		{119 * time.Second, 0, 2}, // a's previous window still counts
		{120 * time.Second, 1, 1}, // a: both windows expired
		{150 * time.Second, 1, 0},
	}
	for _, tt := range tests {
		now = t0.Add(tt.at)
		if got := w.Sweep(); got != tt.wantSwept {
			t.Errorf("at %v: Sweep() = %d, want %d", tt.at, got, tt.wantSwept)
		}
		if got := w.Len(); got != tt.wantLen {
			t.Errorf("at %v: Len() = %d, want %d", tt.at, got, tt.wantLen)
		}
	}
}

func TestWindowConcurrentExactLimit(t *testing.T) {
	// At one instant, exactly limit hits pass per key however many race.
	const keys, limit, goroutines, tries = 10, 4, 32, 50
	w := NewWindow[int](time.Hour, fixedClock())
	var allowed [keys]atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range tries {
				k := (g + i) % keys
				if ok, _ := w.Hit(k, limit, t0); ok {
					allowed[k].Add(1)
				}
			}
		})
	}
	wg.Wait()
	for k := range keys {
		if got := allowed[k].Load(); got != limit {
			t.Errorf("key %d: %d allowed, want %d", k, got, limit)
		}
	}
}

func TestWindowInvalid(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewWindow(0) did not panic")
		}
	}()
	NewWindow[string](0, Options{})
}

// FuzzWindowRetryAfter decodes a sequence of (key, limit, time step)
// operations and checks Retry-After exactly: one nanosecond before it the
// same attempt is still refused, at it the attempt passes. It also checks
// that no fixed window of a key ever counts more than the largest limit.
func FuzzWindowRetryAfter(f *testing.F) {
	f.Add(uint32(60), []byte{0, 5, 0, 0, 5, 0, 0, 5, 0, 0, 5, 0, 0, 5, 0, 0, 5, 0, 0, 2, 100})
	f.Add(uint32(1), []byte{1, 1, 0, 1, 1, 0, 1, 1, 255, 1, 2, 3})
	f.Add(uint32(3600), []byte{2, 3, 7, 2, 3, 7, 2, 1, 7, 2, 9, 200, 3, 4, 0})
	f.Fuzz(func(t *testing.T, seconds uint32, ops []byte) {
		window := time.Duration(seconds%7200+1) * time.Second
		w := NewWindow[byte](window, Options{Now: func() time.Time { return t0 }})
		now := time.Duration(0)
		for i := 0; i+2 < len(ops); i += 3 {
			key, limit := ops[i]%4, int(ops[i+1]%8)
			now += time.Duration(ops[i+2]) * window / 64
			ok, retry := w.Hit(key, limit, t0.Add(now))
			if ok {
				if retry != 0 {
					t.Fatalf("op %d: allowed with retryAfter %v, want 0", i/3, retry)
				}
				continue
			}
			if retry <= 0 {
				t.Fatalf("op %d: refused with retryAfter %v, want > 0", i/3, retry)
			}
			if limit < 1 {
				continue
			}
			if ok2, _ := w.Hit(key, limit, t0.Add(now+retry-1)); ok2 {
				t.Fatalf("op %d: allowed 1ns before retryAfter %v", i/3, retry)
			}
			now += retry
			if ok, retry = w.Hit(key, limit, t0.Add(now)); !ok {
				t.Fatalf("op %d: refused at retryAfter (again %v)", i/3, retry)
			}
		}
		// No fixed window ever counts more than the largest limit (7).
		for i := range w.t.shards {
			for k, e := range w.t.shards[i].m {
				if e.cur > 7 || e.prev > 7 {
					t.Fatalf("key %d: counters prev %d cur %d exceed every limit", k, e.prev, e.cur)
				}
			}
		}
	})
}
