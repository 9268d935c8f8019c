package guard

import (
	"testing"
	"time"
)

func TestRefill(t *testing.T) {
	const rate = 1000 // bytes per second: a byte is worth 1 ms
	limit := time.Second
	for _, tc := range []struct {
		name  string
		allow time.Duration
		n     int
		want  time.Duration
	}{
		{"nothing arrived", 300 * time.Millisecond, 0, 300 * time.Millisecond},
		{"bytes refill", 300 * time.Millisecond, 200, 500 * time.Millisecond},
		{"capped at the grace period", 300 * time.Millisecond, 5000, time.Second},
		{"a huge burst is still capped", 0, 1 << 30, time.Second},
		{"exactly to the cap", 900 * time.Millisecond, 100, time.Second},
		{"overdrawn, then refilled", -50 * time.Millisecond, 100, 50 * time.Millisecond},
		{"overdrawn stays overdrawn", -500 * time.Millisecond, 100, -400 * time.Millisecond},
	} {
		if got := refill(tc.allow, tc.n, rate, limit); got != tc.want {
			t.Errorf("%s: refill(%v, %d) = %v, want %v", tc.name, tc.allow, tc.n, got, tc.want)
		}
	}
}
