package waf

// Inspecting one request. The request line and headers are handed to
// Coraza and phase 1 runs. Then, if the request has a body, up to
// BodyLimit bytes of it are read into memory (BodyLimit+1 when the length
// is unknown, so that one more byte tells a longer body), written to the
// transaction, and phase 2 runs over them; the bytes read are put back in
// front of the unread rest, so the next handler reads the body exactly as
// sent, however long. The copy belongs to the request, not to the
// transaction: Coraza's own middleware hands on the transaction's buffer,
// which goes back to Coraza's pool when the transaction closes, while a
// proxy's transport may still be sending the body upstream.
//
// Two decisions are made in Go before Coraza sees the request, because
// they are cheaper and safer there: a static asset is not inspected at all
// (skips), and path exclusions remove their rules from this transaction
// only (excludeByPath) after comparing the path both decoded and as sent,
// dot segments resolved, so that an encoded "../" cannot move a request
// under an excluded prefix.

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path"
	"strconv"
	"strings"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types"
)

// Handler wraps next with inspection. Each request not skipped (see
// Config.SkipExtensions) is inspected: its line and headers first, then
// the first BodyLimit bytes of its body, which are read before next is
// called and handed to next again, followed by the rest of the body, so
// next reads the body unchanged. onVerdict (nil: none) is called once for
// each inspected request, before next runs or the WAF answers. In block
// mode a request the CRS refuses gets 403 (400 for a body that does not
// parse) from the WAF and never reaches next; in detect mode every request
// reaches next.
func (w *WAF) Handler(next http.Handler, onVerdict func(r *http.Request, v Verdict)) http.Handler {
	if w == nil || w.mode == ModeOff {
		return next
	}
	return &handler{w: w, next: next, onVerdict: onVerdict}
}

type handler struct {
	w         *WAF
	next      http.Handler
	onVerdict func(*http.Request, Verdict)
}

func (h *handler) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if h.w.skips(r) {
		h.next.ServeHTTP(rw, r)
		return
	}
	v, body := h.w.inspect(r)
	if body != nil {
		r.Body = body
	}
	if h.onVerdict != nil {
		h.onVerdict(r, v)
	}
	if v.Blocked {
		refuse(rw, v.Status)
		return
	}
	h.next.ServeHTTP(rw, r)
}

// refuse answers a request the WAF blocked.
func refuse(w http.ResponseWriter, status int) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	io.WriteString(w, http.StatusText(status)+": the web application firewall refused this request.\n")
}

// inspect runs phases 1 and 2 on r. When it has read from r's body it
// returns the body to pass on in its place.
func (w *WAF) inspect(r *http.Request) (Verdict, io.ReadCloser) {
	tx := w.engine.NewTransaction()
	defer tx.Close()
	if len(w.paths) > 0 {
		w.excludeByPath(tx, r)
	}
	client, cport := clientOf(r)
	server, sport := serverOf(r)
	tx.ProcessConnection(client, cport, server, sport)
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	tx.ProcessURI(uri, r.Method, r.Proto)
	for k, vs := range r.Header {
		for _, v := range vs {
			tx.AddRequestHeader(k, v)
		}
	}
	// net/http moves these out of Header. An HTTP/1.1 request without a
	// Host header never gets here, so an empty r.Host there was sent empty.
	if r.Host != "" || r.ProtoMajor == 1 && r.ProtoMinor >= 1 {
		tx.AddRequestHeader("Host", r.Host)
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		tx.SetServerName(host)
	}
	for _, te := range r.TransferEncoding {
		tx.AddRequestHeader("Transfer-Encoding", te)
	}
	if it := tx.ProcessRequestHeaders(); it != nil {
		return w.verdict(tx, it, false), nil
	}

	var body io.ReadCloser
	partial := false
	if r.Body != nil && r.Body != http.NoBody && tx.IsRequestBodyAccessible() {
		// Unknown length: one byte more tells a longer body. The buffer
		// grows as bytes arrive, not as a Content-Length promises.
		want, hint := w.limit+1, min(w.limit+1, 4<<10)
		if r.ContentLength >= 0 {
			want = min(r.ContentLength, w.limit)
			hint = min(want, 64<<10)
			partial = r.ContentLength > w.limit
		}
		data, err := readUpTo(r.Body, want, hint)
		inspected := data
		if int64(len(data)) > w.limit {
			inspected, partial = data[:w.limit], true
		}
		var rest io.Reader = r.Body
		if err != nil && err != io.EOF {
			rest = errReader{err}
		}
		body = &replayBody{Reader: io.MultiReader(bytes.NewReader(data), rest), orig: r.Body}
		if len(inspected) > 0 {
			// Writing exactly the limit marks INBOUND_DATA_ERROR and runs
			// phase 2 (ProcessPartial); the ProcessRequestBody below is
			// then a no-op. An error (none is expected: the buffer is in
			// memory and large enough) still lets phase 2 run on what was
			// written.
			if it, _, _ := tx.WriteRequestBody(inspected); it != nil {
				return w.verdict(tx, it, partial), body
			}
		}
	}
	it, _ := tx.ProcessRequestBody()
	return w.verdict(tx, it, partial), body
}

// readUpTo reads from r until it has n bytes, r ends (io.EOF) or fails.
// hint is the initial capacity.
func readUpTo(r io.Reader, n, hint int64) ([]byte, error) {
	buf := make([]byte, 0, max(hint, 1))
	for int64(len(buf)) < n {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(int64(2*cap(buf)), n))
			copy(grown, buf)
			buf = grown
		}
		m, err := r.Read(buf[len(buf):min(int64(cap(buf)), n)])
		buf = buf[:len(buf)+m]
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// replayBody is a request body whose first bytes were read for inspection.
type replayBody struct {
	io.Reader
	orig io.ReadCloser
}

func (b *replayBody) Close() error { return b.orig.Close() }

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// verdict reads the outcome of a transaction.
func (w *WAF) verdict(tx types.Transaction, it *types.Interruption, partial bool) Verdict {
	v := Verdict{Partial: partial}
	for _, mr := range tx.MatchedRules() {
		if l, ok := mr.(interface{ Log() bool }); ok && !l.Log() {
			continue // bookkeeping rules (nolog)
		}
		rule := mr.Rule()
		sev := ""
		if s := rule.Severity(); s != types.RuleSeverityUnset {
			sev = s.String()
		}
		// Cloned: the transaction goes back to Coraza's pool.
		v.Matches = append(v.Matches, Match{
			RuleID:   rule.ID(),
			Message:  strings.Clone(truncate(mr.Message(), 256)),
			Severity: sev,
			Data:     strings.Clone(truncate(mr.Data(), 256)),
		})
	}
	if st, ok := tx.(plugintypes.TransactionState); ok {
		if s := st.Variables().TX().Get("blocking_inbound_anomaly_score"); len(s) > 0 {
			v.Score, _ = strconv.Atoi(s[0])
		}
	}
	if it == nil {
		// Detect mode: the interruption the engine would have made.
		if d, ok := tx.(interface{ DetectionOnlyInterruption() *types.Interruption }); ok {
			it = d.DetectionOnlyInterruption()
		}
	}
	if it != nil {
		v.Status = http.StatusForbidden
		if it.Status >= 400 && it.Status < 600 {
			v.Status = it.Status
		}
		v.Blocked = w.mode == ModeBlock
	}
	return v
}

// truncate cuts s to at most n bytes, not inside a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > n-4 && i > 0 && s[i]&0xC0 == 0x80 {
		i--
	}
	return s[:i]
}

// clientOf is the client address and port the rules see: WithClient's, or
// else the TCP peer's.
func clientOf(r *http.Request) (string, int) {
	var peer netip.AddrPort
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		peer = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if a, ok := r.Context().Value(clientKey{}).(netip.Addr); ok && a.IsValid() {
		a = a.Unmap()
		if a != peer.Addr() {
			return a.String(), 0
		}
	}
	if !peer.IsValid() {
		return r.RemoteAddr, 0
	}
	return peer.Addr().String(), int(peer.Port())
}

// serverOf is the local address the request arrived on, when known.
func serverOf(r *http.Request) (string, int) {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok {
		return a.IP.String(), a.Port
	}
	return "", 0
}

// excludeByPath removes the rules of the path exclusions that cover r.
func (w *WAF) excludeByPath(tx types.Transaction, r *http.Request) {
	rm, ok := tx.(ruleRemover)
	if !ok {
		return // New checked
	}
	decoded, raw := cleanPath(r.URL.Path), cleanPath(r.URL.EscapedPath())
	for _, ex := range w.paths {
		if under(decoded, ex.prefix) && under(raw, ex.prefix) {
			for _, id := range ex.ids {
				rm.RemoveRuleByID(id)
			}
		}
	}
}

// cleanPath is p as a server might resolve it: backslashes as slashes, dot
// segments removed, rooted.
func cleanPath(p string) string {
	p = strings.ReplaceAll(p, "\\", "/")
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return path.Clean(p)
}

// under reports whether the clean path p is prefix or below it.
func under(p, prefix string) bool {
	return p == prefix || len(p) > len(prefix) && p[len(prefix)] == '/' && strings.HasPrefix(p, prefix)
}

// skips reports whether r is a static asset request left uninspected: GET
// or HEAD, no body, a path ending in a skipped extension, and only plain
// characters in the path and query (see Config.SkipExtensions).
func (w *WAF) skips(r *http.Request) bool {
	if len(w.skip) == 0 || r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if r.ContentLength != 0 || r.Body != nil && r.Body != http.NoBody || len(r.TransferEncoding) > 0 {
		return false
	}
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	p, q, _ := strings.Cut(uri, "?")
	if !plainPath(p) || !plainQuery(q) {
		return false
	}
	name := p[strings.LastIndexByte(p, '/')+1:]
	dot := strings.LastIndexByte(name, '.')
	if dot <= 0 {
		return false
	}
	ext := name[dot:]
	if _, ok := w.skip[ext]; ok {
		return true
	}
	_, ok := w.skip[strings.ToLower(ext)]
	return ok
}

// plainPath: rooted, only [A-Za-z0-9/._~-], no empty, "." or ".." segment.
func plainPath(p string) bool {
	if len(p) == 0 || p[0] != '/' || len(p) > 1024 {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(isAlnum(c) || c == '/' || c == '.' || c == '_' || c == '~' || c == '-') {
			return false
		}
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// plainQuery: at most 256 bytes of [A-Za-z0-9._~=&-] (cache busters).
func plainQuery(q string) bool {
	if len(q) > 256 {
		return false
	}
	for i := 0; i < len(q); i++ {
		c := q[i]
		if !(isAlnum(c) || c == '.' || c == '_' || c == '~' || c == '-' || c == '=' || c == '&') {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
