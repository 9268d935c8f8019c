package bufs

import (
	"runtime"
	"testing"
)

func TestList(t *testing.T) {
	l := NewList(2, 4<<20)
	a := l.Get(1000)
	if len(*a) != 0 || cap(*a) != Small {
		t.Fatalf("Get(1000): len %d cap %d, want 0 and %d", len(*a), cap(*a), Small)
	}
	*a = append(*a, "data"...)
	l.Put(a)
	// Kept across garbage collections, unlike a sync.Pool's contents.
	runtime.GC()
	runtime.GC()
	if b := l.Get(Small); b != a || len(*b) != 0 {
		t.Fatalf("Get after Put: got a different or non-empty buffer (len %d)", len(*b))
	} else {
		l.Put(b)
	}
	// A large request does not take a small buffer; it gets one rounded up.
	c := l.Get(Small + 1)
	if c == a || cap(*c) != 2*Small {
		t.Fatalf("Get(Small+1): cap %d (the small buffer: %v), want %d", cap(*c), c == a, 2*Small)
	}
	l.Put(c)
	// A kept large buffer too small for the request is replaced.
	d := l.Get(3 * Small)
	if d != c || cap(*d) != 3*Small {
		t.Fatalf("Get(3*Small): cap %d (same holder: %v), want %d", cap(*d), d == c, 3*Small)
	}
	l.Put(d)
	if e := l.Get(2 * Small); e != d || cap(*e) != 3*Small {
		t.Fatalf("Get(2*Small) did not reuse the kept 3*Small buffer")
	} else {
		l.Put(e)
	}
	// Nothing over max, nor of another size, is kept: the 8 MiB request
	// takes the kept large buffer and replaces it with one over max.
	big := l.Get(8 << 20)
	l.Put(big)
	odd := make([]byte, 0, 1000)
	l.Put(&odd)
	l.Put(nil)
	if n, m := len(l.small), len(l.large); n != 1 || m != 0 {
		t.Fatalf("%d small and %d large kept, want 1 and 0", n, m)
	}
	// At most n buffers of each class are kept.
	for range 3 {
		l.Put(l.Get(0))
		s := make([]byte, 0, Small)
		l.Put(&s)
		g := make([]byte, 0, 2*Small)
		l.Put(&g)
	}
	if n, m := len(l.small), len(l.large); n != 2 || m != 2 {
		t.Fatalf("%d small and %d large kept, want 2 and 2", n, m)
	}
}

func TestGetAllocs(t *testing.T) {
	l := NewList(1, 4<<20)
	l.Put(l.Get(1 << 20))
	l.Put(l.Get(100))
	if n := testing.AllocsPerRun(100, func() {
		l.Put(l.Get(1 << 20))
		l.Put(l.Get(100))
	}); n != 0 {
		t.Errorf("%v allocations per Get and Put of kept buffers", n)
	}
}

func TestDrain(t *testing.T) {
	l := NewList(2, 4<<20)
	for _, size := range []int{10, 20, 1 << 20, 2 << 20} {
		l.Put(l.Get(size))
	}
	if n, m := len(l.small), len(l.large); n != 1 || m != 1 {
		t.Fatalf("before Drain: %d small and %d large kept, want 1 and 1", n, m)
	}
	l.Drain()
	if n, m := len(l.small), len(l.large); n != 0 || m != 0 {
		t.Fatalf("after Drain: %d small and %d large kept", n, m)
	}
	l.Drain() // on an empty list: returns at once
}
