// Package vault is the client side of the Bulwark vault: a backend.Backend
// that stores a repository on a vault server (internal/vault) over HTTPS,
// authenticated by a bearer token.
//
// Protocol. Each Backend method is one request of the vault's HTTP API
// (documented in package internal/vault): Save is PUT, Replace is
// PUT ?replace=1, Load is GET with ?offset&length, Stat is HEAD, Remove is
// DELETE, List is GET /NAME/TYPE/ answering JSON lines that end with an
// {"end":true} line, so that a list cut short is an error and never a
// silently shorter list.
//
// Statuses map to the backend contract: 404 ErrNotExist, 409 ErrExists,
// 403 ErrForbidden (an append-only token refusing a delete or overwrite),
// 416 io.ErrUnexpectedEOF, 400 ErrInvalidName when the server says the name
// is invalid. 401 is a final "token rejected (revoked or wrong)" error, and
// 411, 413, 422 and 507 (quota or disk full) are final too: retrying cannot
// help. Connection failures, 5xx and 429 are transient; Open and Create
// wrap the backend in internal/repo/backend/retry, which retries them with
// back-off.
//
// Dropped uploads. A PUT cut mid-body stores nothing on the vault, and the
// retry layer sends the whole object again. A PUT whose answer was lost may
// have stored the object; the retry then meets 409 and the retry layer
// accepts an object of the same name and size (names are SHA-256 of the
// content). Objects are not resumed part way: they are at most about
// 20 MiB (packs of 16 MiB, the size `repo init` gives, and their parity),
// so resending one costs seconds, less than the bookkeeping of partial
// uploads would. What resumes is the backup: when the vault stays away
// longer than the retries wait, the backup fails, but it has written an
// index checkpoint every 1 GiB or 5 minutes of packs (internal/repo,
// checkpoint.go), and the next run uploads only what came after the last
// checkpoint.
//
// Transport. HTTPS with TLS 1.2 or later, trusting the system roots or, if
// given, only the certificates of a CA file (the vault's self-signed
// certificate). Plain http:// is refused unless Insecure is set and the
// host is a loopback address. HTTP/1.1 over a pool of connections: every
// concurrent upload gets its own TCP stream and window.
package vault

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/retry"
)

// Options configure a client.
type Options struct {
	// Token is the vault token (BULWARK_VAULT_TOKEN).
	Token string
	// CAFile is a PEM file of certificates to trust instead of the system
	// roots ("" = system roots).
	CAFile string
	// RootCAs, when set, is used instead of CAFile.
	RootCAs *x509.CertPool
	// Insecure allows plain http://, and only to a loopback host.
	Insecure bool
	// Retry is the retry policy (zero fields take retry.DefaultPolicy's).
	Retry retry.Policy
}

// Backend is a repository on a vault. Use Open or Create, which wrap it
// in the retry layer; a bare Backend fails at the first transient error.
type Backend struct {
	base   *url.URL // scheme://host:port
	name   string   // repository name
	token  string
	client *http.Client
}

var _ backend.Backend = (*Backend)(nil)

// Error is a failed request.
type Error struct {
	Op     string
	Handle string
	Status int    // 0 for a transport failure
	Reason string // the vault's explanation, or the transport error
	err    error  // the sentinel wrapped, if any
	perm   bool
}

func (e *Error) Error() string {
	s := fmt.Sprintf("vault: %s %s: ", e.Op, e.Handle)
	if e.Status != 0 {
		s += fmt.Sprintf("%d %s: ", e.Status, http.StatusText(e.Status))
	}
	s += e.Reason
	if e.err != nil && !strings.Contains(s, e.err.Error()) {
		s += " (" + e.err.Error() + ")"
	}
	return s
}

// Unwrap returns the backend sentinel the status maps to, if any.
func (e *Error) Unwrap() error { return e.err }

// Permanent reports whether retrying cannot help (see the package
// documentation).
func (e *Error) Permanent() bool { return e.perm }

// ErrTokenRejected is wrapped by the error of every request the vault
// answers with 401.
var ErrTokenRejected = errors.New("token rejected (revoked or wrong): check BULWARK_VAULT_TOKEN")

// Open returns a retrying backend for the vault repository at rawURL,
// https://HOST:PORT/NAME. It sends no request.
func Open(rawURL string, o Options) (backend.Backend, error) {
	b, err := New(rawURL, o)
	if err != nil {
		return nil, err
	}
	return retry.New(b, o.Retry), nil
}

// Create is Open after asking the vault to create the repository (it is
// not an error if it exists: the repository's config decides that).
func Create(ctx context.Context, rawURL string, o Options) (backend.Backend, error) {
	b, err := New(rawURL, o)
	if err != nil {
		return nil, err
	}
	rb := retry.New(b, o.Retry)
	// The retry layer has no call for this; reuse its policy through a
	// Stat-shaped closure would be contrived, so retry here plainly.
	p := o.Retry
	if p.Attempts <= 0 {
		p.Attempts = retry.DefaultPolicy.Attempts
	}
	wait := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err = b.createRepo(ctx)
		if err == nil || retry.IsPermanent(ctx, err) || attempt >= p.Attempts {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (while waiting to retry: %w)", err, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 10*time.Second)
	}
	if err != nil {
		return nil, err
	}
	return rb, nil
}

// New returns a bare (not retrying) backend for rawURL.
func New(rawURL string, o Options) (*Backend, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("vault location %q: %w", rawURL, err)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("vault location %q: give https://HOST:PORT/NAME only (the token goes in BULWARK_VAULT_TOKEN)", redact(u))
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !o.Insecure || !loopback(u.Hostname()) {
			return nil, fmt.Errorf("vault location %s: plain http is refused (it would send the token and backups in clear); use https://, or --insecure with a loopback address for tests", u)
		}
	default:
		return nil, fmt.Errorf("vault location %q: scheme must be https", rawURL)
	}
	name := strings.TrimSuffix(strings.TrimPrefix(u.Path, "/"), "/")
	if name == "" || strings.Contains(name, "/") || u.Host == "" {
		return nil, fmt.Errorf("vault location %s: want https://HOST:PORT/NAME with one repository name", u)
	}
	if o.Token == "" {
		return nil, fmt.Errorf("vault %s: no token: set BULWARK_VAULT_TOKEN to a token from `bulwark vault token add`", u)
	}
	tcfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: o.RootCAs}
	if tcfg.RootCAs == nil && o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("vault %s: CA file: %w", u, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("vault %s: CA file %s holds no PEM certificate", u, o.CAFile)
		}
		tcfg.RootCAs = pool
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tcfg,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 5 * time.Minute,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true, // objects are encrypted: incompressible
		WriteBufferSize:       256 << 10,
		ReadBufferSize:        256 << 10,
		// HTTP/1.1 only (see the package documentation).
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	return &Backend{
		base:   &url.URL{Scheme: u.Scheme, Host: u.Host},
		name:   name,
		token:  o.Token,
		client: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}, nil
}

func redact(u *url.URL) string {
	c := *u
	c.User, c.RawQuery, c.Fragment = nil, "", ""
	return c.String()
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Location returns https://HOST:PORT/NAME.
// UploadConcurrency lets a backup keep two pack uploads in flight: over a
// network the latency of one overlaps the next (see
// backend.UploadConcurrency).
func (b *Backend) UploadConcurrency() int { return 2 }

func (b *Backend) Location() string { return b.base.String() + "/" + b.name }

// Close releases idle connections.
func (b *Backend) Close() error {
	b.client.CloseIdleConnections()
	return nil
}

func objectPath(name string, h backend.Handle) string {
	if h.Type == backend.ConfigFile {
		return "/" + url.PathEscape(name) + "/config"
	}
	return "/" + url.PathEscape(name) + "/" + url.PathEscape(string(h.Type)) + "/" + url.PathEscape(h.Name)
}

// request sends one request and returns the response of a 2xx status;
// any other status becomes an *Error.
func (b *Backend) request(ctx context.Context, method, escPath, query string, body []byte, op, what string) (*http.Response, error) {
	u := *b.base
	u.RawPath = escPath
	p, err := url.PathUnescape(escPath)
	if err != nil {
		return nil, &Error{Op: op, Handle: what, Reason: err.Error(), perm: true}
	}
	u.Path, u.RawQuery = p, query
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, &Error{Op: op, Handle: what, Reason: err.Error(), perm: true}
	}
	if body != nil {
		req.ContentLength = int64(len(body))
		if len(body) == 0 {
			req.Body = http.NoBody
		}
	}
	req.Header.Set("Authorization", "Bearer "+b.token)
	resp, err := b.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("vault: %s %s: %w", op, what, ctx.Err())
		}
		return nil, &Error{Op: op, Handle: what, Reason: err.Error()}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	return nil, statusError(op, what, resp.StatusCode, strings.TrimSpace(string(msg)))
}

// statusError maps a refused request to an *Error.
func statusError(op, what string, status int, reason string) *Error {
	e := &Error{Op: op, Handle: what, Status: status, Reason: reason, perm: true}
	switch status {
	case http.StatusNotFound:
		e.err = backend.ErrNotExist
	case http.StatusConflict:
		e.err = backend.ErrExists
	case http.StatusForbidden:
		e.err = backend.ErrForbidden
	case http.StatusRequestedRangeNotSatisfiable:
		e.err = io.ErrUnexpectedEOF
	case http.StatusUnauthorized:
		e.err, e.Reason = ErrTokenRejected, ErrTokenRejected.Error()
	case http.StatusBadRequest:
		if strings.Contains(reason, "invalid object name") {
			e.err = backend.ErrInvalidName
		}
	case http.StatusTooManyRequests:
		e.perm = false
	default:
		e.perm = status < 500 || status == http.StatusInsufficientStorage || status == http.StatusNotImplemented
	}
	return e
}

// check validates h and ctx before op.
func check(ctx context.Context, op string, h backend.Handle) error {
	if err := h.Validate(); err != nil {
		return fmt.Errorf("vault: %s %s: %w", op, h, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("vault: %s %s: %w", op, h, err)
	}
	return nil
}

func (b *Backend) createRepo(ctx context.Context) error {
	resp, err := b.request(ctx, http.MethodPost, "/"+url.PathEscape(b.name), "", nil, "create repository", b.name)
	if err != nil {
		return err
	}
	return drain(resp)
}

func drain(resp *http.Response) error {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	return resp.Body.Close()
}

// Save stores data under h; see backend.Backend.
func (b *Backend) Save(ctx context.Context, h backend.Handle, data []byte) error {
	return b.put(ctx, "save", h, data, "")
}

// Replace overwrites h; see backend.Backend. Append-only tokens get
// ErrForbidden.
func (b *Backend) Replace(ctx context.Context, h backend.Handle, data []byte) error {
	return b.put(ctx, "replace", h, data, "replace=1")
}

func (b *Backend) put(ctx context.Context, op string, h backend.Handle, data []byte, query string) error {
	if err := check(ctx, op, h); err != nil {
		return err
	}
	if data == nil {
		data = []byte{}
	}
	resp, err := b.request(ctx, http.MethodPut, objectPath(b.name, h), query, data, op, h.String())
	if err != nil {
		return err
	}
	return drain(resp)
}

// Load returns a range of h; see backend.Backend.
func (b *Backend) Load(ctx context.Context, h backend.Handle, offset int64, length int) ([]byte, error) {
	if err := check(ctx, "load", h); err != nil {
		return nil, err
	}
	if offset < 0 || length < 0 {
		return nil, fmt.Errorf("vault: load %s: invalid range: offset %d, length %d", h, offset, length)
	}
	q := ""
	if offset != 0 || length != 0 {
		q = "offset=" + strconv.FormatInt(offset, 10) + "&length=" + strconv.Itoa(length)
	}
	resp, err := b.request(ctx, http.MethodGet, objectPath(b.name, h), q, nil, "load", h.String())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.ContentLength < 0 || (length > 0 && resp.ContentLength != int64(length)) {
		return nil, &Error{Op: "load", Handle: h.String(), Reason: fmt.Sprintf("vault answered %d bytes for a %d-byte range", resp.ContentLength, length), perm: true}
	}
	buf := make([]byte, resp.ContentLength)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("vault: load %s: %w", h, ctx.Err())
		}
		// A cut connection: transient, and never short data.
		return nil, &Error{Op: "load", Handle: h.String(), Reason: "connection lost while reading: " + err.Error()}
	}
	return buf, nil
}

// Stat returns h's size; see backend.Backend.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	if err := check(ctx, "stat", h); err != nil {
		return backend.FileInfo{}, err
	}
	resp, err := b.request(ctx, http.MethodHead, objectPath(b.name, h), "", nil, "stat", h.String())
	if err != nil {
		return backend.FileInfo{}, err
	}
	resp.Body.Close()
	n, err := strconv.ParseInt(resp.Header.Get("X-Object-Size"), 10, 64)
	if err != nil || n < 0 {
		return backend.FileInfo{}, &Error{Op: "stat", Handle: h.String(), Reason: "vault sent no valid X-Object-Size", perm: true}
	}
	return backend.FileInfo{Name: h.Name, Size: n}, nil
}

// Remove deletes h; see backend.Backend. Append-only tokens get
// ErrForbidden except for their own locks.
func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	if err := check(ctx, "remove", h); err != nil {
		return err
	}
	resp, err := b.request(ctx, http.MethodDelete, objectPath(b.name, h), "", nil, "remove", h.String())
	if err != nil {
		return err
	}
	return drain(resp)
}

// listEntry is one line of a list response.
type listEntry struct {
	Name *string `json:"name"`
	Size int64   `json:"size"`
	End  bool    `json:"end"`
}

// List reports the objects of type t; see backend.Backend.
func (b *Backend) List(ctx context.Context, t backend.Type, fn func(backend.FileInfo) error) error {
	if !t.Valid() {
		return fmt.Errorf("vault: list %q: %w", string(t), backend.ErrInvalidName)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("vault: list %s: %w", t, err)
	}
	esc := "/" + url.PathEscape(b.name) + "/" + url.PathEscape(string(t)) + "/"
	resp, err := b.request(ctx, http.MethodGet, esc, "", nil, "list", string(t))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e listEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return &Error{Op: "list", Handle: string(t), Reason: "malformed list line: " + err.Error(), perm: true}
		}
		if e.End {
			return nil
		}
		if e.Name == nil {
			return &Error{Op: "list", Handle: string(t), Reason: "list line without a name", perm: true}
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("vault: list %s: %w", t, err)
		}
		if err := fn(backend.FileInfo{Name: *e.Name, Size: e.Size}); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("vault: list %s: %w", t, ctx.Err())
	}
	reason := "list ended early (connection lost or vault failed)"
	if err := sc.Err(); err != nil {
		reason += ": " + err.Error()
	}
	return &Error{Op: "list", Handle: string(t), Reason: reason}
}
