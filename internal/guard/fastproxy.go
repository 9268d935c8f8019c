package guard

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The fast path's exchange with an upstream: the request written in one
// piece (head and body), the response head parsed, the body relayed by
// its framing so the upstream connection can be used again.

// proxy sends fc.req (its body in fc.body) upstream and relays the answer.
func (fc *fastConn) proxy(st *reqState, s *site, host string) (status int, n int64, keep bool) {
	g, h := fc.g, &fc.req
	fc.forwarding(host, st)
	idempotent := isIdempotent(h.method)
	tried := fc.tried[:0]
	defer func() { fc.tried = tried[:0] }()
	fresh := false // the next try goes to the same upstream on a new connection
	var u *upstream
	for {
		if !fresh {
			if u = s.pool.pick(tried); u == nil {
				return fc.gatewayError(st, errNoUpstream)
			}
			tried = append(tried, u)
		}
		st.upstream = u.url.Host
		var uc *upConn
		if !fresh {
			var idle time.Duration
			uc, idle = u.idle.get(g.now(), !idempotent)
			if uc != nil && (!idempotent || idle > upPeekAfter) && !alive(uc.c) {
				// Closed by the upstream while idle, or it sent something
				// unasked (a 408 before closing): a new connection
				// instead. Under load connections are reused within
				// milliseconds and skip the peek; a request that may not
				// be sent twice always peeks.
				uc.c.Close()
				uc = nil
			}
		}
		reused := uc != nil
		fresh = false
		if uc == nil {
			c, err := g.dialer.Dial("tcp", u.dial)
			if err != nil {
				s.pool.failed(u)
				if len(tried) < len(s.pool.ups) {
					continue // nothing was sent: the next upstream may take it
				}
				return fc.gatewayError(st, err)
			}
			uc = &upConn{c: c, br: bufio.NewReaderSize(c, upBufSize)}
		}
		fc.up.Store(uc)
		fc.out = fc.appendRequest(fc.out[:0], u, host)
		_, err := uc.c.Write(fc.out)
		fc.out = fc.out[:0]
		if err == nil {
			setDeadline(uc.c.SetReadDeadline, g.cfg.Upstreams.ResponseHeaderTimeout.D())
			uc.headDeadline = true
			err = fc.readResponseHead(uc)
		}
		if err != nil {
			nothing := uc.br.Buffered() == 0
			uc.c.Close()
			fc.up.Store(nil)
			var ce clientError
			if errors.As(err, &ce) {
				return 499, 0, false // the client went away: not the upstream's fault
			}
			if reused && nothing && idempotent && !isTimeout(err) {
				// An idle connection the upstream had closed: again, on
				// a new one.
				fresh = true
				continue
			}
			if !errors.Is(err, errRespHead) && !errors.Is(err, errRespFraming) && !errors.Is(err, errRespTooLarge) {
				s.pool.failed(u)
			}
			return fc.gatewayError(st, err)
		}
		s.pool.succeeded(u)
		fc.takeAccount(s.account, st)
		status, n, keep, reusable := fc.relay(uc)
		fc.up.Store(nil)
		if reusable && uc.br.Buffered() == 0 {
			u.idle.put(uc, g.now(), g.cfg.Upstreams.IdleConnections)
		} else {
			uc.c.Close() // bytes past the response (a body for a HEAD, a wrong length): out of step
		}
		return status, n, keep
	}
}

// takeAccount records the account the upstream names in the response
// field account (the first value) and removes the field, as logWriter does.
func (fc *fastConn) takeAccount(account string, st *reqState) {
	if account == "" {
		return
	}
	out := fc.resp.fields[:0]
	for _, f := range fc.resp.fields {
		if len(f.name) == len(account) && strings.EqualFold(string(f.name), account) {
			if st.user == "" && len(f.value) > 0 {
				st.user = clip(string(f.value))
			}
			continue
		}
		out = append(out, f)
	}
	fc.resp.fields = out
}

// readResponseHead reads the next final response head into fc.resp,
// passing 1xx responses on to the client. The head stays in uc.br,
// fc.resp.size bytes of it.
func (fc *fastConn) readResponseHead(uc *upConn) error {
	for informational := 0; ; {
		buf, _ := uc.br.Peek(uc.br.Buffered())
		end := headEnd(buf)
		if end < 0 {
			if uc.br.Buffered() == uc.br.Size() {
				return errRespTooLarge
			}
			if _, err := uc.br.Peek(uc.br.Buffered() + 1); err != nil {
				return err
			}
			continue
		}
		if err := parseResponseHead(buf[:end], &fc.resp); err != nil {
			return err
		}
		code := fc.resp.status
		if code >= 200 {
			return nil
		}
		if code == http.StatusSwitchingProtocols || informational == 5 {
			return errRespHead // no upgrade was asked for; and 1xx do not go on forever
		}
		informational++
		b := appendStatusLine(fc.out[:0], code)
		b = appendFields(b, fc.resp.fields)
		fc.out = append(b, "\r\n"...)
		uc.br.Discard(end)
		if err := fc.flush(); err != nil {
			return clientError{err}
		}
	}
}

// relay writes the response whose head fc.resp holds to the client. It
// returns the status, the body bytes sent, whether the client connection
// may go on and whether the upstream connection may be used again.
func (fc *fastConn) relay(uc *upConn) (status int, n int64, keep, reusable bool) {
	r, h := &fc.resp, &fc.req
	status = r.status
	head := r.size
	noBody := status == http.StatusNoContent || status == http.StatusNotModified || string(h.method) == "HEAD"
	b := appendStatusLine(fc.out[:0], status)
	b = appendFields(b, r.fields)
	if !r.hasDate {
		b = append(b, "Date: "...)
		b = appendDate(b)
		b = append(b, "\r\n"...)
	}
	closing := false
	switch {
	case noBody:
		if r.contentLength >= 0 && status != http.StatusNoContent {
			b = appendContentLength(b, r.contentLength)
		}
	case r.chunked:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	case r.contentLength >= 0:
		b = appendContentLength(b, r.contentLength)
	default:
		closing = true // the body ends when the upstream closes
	}
	if closing || fc.closing() {
		b = append(b, "Connection: close\r\n"...)
	}
	fc.out = append(b, "\r\n"...)
	uc.br.Discard(head)
	var upErr, clientErr error
	switch {
	case noBody:
	case r.chunked:
		n, upErr, clientErr = fc.relayChunked(uc)
	case r.contentLength >= 0:
		n, upErr, clientErr = fc.copyBody(uc, r.contentLength)
	default:
		n, upErr, clientErr = fc.copyBody(uc, -1)
		if errors.Is(upErr, io.EOF) {
			upErr = nil
		}
	}
	// What is left in fc.out goes out after the request is recorded
	// (fastConn.request).
	if upErr != nil {
		fc.g.log.Debug("guard: upstream response cut short", "error", upErr)
	}
	ok := upErr == nil && clientErr == nil
	return status, n, ok && !closing, ok && !closing && !r.close
}

// copyBody relays n body bytes (n < 0: up to EOF), flushing to the client
// whenever the upstream has nothing more at hand, so a streamed response
// streams.
func (fc *fastConn) copyBody(uc *upConn, n int64) (written int64, upErr, clientErr error) {
	for n != 0 {
		if uc.br.Buffered() == 0 || len(fc.out) >= upBufSize {
			if err := fc.flush(); err != nil {
				return written, nil, err
			}
		}
		if uc.br.Buffered() == 0 {
			uc.bodyWait()
			if _, err := uc.br.Peek(1); err != nil {
				if errors.Is(err, io.EOF) && n > 0 {
					err = io.ErrUnexpectedEOF
				}
				return written, err, nil
			}
		}
		k := uc.br.Buffered()
		if n > 0 {
			k = int(min(int64(k), n))
			n -= int64(k)
		}
		p, _ := uc.br.Peek(k)
		fc.out = append(fc.out, p...)
		uc.br.Discard(k)
		written += int64(k)
	}
	return written, nil, nil
}

var errChunk = errors.New("malformed chunked body from upstream")

// relayChunked relays a chunked body: sizes rewritten without extensions,
// trailer fields passed on.
func (fc *fastConn) relayChunked(uc *upConn) (written int64, upErr, clientErr error) {
	for {
		line, err := fc.upLine(uc)
		if err != nil {
			return written, err, nil
		}
		size, ok := parseChunkSize(line)
		if !ok {
			return written, errChunk, nil
		}
		if size == 0 {
			break
		}
		fc.out = strconv.AppendInt(fc.out, size, 16)
		fc.out = append(fc.out, "\r\n"...)
		m, upErr, clientErr := fc.copyBody(uc, size)
		written += m
		if upErr != nil || clientErr != nil {
			return written, upErr, clientErr
		}
		if line, err = fc.upLine(uc); err != nil || len(line) != 0 {
			return written, errChunk, nil
		}
		fc.out = append(fc.out, "\r\n"...)
	}
	fc.out = append(fc.out, "0\r\n"...)
	for {
		line, err := fc.upLine(uc)
		if err != nil {
			return written, err, nil
		}
		if len(line) == 0 {
			break
		}
		if _, _, ok := splitField(line); ok { // anything else is dropped
			fc.out = append(fc.out, line...)
			fc.out = append(fc.out, "\r\n"...)
		}
	}
	fc.out = append(fc.out, "\r\n"...)
	return written, nil, nil
}

// upLine reads one line (LF or CRLF) from the upstream, without its end.
// It flushes what waits for the client first if it would block.
func (fc *fastConn) upLine(uc *upConn) ([]byte, error) {
	if uc.br.Buffered() == 0 {
		if err := fc.flush(); err != nil {
			return nil, err
		}
		uc.bodyWait()
	}
	line, err := uc.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			err = errChunk
		} else if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, nil
}

// parseChunkSize parses a chunk-size line: hex digits, then optional
// whitespace and extensions after ';'.
func parseChunkSize(line []byte) (int64, bool) {
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = trimOWS(line)
	if len(line) == 0 || len(line) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range line {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | int64(d)
	}
	return n, true
}

// appendRequest appends the upstream request: fc.req's line with the
// upstream's path prefix, its header fields but the hop-by-hop ones and
// those the guard owns, the guard's forwarding fields, and the body.
func (fc *fastConn) appendRequest(b []byte, u *upstream, host string) []byte {
	h := &fc.req
	b = append(b, h.method...)
	b = append(b, ' ')
	b = append(b, u.prefix...)
	b = append(b, h.target...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\n"...)
	for _, f := range h.fields {
		if outboundDropped(f.name) {
			continue
		}
		b = append(b, f.name...)
		b = append(b, ": "...)
		b = append(b, f.value...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "X-Forwarded-For: "...)
	b = append(b, fc.xff...)
	b = append(b, "\r\nForwarded: "...)
	b = append(b, fc.fwd...)
	b = append(b, "\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: "...)
	b = append(b, host...)
	b = append(b, "\r\nX-Real-Ip: "...)
	b = append(b, fc.xri...)
	b = append(b, "\r\n\r\n"...)
	if h.contentLength > 0 {
		b = append(b, fc.body...)
	}
	return b
}

// forwarding sets the forwarding field values for host (kept while the
// connection asks for the same host: the peer does not change).
func (fc *fastConn) forwarding(host string, st *reqState) {
	if fc.xri != "" && host == fc.fwdHost {
		return
	}
	fc.fwdHost = host
	fc.xff, fc.fwd = fc.g.resolver.Outbound(fc.peer, nil, "http", host)
	fc.xri = st.client.String()
}

// outboundDropped reports whether a client's header field named name is
// left out of the upstream request, as on the net/http path: Host (the
// guard writes it), Connection and the other hop-by-hop fields, and the
// fields the guard owns, in any case and with '_' for '-'.
func outboundDropped(name []byte) bool {
	if equalFold(name, "host") || equalFold(name, "connection") || isHopByHop(name) {
		return true
	}
	for _, k := range ownedLower {
		if len(k) == len(name) && equalFoldDash(name, k) {
			return true
		}
	}
	return false
}

// ownedLower are the guard-owned fields (guardOwned), in lower case.
var ownedLower = func() []string {
	var out []string
	for _, k := range append([]string{"X-Forwarded-For", "Forwarded", "X-Forwarded-Proto", "X-Forwarded-Host"}, spoofable...) {
		out = append(out, string(bytes.ToLower([]byte(k))))
	}
	return out
}()

// equalFoldDash is equalFold with '_' in b read as '-'.
func equalFoldDash(b []byte, s string) bool {
	for i := range len(b) {
		c := b[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c = '-'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

func isIdempotent(method []byte) bool {
	switch string(method) {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	return false
}

func appendFields(b []byte, fs []field) []byte {
	for _, f := range fs {
		b = append(b, f.name...)
		b = append(b, ": "...)
		b = append(b, f.value...)
		b = append(b, "\r\n"...)
	}
	return b
}

func appendContentLength(b []byte, n int64) []byte {
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, n, 10)
	return append(b, "\r\n"...)
}

// gatewayError answers when the upstream side failed, as proxyError does.
func (fc *fastConn) gatewayError(st *reqState, err error) (int, int64, bool) {
	code, msg := http.StatusBadGateway, "Bad gateway: the site is not reachable.\n"
	if isTimeout(err) {
		code, msg = http.StatusGatewayTimeout, "Gateway timeout: the site did not answer in time.\n"
	}
	fc.g.log.Debug("guard: upstream error", "site", siteName(st), "error", err)
	b := appendStatusLine(fc.out[:0], code)
	b = append(b, "Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n"...)
	b = fc.appendEnd(b, int64(len(msg)), false)
	fc.out = append(b, msg...) // request flushes it
	return code, int64(len(msg)), true
}

// clientError is a failure writing to the client met during the exchange
// with the upstream, which says nothing of the upstream.
type clientError struct{ error }

func (e clientError) Unwrap() error { return e.error }
