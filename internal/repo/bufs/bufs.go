// Package bufs keeps the large byte buffers of a backup's pipeline (chunks
// on their way to a saver, compressed blobs on their way into a pack) for
// reuse.
//
// A sync.Pool would do the same between garbage collections, but it lets go
// of what it holds at every other collection, and a backup under its memory
// limit collects every few tens of milliseconds: each time, the pipeline's
// next chunks allocate new megabyte buffers, which brings the next
// collection sooner. A List keeps up to n buffers across collections, so a
// steady pipeline allocates its buffers once (measured on the benchmark
// corpus: 90 MB of a first backup's 310 MB of allocations were such
// buffers).
package bufs

// List is a free list of at most n byte buffers, each of capacity at most
// max. It is safe for concurrent use.
type List struct {
	free chan *[]byte
	max  int
}

// Round is the granularity of the buffers a List allocates: a request is
// rounded up to a multiple of it, so that a buffer fits the next few
// requests of similar sizes instead of being replaced by each larger one.
const Round = 256 << 10

// NewList returns a List that keeps up to n buffers of capacity at most max.
func NewList(n, max int) *List {
	return &List{free: make(chan *[]byte, n), max: max}
}

// Get returns a buffer of length 0 and capacity at least size: a kept one
// when one is free (a kept buffer too small for size is replaced), else a
// new one.
func (l *List) Get(size int) *[]byte {
	var b *[]byte
	select {
	case b = <-l.free:
	default:
		b = new([]byte)
	}
	if cap(*b) < size {
		*b = make([]byte, 0, (size+Round-1)/Round*Round)
	}
	*b = (*b)[:0]
	return b
}

// Put returns b to the list, which keeps it unless the list is full or b is
// larger than the list's max. b must not be used after.
func (l *List) Put(b *[]byte) {
	if b == nil || cap(*b) > l.max {
		return
	}
	select {
	case l.free <- b:
	default:
	}
}
