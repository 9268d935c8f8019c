package limit

import (
	"fmt"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// t0 is the fixed clock origin of the deterministic tests.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// fixedClock returns Options whose clock is t0.
func fixedClock() Options { return Options{Now: func() time.Time { return t0 }} }

type rateStep struct {
	At    time.Duration // offset from t0
	Key   string
	OK    bool
	Retry time.Duration
}

func TestRateKnownAnswers(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name      string
		perSecond float64
		burst     int
		steps     []rateStep
	}{
		{
			name: "10/s burst 5", perSecond: 10, burst: 5,
			steps: []rateStep{
				{0, "a", true, 0}, {0, "a", true, 0}, {0, "a", true, 0}, {0, "a", true, 0}, {0, "a", true, 0},
				{0, "a", false, 100 * ms}, // the 6th at t=0
				{0, "a", false, 100 * ms}, // refusals change nothing
				{0, "b", true, 0},         // other keys are independent
				{50 * ms, "a", false, 50 * ms},
				{100 * ms, "a", true, 0}, // one more after T
				{100 * ms, "a", false, 100 * ms},
				{199 * ms, "a", false, 1 * ms},
				{200 * ms, "a", true, 0},
				{350 * ms, "a", true, 0}, // TAT 700ms: 150ms to spare
				{350 * ms, "a", false, 50 * ms},
				{400 * ms, "a", true, 0},
				{400 * ms, "a", false, 100 * ms},
				{1000 * ms, "a", true, 0}, // TAT 900ms has passed: full again
				{1000 * ms, "a", true, 0},
				{1000 * ms, "a", true, 0},
				{1000 * ms, "a", true, 0},
				{1000 * ms, "a", true, 0},
				{1000 * ms, "a", false, 100 * ms},
			},
		},
		{
			name: "1/s burst 1", perSecond: 1, burst: 1,
			steps: []rateStep{
				{0, "a", true, 0},
				{0, "a", false, time.Second},
				{999 * ms, "a", false, ms},
				{time.Second, "a", true, 0},
				{1500 * ms, "a", false, 500 * ms},
			},
		},
		{
			name: "burst 0 is burst 1", perSecond: 2, burst: 0,
			steps: []rateStep{
				{0, "a", true, 0},
				{0, "a", false, 500 * ms},
				{500 * ms, "a", true, 0},
			},
		},
		{
			name: "0.5/s burst 3", perSecond: 0.5, burst: 3,
			steps: []rateStep{
				{0, "a", true, 0}, {0, "a", true, 0}, {0, "a", true, 0},
				{0, "a", false, 2 * time.Second},
				{3 * time.Second, "a", true, 0},
				{3 * time.Second, "a", false, time.Second},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRate[string](tt.perSecond, tt.burst, fixedClock())
			var got []rateStep
			for _, st := range tt.steps {
				ok, retry := r.Allow(st.Key, t0.Add(st.At))
				got = append(got, rateStep{st.At, st.Key, ok, retry})
			}
			if diff := cmp.Diff(tt.steps, got); diff != "" {
				t.Errorf("Allow sequence mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRateBurstRefill(t *testing.T) {
	// 10/s burst 5: empty at t0; after d, min(5, d/100ms) pass.
	tests := []struct {
		idle time.Duration
		want int
	}{
		{0, 0},
		{99 * time.Millisecond, 0},
		{100 * time.Millisecond, 1},
		{250 * time.Millisecond, 2},
		{499 * time.Millisecond, 4},
		{500 * time.Millisecond, 5},
		{10 * time.Second, 5},
	}
	for _, tt := range tests {
		t.Run(tt.idle.String(), func(t *testing.T) {
			r := NewRate[string](10, 5, fixedClock())
			for range 5 {
				if ok, _ := r.Allow("k", t0); !ok {
					t.Fatal("Allow refused within the initial burst")
				}
			}
			now := t0.Add(tt.idle)
			got := 0
			for range 10 {
				if ok, _ := r.Allow("k", now); ok {
					got++
				}
			}
			if got != tt.want {
				t.Errorf("after %v idle: %d allowed, want %d", tt.idle, got, tt.want)
			}
		})
	}
}

func TestRatePrefixKeysAndZeroTime(t *testing.T) {
	// A zero time means Options.Now(); netip.Prefix keys work as keys.
	r := NewRate[netip.Prefix](1, 2, fixedClock())
	p := netip.MustParsePrefix("192.0.2.0/24")
	q := netip.MustParsePrefix("2001:db8::/48")
	var got []bool
	for _, k := range []netip.Prefix{p, p, p, q} {
		ok, _ := r.Allow(k, time.Time{})
		got = append(got, ok)
	}
	if diff := cmp.Diff([]bool{true, true, false, true}, got); diff != "" {
		t.Errorf("Allow results mismatch (-want +got):\n%s", diff)
	}
	if got, want := r.Len(), 2; got != want {
		t.Errorf("Len() = %d, want %d", got, want)
	}
}

func TestRateUnlimitedAndInvalid(t *testing.T) {
	r := NewRate[string](2e9, 1, fixedClock()) // above one per nanosecond
	for range 100 {
		if ok, _ := r.Allow("k", t0); !ok {
			t.Fatal("an unlimited Rate refused")
		}
	}
	if got := r.Len(); got != 0 {
		t.Errorf("unlimited Rate Len() = %d, want 0", got)
	}
	for _, perSecond := range []float64{0, -1, math.NaN()} {
		t.Run(fmt.Sprint(perSecond), func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("NewRate(%v, 1) did not panic", perSecond)
				}
			}()
			NewRate[string](perSecond, 1, Options{})
		})
	}
}

func TestRateExtremeParameters(t *testing.T) {
	// Extreme rates and bursts must neither overflow nor misbehave.
	year := 365 * 24 * time.Hour
	tests := []struct {
		name      string
		perSecond float64
		burst     int
		tries     int
		wantOK    int
		wantRetry time.Duration // of the first refusal
	}{
		{"one in 1e9 seconds", 1e-9, 1, 3, 1, 1e18},
		{"a billion burst", 1, 1_000_000_000, 1000, 1000, 0},
		// 1/perSecond is capped at 2^60ns and burst*interval at 2^61ns.
		{"one per 31,710 years capped", 1e-12, 1_000_000_000, 5, 2, 1 << 60},
		{"a billion per second", 1e9, 3, 5, 3, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRate[string](tt.perSecond, tt.burst, fixedClock())
			gotOK, gotRetry := 0, time.Duration(0)
			for range tt.tries {
				ok, retry := r.Allow("k", t0)
				if ok {
					gotOK++
				} else if gotRetry == 0 {
					gotRetry = retry
				}
			}
			if gotOK != tt.wantOK || gotRetry != tt.wantRetry {
				t.Errorf("%d allowed, first retry %v (%.0f years); want %d, %v", gotOK, gotRetry, gotRetry.Hours()/year.Hours(), tt.wantOK, tt.wantRetry)
			}
		})
	}
}

func TestRateConcurrentExactBurst(t *testing.T) {
	// Many goroutines at one instant on a few keys: exactly burst pass per key.
	const keys, burst, goroutines, tries = 10, 7, 32, 50
	r := NewRate[int](1, burst, fixedClock())
	var allowed [keys]atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range tries {
				k := (g + i) % keys
				if ok, _ := r.Allow(k, t0); ok {
					allowed[k].Add(1)
				}
			}
		})
	}
	wg.Wait()
	for k := range keys {
		if got := allowed[k].Load(); got != burst {
			t.Errorf("key %d: %d allowed, want %d", k, got, burst)
		}
	}
}

// FuzzRateRetryAfter decodes a sequence of (key, time step) operations and
// checks Retry-After exactly: one nanosecond before it the request is still
// refused, at it the request passes. It also checks the GCRA bound: a key
// never gets more than burst + elapsed/T requests.
func FuzzRateRetryAfter(f *testing.F) {
	f.Add(uint16(10), uint8(5), []byte{0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 40, 0, 0})
	f.Add(uint16(1), uint8(1), []byte{0, 1, 0, 2, 0, 3, 0, 200, 1, 200})
	f.Add(uint16(997), uint8(3), []byte{2, 7, 2, 7, 2, 7, 2, 7, 3, 0, 3, 0, 3, 0, 3, 1})
	f.Fuzz(func(t *testing.T, perSecond uint16, burst uint8, ops []byte) {
		if perSecond == 0 {
			perSecond = 1
		}
		b := int(burst%16) + 1
		r := NewRate[byte](float64(perSecond), b, Options{Now: func() time.Time { return t0 }})
		interval := time.Duration(math.Round(1e9 / float64(perSecond)))
		type stat struct {
			first   time.Duration
			allowed int
		}
		stats := map[byte]*stat{}
		now := time.Duration(0)
		for i := 0; i+1 < len(ops); i += 2 {
			key := ops[i] % 4
			now += time.Duration(ops[i+1]) * interval / 8
			ok, retry := r.Allow(key, t0.Add(now))
			if !ok {
				if retry <= 0 {
					t.Fatalf("op %d: refused with retryAfter %v, want > 0", i/2, retry)
				}
				if ok2, _ := r.Allow(key, t0.Add(now+retry-1)); ok2 {
					t.Fatalf("op %d: allowed 1ns before retryAfter %v", i/2, retry)
				}
				now += retry
				ok, retry = r.Allow(key, t0.Add(now))
				if !ok {
					t.Fatalf("op %d: refused at retryAfter (again %v)", i/2, retry)
				}
			} else if retry != 0 {
				t.Fatalf("op %d: allowed with retryAfter %v, want 0", i/2, retry)
			}
			s := stats[key]
			if s == nil {
				s = &stat{first: now}
				stats[key] = s
			}
			s.allowed++
			if bound := b + int((now-s.first)/interval); s.allowed > bound {
				t.Fatalf("key %d: %d allowed in %v, GCRA bound %d", key, s.allowed, now-s.first, bound)
			}
		}
	})
}
