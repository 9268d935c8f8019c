package main

// The API client behind 'login', 'user', 'role', 'grant', 'token', 'events'
// and 'me'.
//
// Credentials live in one JSON file, $BULWARK_CLI_CONFIG or
// os.UserConfigDir()/bulwark/cli.json (mode 0600 in a 0700 directory):
//
//	{"server": "https://127.0.0.1:8443", "username": "admin", "token": "...",
//	 "ca_file": "/path/ca.pem", "fingerprint": "<sha256 hex of the leaf certificate>"}
//
// The token, the CA file and the pin belong to the server they were stored
// with: a command aimed at another server (--server, BULWARK_SERVER) never
// sends them there. BULWARK_TOKEN, BULWARK_CA and BULWARK_FINGERPRINT supply
// the same for scripts and CI without a file.
//
// TLS trust, first match wins: a CA file (--ca, BULWARK_CA, the stored
// ca_file), then a pinned SHA-256 fingerprint of the server's leaf
// certificate (--fingerprint, BULWARK_FINGERPRINT, the stored pin), then the
// system's roots. A pin replaces chain and name checks on purpose: the
// default server certificate is self-signed, and the pin names exactly one
// certificate. Plain http is refused except to a loopback address with
// --insecure, so a token never crosses a network in clear.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"
)

// cliConfig is the credentials file.
type cliConfig struct {
	Server      string `json:"server,omitempty"`
	Username    string `json:"username,omitempty"`
	Token       string `json:"token,omitempty"`
	ExpiresAt   string `json:"expires_at,omitempty"`
	CAFile      string `json:"ca_file,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
}

// maxConfigBytes bounds the credentials file; a real one is a few hundred bytes.
const maxConfigBytes = 64 << 10

// cliConfigPath returns where the credentials file lives.
func cliConfigPath(e *Env) (string, error) {
	if p := e.Getenv("BULWARK_CLI_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("locate the credentials file: %w (set BULWARK_CLI_CONFIG to a file path)", err)
	}
	return filepath.Join(dir, "bulwark", "cli.json"), nil
}

// parseCLIConfig decodes the credentials file's bytes.
func parseCLIConfig(b []byte) (cliConfig, error) {
	var c cliConfig
	if len(b) > maxConfigBytes {
		return c, fmt.Errorf("larger than %d bytes; it is not a Bulwark credentials file", maxConfigBytes)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return c, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return cliConfig{}, fmt.Errorf("malformed JSON: %w", err)
	}
	if dec.More() {
		return cliConfig{}, errors.New("trailing data after the JSON object")
	}
	if c.Fingerprint != "" {
		fp, err := normalizeFingerprint(c.Fingerprint)
		if err != nil {
			return cliConfig{}, fmt.Errorf("fingerprint: %w", err)
		}
		c.Fingerprint = fp
	}
	return c, nil
}

// loadCLIConfig reads the credentials file; a missing file is an empty
// configuration. A file others may read gets a warning, as ssh does.
func loadCLIConfig(e *Env) (cliConfig, string, error) {
	path, err := cliConfigPath(e)
	if err != nil {
		return cliConfig{}, "", err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cliConfig{}, path, nil
	}
	if err != nil {
		return cliConfig{}, path, fmt.Errorf("read credentials: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(e.Stderr, "warning: %s is accessible to other users (mode %04o); run 'chmod 600 %s'\n", path, st.Mode().Perm(), path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return cliConfig{}, path, fmt.Errorf("read credentials %s: %w", path, err)
	}
	c, err := parseCLIConfig(b)
	if err != nil {
		return cliConfig{}, path, fmt.Errorf("credentials file %s: %w (fix it or delete it and run 'bulwark login')", path, err)
	}
	return c, path, nil
}

// saveCLIConfig writes the credentials file atomically with mode 0600.
func saveCLIConfig(path string, c cliConfig) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".cli-*.json")
	if err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("save credentials: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("save credentials: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save credentials: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save credentials to %s: %w", path, err)
	}
	return nil
}

// normalizeServer turns "host:port" or "https://host:port/" into a canonical
// base URL without a trailing slash.
func normalizeServer(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("empty server address")
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("server %q: %w", s, err)
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return "", fmt.Errorf("server %q: scheme must be https (or http to a loopback address with --insecure)", s)
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("server %q: no host", s)
	case u.User != nil:
		return "", fmt.Errorf("server %q: credentials do not belong in the URL; use 'bulwark login'", s)
	case u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("server %q: remove the query or fragment", s)
	}
	u.Host = strings.ToLower(u.Host)
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

// isLoopbackHost reports whether host names this machine only.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// normalizeFingerprint accepts a SHA-256 fingerprint as hex, with or without
// colons, spaces or a "sha256:" prefix (as openssl and browsers show it), and
// returns lowercase hex.
func normalizeFingerprint(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(s, "sha256:")
	s = strings.TrimPrefix(s, "sha256 fingerprint=")
	s = strings.NewReplacer(":", "", " ", "", "-", "").Replace(s)
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("%q is not a SHA-256 fingerprint: want 64 hex digits (colons allowed)", truncateRunes(s, 80))
	}
	return s, nil
}

// certFingerprint is the pin of a DER certificate, as certs.CertFingerprint
// computes it from the server's PEM file.
func certFingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// colonHex writes a fingerprint the way openssl prints one, for comparison
// by eye.
func colonHex(fp string) string {
	var b strings.Builder
	for i := 0; i+1 < len(fp); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(strings.ToUpper(fp[i : i+2]))
	}
	return b.String()
}

// ErrPinMismatch is wrapped when the server presents a certificate other
// than the pinned one.
var ErrPinMismatch = errors.New("server certificate does not match the pinned fingerprint")

// pinError carries the fingerprint the server actually presented.
type pinError struct {
	Want, Got string
}

func (e *pinError) Error() string {
	return fmt.Sprintf("%v: pinned %s, server presented %s", ErrPinMismatch, e.Want, e.Got)
}

func (e *pinError) Unwrap() error { return ErrPinMismatch }

// clientFlags are the connection flags every API command takes.
type clientFlags struct {
	server, ca, fingerprint string
	insecure                bool
	timeout                 time.Duration
}

func (f *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.server, "server", "", "server `URL` (default $BULWARK_SERVER, then the one stored by 'bulwark login')")
	fs.StringVar(&f.ca, "ca", "", "trust the CA or self-signed certificate in this PEM `FILE` (default $BULWARK_CA, then the stored one)")
	fs.StringVar(&f.fingerprint, "fingerprint", "", "trust only the server certificate with this SHA-256 `HEX` fingerprint (default $BULWARK_FINGERPRINT, then the stored pin)")
	fs.BoolVar(&f.insecure, "insecure", false, "allow plain http:// to a loopback address (never to another host)")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "give up on a request after this `DURATION`")
}

// trust is how the client checks the server's certificate.
type trust struct {
	caFile      string
	fingerprint string
}

// apiClient talks to one server.
type apiClient struct {
	base   string
	token  string
	trust  trust
	http   *http.Client
	stderr io.Writer
	// fromFile is true when the token came from the credentials file, so a
	// 401 can suggest signing in again.
	fromFile bool
}

// resolved is the outcome of combining flags, environment and file.
type resolved struct {
	cfg           cliConfig
	path          string
	server        string
	token         string
	trust         trust
	sameAsFile    bool
	tokenFromFile bool
}

// resolve combines flags, the environment and the credentials file.
func (f *clientFlags) resolve(e *Env) (resolved, error) {
	cfg, path, err := loadCLIConfig(e)
	if err != nil {
		return resolved{}, err
	}
	r := resolved{cfg: cfg, path: path}
	server := f.server
	if server == "" {
		server = e.Getenv("BULWARK_SERVER")
	}
	if server == "" {
		server = cfg.Server
	}
	if server == "" {
		return r, usageError("no server: run 'bulwark login --server URL' first, or give --server URL or BULWARK_SERVER")
	}
	if r.server, err = normalizeServer(server); err != nil {
		return r, usageError("%v", err)
	}
	if cfg.Server != "" {
		if stored, err := normalizeServer(cfg.Server); err == nil && stored == r.server {
			r.sameAsFile = true
		}
	}
	u, _ := url.Parse(r.server)
	if u.Scheme == "http" {
		if !f.insecure {
			return r, usageError("refusing plain http to %s: the password and token would travel unencrypted; use https (add --insecure only for a loopback address)", r.server)
		}
		if !isLoopbackHost(u.Hostname()) {
			return r, usageError("refusing plain http to %s: --insecure is allowed only for a loopback address (127.0.0.1, ::1, localhost); use https", r.server)
		}
	}
	switch {
	case f.ca != "":
		r.trust.caFile = f.ca
	case f.fingerprint != "":
		if r.trust.fingerprint, err = normalizeFingerprint(f.fingerprint); err != nil {
			return r, usageError("--fingerprint: %v", err)
		}
	case e.Getenv("BULWARK_CA") != "":
		r.trust.caFile = e.Getenv("BULWARK_CA")
	case e.Getenv("BULWARK_FINGERPRINT") != "":
		if r.trust.fingerprint, err = normalizeFingerprint(e.Getenv("BULWARK_FINGERPRINT")); err != nil {
			return r, usageError("BULWARK_FINGERPRINT: %v", err)
		}
	case r.sameAsFile && cfg.CAFile != "":
		r.trust.caFile = cfg.CAFile
	case r.sameAsFile && cfg.Fingerprint != "":
		r.trust.fingerprint = cfg.Fingerprint
	}
	if t := e.Getenv("BULWARK_TOKEN"); t != "" {
		r.token = strings.TrimSpace(t)
	} else if r.sameAsFile && cfg.Token != "" {
		r.token = cfg.Token
		r.tokenFromFile = true
	}
	return r, nil
}

// newClient builds an HTTP client for the server with the given trust.
func newClient(e *Env, server string, tr trust, timeout time.Duration) (*apiClient, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case tr.caFile != "":
		pem, err := os.ReadFile(tr.caFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificate in it", tr.caFile)
		}
		tc.RootCAs = pool
	case tr.fingerprint != "":
		// The pin is checked in VerifyConnection instead of the chain: it
		// names one exact certificate, which is stronger than any CA.
		want := tr.fingerprint
		tc.InsecureSkipVerify = true
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server sent no certificate")
			}
			if got := certFingerprint(cs.PeerCertificates[0].Raw); got != want {
				return &pinError{Want: want, Got: got}
			}
			return nil
		}
	}
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	tp := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		MaxIdleConns:          2,
		IdleConnTimeout:       30 * time.Second,
	}
	return &apiClient{base: server, trust: tr, http: &http.Client{Transport: tp, Timeout: timeout,
		// A redirect could carry the bearer token to another place; the
		// API never redirects, so treat one as an error.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, stderr: e.Stderr}, nil
}

// connect resolves the settings and returns a client that has a token.
func (f *clientFlags) connect(e *Env) (*apiClient, error) {
	r, err := f.resolve(e)
	if err != nil {
		return nil, err
	}
	if r.token == "" {
		if r.cfg.Server != "" && !r.sameAsFile {
			return nil, fmt.Errorf("not signed in to %s (the stored session is for %s): run 'bulwark login --server %s' or set BULWARK_TOKEN", r.server, r.cfg.Server, r.server)
		}
		return nil, fmt.Errorf("not signed in to %s: run 'bulwark login --server %s', or set BULWARK_TOKEN", r.server, r.server)
	}
	c, err := newClient(e, r.server, r.trust, f.timeout)
	if err != nil {
		return nil, err
	}
	c.token, c.fromFile = r.token, r.tokenFromFile
	return c, nil
}

// APIError is an error answer from the server.
type APIError struct {
	Status     int
	Code       string
	Message    string
	Field      string
	RetryAfter int
}

// Error formats the answer as "HTTP 403 forbidden: message (field x)".
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d", e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, " (field %s)", e.Field)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, "; retry in %d s", e.RetryAfter)
	}
	return b.String()
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// decodeAPIError turns an error answer into an *APIError. The body comes
// from the network, so every string is cleaned of control characters before
// it can reach a terminal.
func decodeAPIError(status int, body []byte) *APIError {
	e := &APIError{Status: status}
	var env struct {
		Error *struct {
			Code       string `json:"code"`
			Message    string `json:"message"`
			Field      string `json:"field"`
			RetryAfter int    `json:"retry_after"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err == nil && env.Error != nil {
		e.Code = clean(truncateRunes(env.Error.Code, 64))
		e.Message = clean(truncateRunes(env.Error.Message, 1024))
		e.Field = clean(truncateRunes(env.Error.Field, 128))
		if env.Error.RetryAfter > 0 && env.Error.RetryAfter < 1e6 {
			e.RetryAfter = env.Error.RetryAfter
		}
		return e
	}
	// Not our API's shape (a proxy's page, say): show the status text and
	// the start of the body.
	e.Code = strings.ToLower(strings.ReplaceAll(http.StatusText(status), " ", "_"))
	if msg := strings.TrimSpace(string(body)); msg != "" {
		e.Message = clean(truncateRunes(strings.Join(strings.Fields(msg), " "), 200))
	}
	return e
}

// call sends a request and returns the raw JSON answer; when out is not nil
// the answer is also decoded into it.
func (c *apiClient) call(ctx context.Context, method, path string, q url.Values, body, out any) ([]byte, error) {
	return c.callToken(ctx, method, path, q, body, out, c.token)
}

func (c *apiClient) callToken(ctx context.Context, method, path string, q url.Values, body, out any, token string) ([]byte, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "bulwark-cli/"+version)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		ae := decodeAPIError(resp.StatusCode, b)
		if ae.Status == http.StatusUnauthorized && c.fromFile {
			return nil, fmt.Errorf("%w (the stored session may have expired: run 'bulwark login')", ae)
		}
		return nil, ae
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if out != nil && len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return b, fmt.Errorf("%s %s: unexpected answer from %s: %w", method, path, c.base, err)
		}
	}
	return b, nil
}

// transportError explains connection failures, above all certificate ones.
func (c *apiClient) transportError(err error) error {
	var pe *pinError
	var cve *tls.CertificateVerificationError
	var ue *url.Error
	switch {
	case errors.As(err, &pe):
		return fmt.Errorf("connect to %s: %w\nIf the certificate was renewed on purpose, check the new fingerprint on the server (the certificate file in DATA/tls) and run 'bulwark login --server %s --fingerprint %s'",
			c.base, pe, c.base, pe.Got)
	case errors.As(err, &cve):
		return fmt.Errorf("connect to %s: the server's certificate is not trusted (%w)\nRun 'bulwark login --server %s' with --ca FILE (the server's DATA/tls/cert.pem) or --fingerprint HEX",
			c.base, cve, c.base)
	case errors.As(err, &ue) && ue.Timeout():
		return fmt.Errorf("connect to %s: no answer in time (%w); is the server up? raise --timeout for slow links", c.base, err)
	}
	return fmt.Errorf("connect to %s: %w", c.base, err)
}

// peerFingerprint connects without verifying and returns the leaf
// certificate's fingerprint, for trust on first use. Nothing is sent.
func peerFingerprint(ctx context.Context, server string, timeout time.Duration) (string, error) {
	u, err := url.Parse(server)
	if err != nil {
		return "", err
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "443")
	}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: &tls.Config{InsecureSkipVerify: true, ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}}
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return "", fmt.Errorf("connect to %s: %w", server, err)
	}
	defer conn.Close()
	cs := conn.(*tls.Conn).ConnectionState()
	if len(cs.PeerCertificates) == 0 {
		return "", fmt.Errorf("connect to %s: server sent no certificate", server)
	}
	return certFingerprint(cs.PeerCertificates[0].Raw), nil
}

// printRaw writes the API's JSON answer as it came.
func printRaw(w io.Writer, raw []byte) error {
	raw = bytes.TrimRight(raw, "\n")
	if len(raw) == 0 {
		raw = []byte("{}")
	}
	_, err := fmt.Fprintf(w, "%s\n", raw)
	return err
}

// clean makes server-supplied text safe to print on a terminal: control
// characters (escape sequences, newlines, tabs that would break a table)
// are shown as \x.. or \u.... escapes.
func clean(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	ok := true
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r < 0x80 && unicode.IsControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

// table prints rows under a header, aligned, with every cell cleaned.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = clean(c)
			if cells[i] == "" {
				cells[i] = "-"
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// fmtTime shows a time for tables: UTC, to the minute; "-" when zero.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}

// parseExpiry reads an expiry given as a duration from now ("72h"), a date
// (00:00 UTC of that day: "2026-12-31") or an RFC 3339 time. It must lie in
// the future.
func parseExpiry(s string, now time.Time) (time.Time, error) {
	var t time.Time
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return t, fmt.Errorf("expiry %q: a duration must be positive", s)
		}
		t = now.Add(d)
	} else if v, err := time.Parse("2006-01-02", s); err == nil {
		t = v
	} else if v, err := time.Parse(time.RFC3339, s); err == nil {
		t = v
	} else {
		return t, fmt.Errorf("expiry %q: use a duration (72h, 30m), a date (2026-12-31, meaning 00:00 UTC) or an RFC 3339 time", s)
	}
	if !t.After(now) {
		return time.Time{}, fmt.Errorf("expiry %q is in the past", s)
	}
	return t.UTC(), nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// parseTags reads k=v pairs into a map.
func parseTags(list []string) (map[string]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(list))
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError("--tag %q: write key=value, e.g. --tag team=blue", kv)
		}
		m[k] = v
	}
	return m, nil
}

// flagSet reports whether the named flag was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// isTerminal reports whether r is a terminal.
func isTerminal(r any) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	// /dev/null is a character device too (cron jobs, "< /dev/null"); it
	// must not be mistaken for a person at a keyboard.
	if null, err := os.Stat(os.DevNull); err == nil && os.SameFile(st, null) {
		return false
	}
	return true
}

// lineReader reads answers line by line from standard input; one is shared
// by all prompts of a command so buffered input is not lost between them.
type lineReader struct {
	e  *Env
	br *bufio.Reader
}

func newLineReader(e *Env) *lineReader {
	return &lineReader{e: e, br: bufio.NewReader(e.Stdin)}
}

// readLine returns the next line without its line ending. It gives up when
// ctx ends (an interrupt), since a blocked read cannot be cancelled.
func (l *lineReader) readLine(ctx context.Context) (string, error) {
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := l.br.ReadString('\n')
		if err == io.EOF && s != "" {
			err = nil
		}
		ch <- res{strings.TrimRight(s, "\r\n"), err}
	}()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-ctx.Done():
		return "", &ExitError{Code: 130, Err: fmt.Errorf("interrupted (%w)", ctx.Err())}
	}
}

// prompt asks a question on stderr and reads the answer.
func (l *lineReader) prompt(ctx context.Context, question string) (string, error) {
	fmt.Fprint(l.e.Stderr, question)
	s, err := l.readLine(ctx)
	if errors.Is(err, io.EOF) {
		return "", fmt.Errorf("no answer to %q: standard input ended", strings.TrimSpace(question))
	}
	return strings.TrimSpace(s), err
}

// secret reads a secret: without echo from a terminal (stty, since the
// module does not depend on golang.org/x/term), else a plain line.
func (l *lineReader) secret(ctx context.Context, question string) (string, error) {
	f, ok := l.e.Stdin.(*os.File)
	if !ok || !isTerminal(f) {
		s, err := l.readLine(ctx)
		if errors.Is(err, io.EOF) {
			return "", errors.New("no password on standard input")
		}
		return s, err
	}
	fmt.Fprint(l.e.Stderr, question)
	off := exec.Command("stty", "-echo")
	off.Stdin = f
	if err := off.Run(); err != nil {
		fmt.Fprintln(l.e.Stderr)
		return "", fmt.Errorf("cannot turn off echo on the terminal (%w); use --password-stdin", err)
	}
	defer func() {
		on := exec.Command("stty", "echo")
		on.Stdin = f
		_ = on.Run() // best effort: nothing more can be done if it fails
		fmt.Fprintln(l.e.Stderr)
	}()
	s, err := l.readLine(ctx)
	if errors.Is(err, io.EOF) {
		return "", errors.New("no password entered")
	}
	return s, err
}

// confirm asks a yes/no question when stdin is a terminal; otherwise the
// caller must have given --yes.
func confirm(ctx context.Context, e *Env, yes bool, question string) error {
	if yes {
		return nil
	}
	if !isTerminal(e.Stdin) {
		return usageError("%s: not confirmed; add --yes (standard input is not a terminal)", question)
	}
	ans, err := newLineReader(e).prompt(ctx, question+" [y/N] ")
	if err != nil {
		return err
	}
	if a := strings.ToLower(ans); a != "y" && a != "yes" {
		return &ExitError{Code: 1, Err: errors.New("cancelled")}
	}
	return nil
}
