package limit

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// keyedLimiter is what Rate and Window have in common for the table tests:
// insert one key at a time, count and sweep.
type keyedLimiter struct {
	name      string
	insert    func(i int, now time.Time) bool
	len       func() int
	evictions func() uint64
	shardLens func() []int // len of each shard's map, and its cap after
	shardCaps func() []int
}

// limiters builds a Rate on netip.Prefix keys and a Window on string keys
// (the two key types the guard uses) with opt.
func limiters(opt Options) []keyedLimiter {
	r := NewRate[netip.Prefix](1, 3, opt)
	w := NewWindow[string](time.Minute, opt)
	return []keyedLimiter{
		{
			name:      "Rate",
			insert:    func(i int, now time.Time) bool { ok, _ := r.Allow(prefixKey(i), now); return ok },
			len:       r.Len,
			evictions: r.Evictions,
			shardLens: func() []int { return shardLens(r.t) },
			shardCaps: func() []int { return shardCaps(r.t) },
		},
		{
			name:      "Window",
			insert:    func(i int, now time.Time) bool { ok, _ := w.Hit("user"+strconv.Itoa(i), 5, now); return ok },
			len:       w.Len,
			evictions: w.Evictions,
			shardLens: func() []int { return shardLens(w.t) },
			shardCaps: func() []int { return shardCaps(w.t) },
		},
	}
}

func shardLens[K comparable, V any](t *table[K, V]) []int {
	var n []int
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n = append(n, len(s.m))
		s.mu.Unlock()
	}
	return n
}

func shardCaps[K comparable, V any](t *table[K, V]) []int {
	var n []int
	for i := range t.shards {
		n = append(n, t.shards[i].max)
	}
	return n
}

func TestExpiryKeepsTableSmall(t *testing.T) {
	// 100,000 distinct keys, then the clock moves past both the keys'
	// state (bucket full, windows expired) and the sweep period: further
	// inserts sweep the idle keys away and the table holds only new ones.
	const old, fresh = 100_000, 5_000
	for _, l := range limiters(Options{MaxKeys: 1 << 20, IdleAfter: time.Minute, Now: fixedClock().Now}) {
		t.Run(l.name, func(t *testing.T) {
			for i := range old {
				if !l.insert(i, t0) {
					t.Fatalf("first hit of key %d refused", i)
				}
			}
			if got := l.len(); got != old {
				t.Fatalf("Len() after %d keys = %d, want %d", old, got, old)
			}
			later := t0.Add(3 * time.Minute)
			for i := range fresh {
				l.insert(old+i, later)
			}
			if got := l.len(); got != fresh {
				t.Errorf("Len() after the clock moved and %d new keys = %d, want %d", fresh, got, fresh)
			}
			if got := l.evictions(); got != 0 {
				t.Errorf("Evictions() = %d, want 0 (nothing was full)", got)
			}
		})
	}
}

func TestIncrementalSweepWithoutPeriod(t *testing.T) {
	// Even before the sweep period is up, inserts delete idle entries they
	// come across, so a steady stream of new keys does not just accumulate.
	// Each key is hit at its own time and is idle one second later (Rate
	// 1/s burst 3 is full again after 3s; windows of 1s expire after 2s).
	opt := Options{IdleAfter: time.Hour, Now: fixedClock().Now}
	r := NewRate[int](1, 3, opt)
	w := NewWindow[int](time.Second, opt)
	const n = 200_000
	for i := range n {
		now := t0.Add(time.Duration(i) * time.Millisecond) // 1,000 new keys a second
		r.Allow(i, now)
		w.Hit(i, 1, now)
	}
	// Live at the end: 3,000 Rate keys, 2,000 Window keys. Sampling two
	// entries per insert keeps the rest at a small multiple of that.
	if got := r.Len(); got > 30_000 {
		t.Errorf("Rate Len() = %d after %d keys at 1,000/s, want <= 30,000", got, n)
	}
	if got := w.Len(); got > 20_000 {
		t.Errorf("Window Len() = %d after %d keys at 1,000/s, want <= 20,000", got, n)
	}
}

func TestMaxKeysNeverExceeded(t *testing.T) {
	keys := 1_000_000
	if testing.Short() || raceEnabled {
		keys = 200_000
	}
	for _, maxKeys := range []int{1, 100, 10_000} {
		for _, l := range limiters(Options{MaxKeys: maxKeys, Now: fixedClock().Now}) {
			t.Run(fmt.Sprintf("%s/%d", l.name, maxKeys), func(t *testing.T) {
				caps := l.shardCaps()
				sum := 0
				for _, c := range caps {
					sum += c
				}
				if sum != maxKeys {
					t.Fatalf("shard caps %v add up to %d, want %d", caps, sum, maxKeys)
				}
				// All keys are live (one clock instant), so every insert
				// beyond capacity evicts one: Len + Evictions = inserts.
				for i := range keys {
					if !l.insert(i, t0) {
						t.Fatalf("first hit of key %d refused", i)
					}
					if i%1024 == 0 {
						if got := l.len(); got > maxKeys {
							t.Fatalf("after %d keys Len() = %d > MaxKeys %d", i+1, got, maxKeys)
						}
					}
				}
				for i, n := range l.shardLens() {
					if n > caps[i] {
						t.Errorf("shard %d holds %d entries, cap %d", i, n, caps[i])
					}
				}
				if got := l.len(); got != maxKeys {
					t.Errorf("Len() = %d, want MaxKeys %d (every shard full)", got, maxKeys)
				}
				if got, want := l.evictions(), uint64(keys-maxKeys); got != want {
					t.Errorf("Evictions() = %d, want %d", got, want)
				}
			})
		}
	}
}

func TestEvictionPrefersNearlyForgettable(t *testing.T) {
	// One shard of 8: seven keys that exhausted their bucket and one that
	// only took one token. The sampled victim is the one whose bucket is
	// closest to full, so the heavy hitters stay limited.
	r := NewRate[int](1, 5, Options{MaxKeys: 8, Now: fixedClock().Now})
	for k := range 7 {
		for range 5 {
			r.Allow(k, t0)
		}
	}
	r.Allow(7, t0)
	r.Allow(100, t0) // full: evicts key 7
	if got := r.Evictions(); got != 1 {
		t.Fatalf("Evictions() = %d, want 1", got)
	}
	for k := range 7 {
		if ok, _ := r.Allow(k, t0); ok {
			t.Errorf("key %d was evicted: allowed again with an empty bucket", k)
		}
	}
}

func TestShrinkReleasesMemory(t *testing.T) {
	// A shard whose map emptied after a flood is reallocated small.
	c := NewConns[int](1, Options{MaxKeys: 1 << 20})
	const n = 200_000
	for i := range n {
		c.Acquire(i)
	}
	for i := range n {
		c.Release(i)
	}
	for i := range c.t.shards {
		if p := c.t.shards[i].peak; p >= shrinkMin {
			t.Errorf("shard %d: peak %d after emptying, want the map reallocated (peak < %d)", i, p, shrinkMin)
		}
	}
}

func TestConcurrentMixedUse(t *testing.T) {
	// Many goroutines use every table at once with small MaxKeys (so
	// eviction and sweeping run concurrently with lookups), while others
	// call Len, Evictions and Sweep. Run under -race; the invariants are the
	// bounds and that Conns ends empty.
	const maxKeys, goroutines, ops = 256, 16, 5_000
	var clock sync.Mutex
	now := t0
	opt := Options{
		MaxKeys:   maxKeys,
		IdleAfter: 10 * time.Millisecond,
		Now: func() time.Time {
			clock.Lock()
			defer clock.Unlock()
			return now
		},
	}
	r := NewRate[netip.Prefix](1, 10, opt) // entries live 1s: the table stays full
	w := NewWindow[string](time.Second, opt)
	c := NewConns[netip.Prefix](2, opt)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for i := range ops {
				k := prefixKey(rng.IntN(2_000))
				at := t0.Add(time.Duration(i) * time.Millisecond)
				r.Allow(k, at)
				w.Hit("acct"+strconv.Itoa(rng.IntN(2_000)), 1+rng.IntN(5), at)
				if c.Acquire(k) {
					c.Release(k)
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 200 {
			clock.Lock()
			now = t0.Add(time.Duration(i) * 25 * time.Millisecond)
			clock.Unlock()
			if n := r.Len(); n > maxKeys {
				t.Errorf("Rate Len() = %d > %d", n, maxKeys)
			}
			if n := w.Len(); n > maxKeys {
				t.Errorf("Window Len() = %d > %d", n, maxKeys)
			}
			r.Sweep()
			w.Sweep()
			r.Evictions()
			w.Evictions()
			c.Len()
		}
	})
	wg.Wait()
	if n := c.Len(); n != 0 {
		t.Errorf("Conns Len() = %d after every Acquire was released, want 0", n)
	}
	if r.Evictions() == 0 || w.Evictions() == 0 {
		t.Errorf("Evictions() Rate %d Window %d, want both > 0 (2,000 keys in 256)", r.Evictions(), w.Evictions())
	}
}

func TestMemoryPerEntry(t *testing.T) {
	// Heap bytes per entry for 100,000 keys, measured as the HeapAlloc
	// difference around filling a table. The bound is generous; the figure
	// is what matters (go test -run MemoryPerEntry -v).
	if raceEnabled {
		t.Skip("the race detector changes allocation sizes")
	}
	const n = 100_000
	prefixes := make([]netip.Prefix, n)
	names := make([]string, n)
	for i := range n {
		prefixes[i] = prefixKey(i)
		names[i] = fmt.Sprintf("user%06d@example.org", i) // 20 bytes, stored as given
	}
	tests := []struct {
		name  string
		fill  func() any
		bound float64
	}{
		{"Rate[netip.Prefix]", func() any {
			r := NewRate[netip.Prefix](1, 5, Options{MaxKeys: 1 << 20})
			for _, k := range prefixes {
				r.Allow(k, t0)
			}
			return r
		}, 200},
		{"Window[netip.Prefix]", func() any {
			w := NewWindow[netip.Prefix](time.Minute, Options{MaxKeys: 1 << 20})
			for _, k := range prefixes {
				w.Hit(k, 5, t0)
			}
			return w
		}, 200},
		{"Conns[netip.Prefix]", func() any {
			c := NewConns[netip.Prefix](5, Options{MaxKeys: 1 << 20})
			for _, k := range prefixes {
				c.Acquire(k)
			}
			return c
		}, 200},
		{"Window[string] (map only; key bytes shared)", func() any {
			w := NewWindow[string](time.Minute, Options{MaxKeys: 1 << 20})
			for _, k := range names {
				w.Hit(k, 5, t0)
			}
			return w
		}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			tab := tt.fill()
			runtime.GC()
			runtime.ReadMemStats(&after)
			runtime.KeepAlive(tab)
			per := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
			t.Logf("%s: %.1f bytes per entry for %d keys", tt.name, per, n)
			if per > tt.bound {
				t.Errorf("%.1f bytes per entry, want <= %.0f", per, tt.bound)
			}
		})
	}
}

func BenchmarkRateAllow(b *testing.B) {
	// Parallel Allow over 4,096 hot prefixes: the steady state of a busy
	// guard (existing keys, no inserts).
	const hot = 4096
	keys := make([]netip.Prefix, hot)
	for i := range keys {
		keys[i] = prefixKey(i)
	}
	r := NewRate[netip.Prefix](1e6, 100, Options{})
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(hot)
		for pb.Next() {
			r.Allow(keys[i%hot], now)
			i++
		}
	})
}

func BenchmarkRateAllowNewKeys(b *testing.B) {
	// Parallel Allow where every call is a new key into a full table: the
	// address-cycling attack (insert, sample, evict).
	r := NewRate[netip.Prefix](1, 5, Options{MaxKeys: 1 << 16})
	now := time.Now()
	var next sync.Mutex
	base := 0
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		next.Lock()
		i := base
		base += 1 << 26
		next.Unlock()
		for pb.Next() {
			r.Allow(prefixKey(i), now)
			i++
		}
	})
}

func BenchmarkWindowHit(b *testing.B) {
	const hot = 4096
	keys := make([]string, hot)
	for i := range keys {
		keys[i] = "user" + strconv.Itoa(i)
	}
	w := NewWindow[string](time.Minute, Options{})
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(hot)
		for pb.Next() {
			w.Hit(keys[i%hot], 1<<30, now)
			i++
		}
	})
}

func BenchmarkConnsAcquireRelease(b *testing.B) {
	const hot = 4096
	keys := make([]netip.Prefix, hot)
	for i := range keys {
		keys[i] = prefixKey(i)
	}
	c := NewConns[netip.Prefix](1<<20, Options{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(hot)
		for pb.Next() {
			if c.Acquire(keys[i%hot]) {
				c.Release(keys[i%hot])
			}
			i++
		}
	})
}
