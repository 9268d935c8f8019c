package limit

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestConnsAcquireRelease(t *testing.T) {
	type op struct {
		Release bool
		Key     string
	}
	type result struct {
		OK  bool
		Len int
	}
	acq := func(k string) op { return op{false, k} }
	rel := func(k string) op { return op{true, k} }
	tests := []struct {
		name string
		max  int
		ops  []op
		want []result // OK is true for every Release
	}{
		{
			name: "up to max then refused",
			max:  3,
			ops:  []op{acq("a"), acq("a"), acq("a"), acq("a"), acq("b")},
			want: []result{{true, 1}, {true, 1}, {true, 1}, {false, 1}, {true, 2}},
		},
		{
			name: "release frees a slot",
			max:  2,
			ops:  []op{acq("a"), acq("a"), acq("a"), rel("a"), acq("a"), acq("a")},
			want: []result{{true, 1}, {true, 1}, {false, 1}, {true, 1}, {true, 1}, {false, 1}},
		},
		{
			name: "entries at zero are deleted",
			max:  2,
			ops:  []op{acq("a"), acq("b"), acq("a"), rel("a"), rel("b"), rel("a")},
			want: []result{{true, 1}, {true, 2}, {true, 2}, {true, 2}, {true, 1}, {true, 0}},
		},
		{
			name: "releasing an unknown key does nothing",
			max:  1,
			ops:  []op{rel("x"), acq("a"), rel("a"), rel("a"), acq("a"), acq("a")},
			want: []result{{true, 0}, {true, 1}, {true, 0}, {true, 0}, {true, 1}, {false, 1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewConns[string](tt.max, Options{})
			var got []result
			for _, o := range tt.ops {
				ok := true
				if o.Release {
					c.Release(o.Key)
				} else {
					ok = c.Acquire(o.Key)
				}
				got = append(got, result{ok, c.Len()})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("results mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConnsFullTableRefusesNewKeys(t *testing.T) {
	for _, maxKeys := range []int{1, 7, 100, 1000} {
		t.Run(fmt.Sprint(maxKeys), func(t *testing.T) {
			c := NewConns[netip.Prefix](2, Options{MaxKeys: maxKeys})
			var held []netip.Prefix
			// 50 times as many distinct keys as fit: every shard fills.
			for i := range 50 * maxKeys {
				k := prefixKey(i)
				if c.Acquire(k) {
					held = append(held, k)
				}
			}
			if got := len(held); got != maxKeys {
				t.Fatalf("%d keys accepted, want exactly MaxKeys = %d", got, maxKeys)
			}
			if got := c.Len(); got != maxKeys {
				t.Fatalf("Len() = %d, want %d", got, maxKeys)
			}
			// Held keys may still take their second slot; new keys may not.
			for _, k := range held {
				if !c.Acquire(k) {
					t.Fatalf("Acquire(%v) for a held key refused in a full table", k)
				}
			}
			if c.Acquire(prefixKey(50 * maxKeys)) {
				t.Fatal("Acquire of a new key succeeded in a full table")
			}
			// Releasing everything empties the table and lets new keys in.
			for _, k := range held {
				c.Release(k)
				c.Release(k)
			}
			if got := c.Len(); got != 0 {
				t.Fatalf("Len() after releasing all = %d, want 0", got)
			}
			if !c.Acquire(prefixKey(50 * maxKeys)) {
				t.Fatal("Acquire of a new key refused in an empty table")
			}
		})
	}
}

func TestConnsInvalidMax(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewConns(0) did not panic")
		}
	}()
	NewConns[string](0, Options{})
}

func TestConnsConcurrent(t *testing.T) {
	// Goroutines contend for few keys: no key ever exceeds max holders,
	// and once all are released the table is empty.
	const max, keys, goroutines, rounds = 3, 8, 32, 500
	c := NewConns[int](max, Options{MaxKeys: 64})
	var holders [keys]atomic.Int32
	var over atomic.Int32
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range rounds {
				k := (g*7 + i) % keys
				if !c.Acquire(k) {
					continue
				}
				if holders[k].Add(1) > max {
					over.Add(1)
				}
				holders[k].Add(-1)
				c.Release(k)
			}
		})
	}
	wg.Wait()
	if got := over.Load(); got != 0 {
		t.Errorf("%d times a key had more than %d holders", got, max)
	}
	if got := c.Len(); got != 0 {
		t.Errorf("Len() after all released = %d, want 0", got)
	}
}

// prefixKey returns a distinct /32 (IPv4) or /64 (IPv6) prefix for each
// i below 2^48.
func prefixKey(i int) netip.Prefix {
	if i%2 == 0 && i < 1<<25 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 17), byte(i >> 9), byte(i >> 1)})
		return netip.PrefixFrom(a, 32)
	}
	var b [16]byte
	b[0], b[1] = 0x20, 0x01
	for j := range 6 {
		b[7-j] = byte(i >> (8 * j))
	}
	return netip.PrefixFrom(netip.AddrFrom16(b), 64)
}
