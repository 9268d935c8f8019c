// Package bufs keeps the large byte buffers of a backup's pipeline (chunks
// on their way to a saver, compressed blobs on their way into a pack) for
// reuse.
//
// A sync.Pool would do the same between garbage collections, but it lets go
// of what it holds at every other collection, and a backup under its memory
// limit collects every few tens of milliseconds: each time, the pipeline's
// next chunks allocate new megabyte buffers, which brings the next
// collection sooner. A List keeps its buffers across collections, so a
// steady pipeline allocates them once (measured on the benchmark corpus:
// 90 MB of a first backup's 310 MB of allocations were such buffers).
//
// Buffers come in two classes, so that the many small requests (small
// files, trees) neither take the large buffers that chunks need nor leave
// small buffers behind that a chunk would have to replace: requests up to
// Small bytes get a buffer of exactly Small bytes, larger ones a buffer
// rounded up to a multiple of Small.
package bufs

// Small is the capacity of the small class and the rounding of the large.
const Small = 256 << 10

// List is a free list of at most n small and n large byte buffers, the
// large ones of capacity at most max. It is safe for concurrent use.
type List struct {
	small, large chan *[]byte
	max          int
}

// NewList returns a List that keeps up to n buffers of each class, the
// large ones of capacity at most max.
func NewList(n, max int) *List {
	return &List{small: make(chan *[]byte, n), large: make(chan *[]byte, n), max: max}
}

// Get returns a buffer of length 0 and capacity at least size: a kept one
// of the right class when one is free (a kept large buffer too small for
// size is replaced), else a new one.
func (l *List) Get(size int) *[]byte {
	free, want := l.small, Small
	if size > Small {
		free, want = l.large, (size+Small-1)/Small*Small
	}
	var b *[]byte
	select {
	case b = <-free:
	default:
		b = new([]byte)
	}
	if cap(*b) < size {
		*b = make([]byte, 0, want)
	}
	*b = (*b)[:0]
	return b
}

// Drain lets go of every kept buffer, for the collector to reclaim: a
// long-running process calls it when a burst of work (a backup) is over,
// so that its idle memory does not include the buffers of the last burst.
func (l *List) Drain() {
	for _, free := range []chan *[]byte{l.small, l.large} {
		for {
			select {
			case <-free:
				continue
			default:
			}
			break
		}
	}
}

// Put returns b, which Get returned, to the list. The list keeps it unless
// its class is full or b is larger than the list's max. b must not be used
// after.
func (l *List) Put(b *[]byte) {
	if b == nil {
		return
	}
	var free chan *[]byte
	switch c := cap(*b); {
	case c == Small:
		free = l.small
	case c > Small && c <= l.max:
		free = l.large
	default:
		return
	}
	select {
	case free <- b:
	default:
	}
}
