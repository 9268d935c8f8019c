package bufs

import (
	"runtime"
	"testing"
)

func TestList(t *testing.T) {
	l := NewList(2, 4<<20)
	a := l.Get(1000)
	if len(*a) != 0 || cap(*a) != Round {
		t.Fatalf("Get(1000): len %d cap %d, want 0 and %d", len(*a), cap(*a), Round)
	}
	*a = append(*a, "data"...)
	l.Put(a)
	// Kept across garbage collections, unlike a sync.Pool's contents.
	runtime.GC()
	runtime.GC()
	b := l.Get(Round)
	if b != a || len(*b) != 0 {
		t.Fatalf("Get after Put: got a different or non-empty buffer (len %d)", len(*b))
	}
	// A kept buffer too small for the request is replaced.
	l.Put(b)
	c := l.Get(Round + 1)
	if cap(*c) != 2*Round {
		t.Fatalf("Get(Round+1): cap %d, want %d", cap(*c), 2*Round)
	}
	// At most n buffers are kept, none larger than max.
	big := l.Get(8 << 20)
	l.Put(big)
	if n := len(l.free); n != 0 {
		t.Fatalf("a buffer over max was kept (%d kept)", n)
	}
	for range 3 {
		l.Put(l.Get(0))
		l.Put(new([]byte))
	}
	if n := len(l.free); n != 2 {
		t.Fatalf("%d buffers kept, want 2", n)
	}
	l.Put(nil)
}

func TestGetAllocs(t *testing.T) {
	l := NewList(1, 4<<20)
	l.Put(l.Get(1 << 20))
	if n := testing.AllocsPerRun(100, func() { l.Put(l.Get(1 << 20)) }); n != 0 {
		t.Errorf("%v allocations per Get and Put of a kept buffer", n)
	}
}
