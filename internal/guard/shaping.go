package guard

import (
	"context"
	"net/http"
	"net/netip"
	"sync"

	"github.com/bulwarkhq/bulwark/internal/guard/limit"
)

// Bandwidth shaping of responses. A response waits, piece by piece, on
// up to two buckets:
//
//   - the site's: a runtime rule capping the whole site (rules.Shape with
//     no networks or accounts) if there is one, else the config's
//     sites[].bandwidth;
//   - the client's: a runtime rule matching the account the upstream names
//     in the site's account header, else one matching the client address
//     (the most specific network), else the config's per-source
//     client_bandwidth.
//
// A rule's bucket is shared by every response it matches (a client is a
// CIDR list or an account, capped as a whole); a per-source bucket is kept
// while that source has a request in progress (a source with none has
// nothing to shape, and its next request starts with a full bucket).

// shapeChunk is the most a response write sends before waiting for
// tokens again, so a cap is smooth at any write size.
const shapeChunk = 16 << 10

type shapedWriter struct {
	*logWriter
	ctx    context.Context
	site   *limit.Bytes
	client *limit.Bytes
	source *limit.Bytes // the per-source bucket acquired (released by ServeHTTP)
	// Looking for a rule by account, at the first write (once the
	// upstream's header has named it).
	shapes    *shapeSet
	siteName  string
	byAccount bool
}

// shaper returns the writer that shapes a response, or nil when no cap
// applies to it.
func (g *Guard) shaper(lw *logWriter, r *http.Request, s *site, key netip.Prefix) *shapedWriter {
	shapes := g.shapes.Load()
	siteCap := s.bandwidth
	if rule := shapes.forSite(s.name); rule != nil {
		siteCap = rule.bucket
	}
	var client *limit.Bytes
	if rule := shapes.forAddr(lw.st.client, s.name); rule != nil {
		client = rule.bucket
	}
	byAccount := s.account != "" && shapes.hasAccounts()
	if siteCap == nil && client == nil && s.clients == nil && !byAccount {
		return nil
	}
	sw := &shapedWriter{logWriter: lw, ctx: r.Context(), site: siteCap, client: client,
		shapes: shapes, siteName: s.name, byAccount: byAccount}
	if client == nil && s.clients != nil {
		sw.source = s.clients.acquire(key)
		sw.client = sw.source
	}
	return sw
}

func (w *shapedWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.byAccount {
		w.byAccount = false
		if rule := w.shapes.forAccount(w.st.user, w.siteName); rule != nil {
			w.client = rule.bucket
		}
	}
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
