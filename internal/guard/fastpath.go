package guard

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The HTTP/1.1 fast path. On the plain-HTTP listener the guard serves a
// connection itself, one goroutine per client connection that reads a
// request, runs the same checks as ServeHTTP, writes the request to an
// upstream connection it holds for the exchange (upconn.go), reads the
// response and writes it back, then reads the next request. That is the
// shape of nginx's proxy: per request, two reads and two writes and no
// hand-off between goroutines, where net/http's server and Transport make
// three goroutines pass each request and response along, read each
// connection twice (a background read to notice a client going away) and
// build and sort header maps on both sides. On a small file through a
// keep-alive upstream it serves about three times the requests per second
// for the same CPU (docs/benchmarks.md).
//
// It serves only what it can serve exactly as net/http would. A
// connection leaves the fast path for good, bytes unread and unchanged, to
// the net/http server behind it when a request is outside the strict
// subset of HTTP/1.1 the fast parser accepts (h1parse.go: transfer
// codings, Expect, upgrades, percent-encoded paths, HTTP/1.0, heads
// larger than its buffer), has a body over fastBodyMax, comes from a
// trusted proxy, or is for a site that inspects requests (WAF), has login
// endpoints or shapes bandwidth, or that a runtime shaping rule covers
// (by site, address or account). These decisions come before any check that counts, so a
// request is never counted twice. TLS connections are always net/http's
// (HTTP/2 among them).
//
// What differs, by design, from the net/http path: the response's header
// fields keep the upstream's order and spelling and no Content-Type is
// sniffed for an upstream that sent none; 1xx responses pass through; and
// a client that goes away while its upstream thinks is noticed when the
// answer is written, not before (nginx's default too), so the upstream
// finishes that one request.

const (
	fastBufSize = 8 << 10  // a client's read buffer: the largest head the fast path takes
	fastBodyMax = 64 << 10 // larger bodies take the net/http path (streamed, slow-POST checked)
)

// fastReaders are the connections' read buffers, reused as net/http
// reuses its own: a burst of connections (an attacker's reconnecting
// slowloris) then costs no burst of garbage.
var fastReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, fastBufSize) }}

// fastConn is one client connection on the fast path.
type fastConn struct {
	g    *Guard
	fs   *fastServer
	c    net.Conn
	br   *bufio.Reader
	peer netip.Addr
	req  reqHead
	resp respHead
	out  []byte // what goes to the client or the upstream next
	body []byte // the request body
	copy []byte // upstream body pieces on their way to the client
	// The forwarding headers for the host last asked for.
	fwdHost       string
	xff, fwd, xri string
	idle          atomic.Bool
	tried         []*upstream
	consumed      bool                   // the request's head (and body) are out of br
	rawHead       []byte                 // the head in br while it is there
	head          []byte                 // the head's own copy, when br had to refill under it
	scanned       int                    // bytes of an incomplete head seen without a line end
	up            atomic.Pointer[upConn] // the upstream connection in use (closed by a forced shutdown)
}

// fastServer is the fast path of one plain listener: its connections, for
// shutdown, and the hand-off to the net/http server.
type fastServer struct {
	g        *Guard
	handoff  *handoffListener
	mu       sync.Mutex
	conns    map[*fastConn]struct{}
	draining atomic.Bool // set under mu, read without
	wg       sync.WaitGroup
	served   atomic.Int64 // requests the fast path answered (tests)
}

// serve accepts from ln (the admitting listener) until it fails.
func (fs *fastServer) serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		fc := &fastConn{g: fs.g, fs: fs, c: c, peer: peerOf(c)}
		fs.mu.Lock()
		if fs.draining.Load() {
			fs.mu.Unlock()
			c.Close()
			continue
		}
		fs.conns[fc] = struct{}{}
		fs.wg.Add(1)
		fs.mu.Unlock()
		go func() {
			defer fs.wg.Done()
			fc.serve(fs)
			fs.mu.Lock()
			delete(fs.conns, fc)
			fs.mu.Unlock()
		}()
	}
}

// shutdown closes the idle connections and makes the busy ones close
// after their current response; it returns when all are gone or ctx ends,
// when it closes what is left.
func (fs *fastServer) shutdown(done <-chan struct{}) {
	fs.mu.Lock()
	fs.draining.Store(true)
	fs.mu.Unlock()
	fs.closeIdle()
	finished := make(chan struct{})
	go func() { fs.wg.Wait(); close(finished) }()
	for {
		select {
		case <-finished:
			return
		case <-done:
			fs.mu.Lock()
			for fc := range fs.conns {
				fc.c.Close()
				if uc := fc.up.Load(); uc != nil {
					uc.c.Close() // a wait on the upstream ends too
				}
			}
			fs.mu.Unlock()
			<-finished
			return
		case <-time.After(50 * time.Millisecond):
			fs.closeIdle() // a connection may have gone idle since
		}
	}
}

// closeIdle closes the connections waiting for a request.
func (fs *fastServer) closeIdle() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for fc := range fs.conns {
		if fc.idle.Load() {
			fc.c.Close()
		}
	}
}

func (fs *fastServer) isDraining() bool { return fs.draining.Load() }

// peerOf is the address of c's TCP peer, unmapped; zero for other conns.
func peerOf(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// serve runs the connection's requests until it closes or leaves for
// net/http.
func (fc *fastConn) serve(fs *fastServer) {
	g := fc.g
	defer func() {
		// As net/http's server does: a bug serving one connection ends
		// that connection, not the guard.
		if err := recover(); err != nil {
			g.log.Error("guard: panic serving a connection", "client", fc.peer.String(), "panic", fmt.Sprint(err), "stack", string(debug.Stack()))
			fc.c.Close()
			if uc := fc.up.Load(); uc != nil {
				uc.c.Close()
			}
		}
	}()
	t := g.cfg.Timeouts
	if g.resolver.IsTrusted(fc.peer) {
		fs.handoff.give(fc.c, nil) // its clients' addresses are in headers
		return
	}
	fc.br = fastReaders.Get().(*bufio.Reader)
	fc.br.Reset(fc.c)
	defer func() {
		// Back to the pool once nothing reads it: the connection closed
		// or moved on (its unread bytes copied out first).
		fc.br.Reset(nil)
		fastReaders.Put(fc.br)
		fc.br = nil
	}()
	first := true
	for {
		if fc.br.Buffered() == 0 {
			wait := t.Idle.D()
			if first {
				wait = t.Header.D()
			}
			fc.idle.Store(true)
			if fs.isDraining() {
				fc.c.Close()
				return
			}
			setDeadline(fc.c.SetReadDeadline, wait)
			_, err := fc.br.Peek(1)
			fc.idle.Store(false)
			if err != nil {
				fc.c.Close()
				return
			}
		}
		mine, err := fc.readHead(first)
		first = false
		if err != nil {
			fc.c.Close()
			return
		}
		if !mine {
			fc.leave(fs)
			return
		}
		switch fc.request(fs) {
		case closeConn:
			fc.c.Close()
			return
		case leftConn:
			return
		}
	}
}

func setDeadline(set func(time.Time) error, d time.Duration) {
	if d > 0 {
		_ = set(time.Now().Add(d))
	} else {
		_ = set(time.Time{})
	}
}

// readHead reads a request head into fc.req; mine=false when it is not
// the fast path's to serve. On a connection's first request the header
// deadline runs from the accept already.
func (fc *fastConn) readHead(first bool) (mine bool, err error) {
	waited := first
	fc.scanned = 0
	for {
		buf, _ := fc.br.Peek(fc.br.Buffered())
		// Parse again only when a line end has come since: a head sent a
		// byte at a time costs a scan per byte, not a parse.
		if bytes.IndexByte(buf[fc.scanned:], '\n') < 0 && fc.scanned > 0 {
			fc.scanned = len(buf)
		} else {
			fc.scanned = len(buf)
			ok, complete := parseRequestHead(buf, &fc.req)
			if !ok {
				return false, nil
			}
			if complete {
				if fc.req.size > int(fc.g.cfg.Timeouts.MaxHeaderBytes.Bytes()) {
					return false, nil // net/http answers 431
				}
				fc.rawHead = buf[:fc.req.size]
				return true, nil
			}
		}
		if fc.br.Buffered() == fc.br.Size() {
			return false, nil // a head larger than the buffer
		}
		if !waited {
			// The rest of the head is due within the header timeout
			// (most heads come whole, and need no deadline of their own).
			setDeadline(fc.c.SetReadDeadline, fc.g.cfg.Timeouts.Header.D())
			waited = true
		}
		if _, err := fc.br.Peek(fc.br.Buffered() + 1); err != nil {
			return false, err
		}
	}
}

// leave hands the connection, with the bytes read and not yet served, to
// the net/http server.
func (fc *fastConn) leave(fs *fastServer) {
	pending, _ := fc.br.Peek(fc.br.Buffered())
	pending = append([]byte(nil), pending...)
	_ = fc.c.SetDeadline(time.Time{})
	fs.handoff.give(fc.c, pending)
}

// next is what becomes of a connection after a request.
type next int

const (
	closeConn next = iota // close it
	keepConn              // read the next request
	leftConn              // it went to the net/http server
)

// request serves the request in fc.req.
func (fc *fastConn) request(fs *fastServer) next {
	g, h := fc.g, &fc.req
	host := string(h.host)
	// The decisions to leave come first, before anything counts.
	var s *site
	malformed := !validHost(host) || hasDotSegment(string(h.path))
	if !malformed {
		s = g.route(host)
		if s != nil && (!s.fast || g.shapedFor(s, fc.peer) || h.contentLength > fastBodyMax && h.contentLength <= s.maxBody) {
			fc.leave(fs)
			return leftConn
		}
	}
	fs.served.Add(1)
	fc.consumed = false
	st := &reqState{start: g.now(), peer: fc.peer, client: fc.peer}
	status, n, keep := fc.handle(st, s, host, malformed)
	e := g.record(st, status, n, func() string { return string(h.path) })
	if e != nil {
		e.Method = clip(string(h.method))
		e.Host = clip(host)
		e.URI = clip(string(h.target))
		e.Proto = "HTTP/1.1"
		e.UserAgent = clip(string(h.userAgent))
		e.Referer = clip(string(h.referer))
		if h.contentLength > 0 {
			e.BodyBytes = h.contentLength
		}
		g.access.write(e)
	}
	// The end of the answer goes out after the request is recorded (as
	// on the net/http path, whose handler returns before its buffer is
	// flushed): whoever reads the answer finds the request in the log.
	if err := fc.flush(); err != nil {
		keep = false
	}
	// Buffers grown for a large request or response go back to the
	// collector: an idle connection holds only its read buffer.
	if cap(fc.body) > 8<<10 {
		fc.body = nil
	}
	if cap(fc.out) > 16<<10 {
		fc.out = nil
	}
	if cap(fc.req.fields) > 64 {
		fc.req.fields = nil
	}
	if cap(fc.resp.fields) > 64 {
		fc.resp.fields = nil
	}
	if cap(fc.head) > 16<<10 {
		fc.head = nil
	}
	if keep && !h.close && !fs.isDraining() {
		return keepConn
	}
	return closeConn
}

// handle runs the checks and the exchange with the upstream (malformed:
// the Host or path failed request's check, answered 400 here); it returns
// the status and body bytes sent and whether the connection may carry
// another request.
func (fc *fastConn) handle(st *reqState, s *site, host string, malformed bool) (status int, n int64, keep bool) {
	g, h := fc.g, &fc.req
	allowed := g.allow.Contains(st.client)
	if !allowed {
		if g.deny.Contains(st.client) {
			return fc.refuse(st, "deny", http.StatusForbidden, 0, true)
		}
		if g.banned(st.client) {
			return fc.refuse(st, "ban", http.StatusForbidden, 0, true)
		}
	}
	if malformed {
		return fc.refuse(st, "bad_request", http.StatusBadRequest, 0, false)
	}
	if s == nil {
		return fc.refuse(st, "unknown_site", http.StatusNotFound, 0, false)
	}
	st.site = s
	key := g.source(st.client)
	if !allowed {
		if s.rate != nil {
			if ok, wait := s.rate.Allow(key, st.start); !ok {
				return fc.refuse(st, "rate", http.StatusTooManyRequests, wait, false)
			}
		}
		if s.inflight != nil {
			if !s.inflight.Acquire(key) {
				return fc.refuse(st, "requests_in_progress", http.StatusTooManyRequests, time.Second, false)
			}
			defer s.inflight.Release(key)
		}
	}
	if h.contentLength > s.maxBody {
		return fc.refuse(st, "body_size", http.StatusRequestEntityTooLarge, 0, false)
	}
	if h.contentLength > 0 {
		if err := fc.readBody(); err != nil {
			if errors.Is(err, errSlowBody) {
				return fc.refuse(st, "slow_body", http.StatusRequestTimeout, 0, true)
			}
			return 499, 0, false // the client went away
		}
	} else {
		fc.br.Discard(h.size)
		fc.consumed = true
	}
	return fc.proxy(st, s, host)
}

// readBody reads the request's body into fc.body, under the same
// minimum-rate rule as the net/http path (body.go).
func (fc *fastConn) readBody() error {
	g, h := fc.g, &fc.req
	fc.br.Discard(h.size)
	fc.consumed = true
	need := int(h.contentLength)
	fc.body = fc.body[:0]
	if cap(fc.body) < need {
		fc.body = make([]byte, 0, need)
	}
	rate := float64(g.cfg.Timeouts.MinBodyRate.Bytes())
	grace := g.cfg.Timeouts.BodyGrace.D()
	allow := grace
	if fc.br.Buffered() < need {
		// The buffer refills from its start while the body comes in, over
		// the head fc.req points into: it moves to a copy first.
		fc.keepHead()
		if rate == 0 {
			_ = fc.c.SetReadDeadline(time.Time{}) // no body deadline, as on the net/http path
		}
	}
	for len(fc.body) < need {
		if b := fc.br.Buffered(); b > 0 {
			b = min(b, need-len(fc.body))
			p, _ := fc.br.Peek(b)
			fc.body = append(fc.body, p...)
			fc.br.Discard(b)
			continue
		}
		var start time.Time
		if rate > 0 {
			start = time.Now()
			_ = fc.c.SetReadDeadline(start.Add(allow))
		}
		p, err := fc.br.Peek(1)
		got := fc.br.Buffered()
		if rate > 0 {
			allow = refill(allow-time.Since(start), got, rate, grace)
		}
		if len(p) == 0 && err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return errSlowBody
			}
			return err
		}
	}
	return nil
}

// keepHead re-parses the request head, which fc.req points into and which
// br is about to overwrite, from a copy of its own. The bytes are the same,
// and so is every field.
func (fc *fastConn) keepHead() {
	fc.head = append(fc.head[:0], fc.rawHead...)
	if ok, complete := parseRequestHead(fc.head, &fc.req); !ok || !complete {
		panic("guard: a request head parsed twice differently") // cannot happen: same bytes
	}
	fc.rawHead = nil
}

// refuse answers a request the guard will not pass on, as Guard.refuse
// does; closing asks for the connection to end after it.
func (fc *fastConn) refuse(st *reqState, reason string, code int, retryAfter time.Duration, closing bool) (int, int64, bool) {
	st.blocked = reason
	fc.g.metrics.blocked(reason)
	switch n := fc.req.size + max(int(fc.req.contentLength), 0); {
	case fc.consumed:
		closing = closing || fc.req.contentLength > 0 // a body cut short
	case fc.br.Buffered() < n:
		closing = true // the body is not all here: the connection cannot go on
	default:
		fc.br.Discard(n)
		fc.consumed = true
	}
	msg := refusals[reason] + "\n"
	b := appendStatusLine(fc.out[:0], code)
	if retryAfter > 0 {
		b = append(b, "Retry-After: "...)
		b = strconv.AppendInt(b, int64((retryAfter+time.Second-1)/time.Second), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n"...)
	b = fc.appendEnd(b, int64(len(msg)), closing)
	fc.out = append(b, msg...) // request flushes it
	return code, int64(len(msg)), !closing
}

// appendEnd appends Date, Content-Length (n >= 0), Connection: close when
// closing, and the blank line.
func (fc *fastConn) appendEnd(b []byte, n int64, closing bool) []byte {
	b = append(b, "Date: "...)
	b = appendDate(b)
	b = append(b, "\r\n"...)
	if n >= 0 {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, n, 10)
		b = append(b, "\r\n"...)
	}
	if closing || fc.closing() {
		b = append(b, "Connection: close\r\n"...)
	}
	return append(b, "\r\n"...)
}

// closing reports whether the connection ends after this response
// whatever happens: the client asked, or the guard is shutting down.
func (fc *fastConn) closing() bool { return fc.req.close || fc.fs.isDraining() }

// flush writes fc.out to the client, each write bounded by the idle
// timeout (a client that stops reading cannot hold the exchange).
func (fc *fastConn) flush() error {
	if len(fc.out) == 0 {
		return nil
	}
	setDeadline(fc.c.SetWriteDeadline, fc.g.cfg.Timeouts.Idle.D())
	_, err := fc.c.Write(fc.out)
	fc.out = fc.out[:0]
	return err
}

var dateCache atomic.Pointer[[2]any] // {unix second int64, formatted []byte}

// appendDate appends the current time in HTTP's date format, formatted
// once a second.
func appendDate(b []byte) []byte {
	now := time.Now()
	sec := now.Unix()
	if c := dateCache.Load(); c != nil && c[0].(int64) == sec {
		return append(b, c[1].([]byte)...)
	}
	f := now.UTC().AppendFormat(nil, http.TimeFormat)
	dateCache.Store(&[2]any{sec, f})
	return append(b, f...)
}

func appendStatusLine(b []byte, code int) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	if text := http.StatusText(code); text != "" {
		b = append(b, text...)
	} else {
		b = append(b, "status code "...)
		b = strconv.AppendInt(b, int64(code), 10)
	}
	return append(b, "\r\n"...)
}

// shapedFor reports whether a bandwidth cap applies to responses of s to
// client (what Guard.shaper looks up).
func (g *Guard) shapedFor(s *site, client netip.Addr) bool {
	shapes := g.shapes.Load()
	return shapes.forSite(s.name) != nil || shapes.forAddr(client, s.name) != nil ||
		s.account != "" && shapes.hasAccounts()
}

// handoffListener is the listener the net/http server behind the fast
// path serves: it yields the connections the fast path gives up.
type handoffListener struct {
	addr net.Addr
	ch   chan net.Conn
	once sync.Once
	done chan struct{}
}

func newHandoff(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

// give passes c to the server, its first bytes pending (already read).
func (l *handoffListener) give(c net.Conn, pending []byte) {
	if len(pending) > 0 {
		c = &replayConn{Conn: c, pending: pending}
	}
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

// replayConn reads pending before the rest of its connection.
type replayConn struct {
	net.Conn
	pending []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite passes the half-close through (the server uses it to deliver
// an error to a client still sending).
func (c *replayConn) CloseWrite() error { return closeWrite(c.Conn) }

var _ io.Reader = (*replayConn)(nil)
