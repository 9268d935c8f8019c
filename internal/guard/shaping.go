package guard

import (
	"context"
	"net/netip"
	"sync"

	"github.com/bulwarkhq/bulwark/internal/guard/limit"
)

// Bandwidth shaping of responses: a site's cap is one bucket shared by all
// its responses; a per-source cap is one bucket per source, kept while
// that source has a request in progress (a source with none has nothing
// to shape, and its next request starts with a full bucket).

// shapeChunk is the most a response write sends before waiting for
// tokens again, so a cap is smooth at any write size.
const shapeChunk = 16 << 10

type shapedWriter struct {
	*logWriter
	ctx    context.Context
	site   *limit.Bytes
	client *limit.Bytes
}

func (w *shapedWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), shapeChunk)
		if err := wait(w.ctx, w.site, n); err != nil {
			return written, err
		}
		if err := wait(w.ctx, w.client, n); err != nil {
			return written, err
		}
		m, err := w.logWriter.Write(p[:n])
		written += m
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// wait takes n bytes from bucket b, if there is one.
func wait(ctx context.Context, b *limit.Bytes, n int) error {
	if b == nil {
		return nil
	}
	return b.Wait(ctx, n)
}

// shaperTable holds the per-source buckets of one site.
type shaperTable struct {
	mu   sync.Mutex
	rate int64
	m    map[netip.Prefix]*shaperEntry
}

type shaperEntry struct {
	b    *limit.Bytes
	refs int
}

func newShaperTable(rate int64) *shaperTable {
	return &shaperTable{rate: rate, m: map[netip.Prefix]*shaperEntry{}}
}

func (t *shaperTable) acquire(k netip.Prefix) *limit.Bytes {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.m[k]
	if e == nil {
		e = &shaperEntry{b: limit.NewBytes(t.rate, burstFor(t.rate))}
		t.m[k] = e
	}
	e.refs++
	return e.b
}

func (t *shaperTable) release(k netip.Prefix) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.m[k]; e != nil {
		if e.refs--; e.refs <= 0 {
			delete(t.m, k)
		}
	}
}

func (t *shaperTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}
