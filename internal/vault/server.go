package vault

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/local"
)

// MaxObjectSize is the default largest object a PUT may carry: a 16 MiB
// pack plus its header, or its parity, with room to spare.
const MaxObjectSize = 24 << 20

// Options configure a Server.
type Options struct {
	// Data is the vault's data directory (see the package documentation).
	Data string
	// Log receives refused requests as JSON lines; nil discards them.
	Log io.Writer
	// Now is the clock for snapshot receipts (default time.Now).
	Now func() time.Time
	// MaxObjectSize bounds a PUT body (default MaxObjectSize).
	MaxObjectSize int64
	// MaxUploads bounds the uploads written at once (default 8); each
	// holds one 1 MiB buffer and a temporary file.
	MaxUploads int
}

// Server serves the vault's repositories. It is an http.Handler; Serve
// runs it over TLS.
type Server struct {
	data    string
	log     *slog.Logger
	now     func() time.Time
	maxSize int64
	uploads chan struct{}

	tokMu sync.Mutex
	toks  tokenCache

	reposMu sync.Mutex
	repos   map[string]*repoState

	usageMu sync.Mutex
	usage   map[string]*tokenUsage // by token hash, loaded lazily (usage.go)

	statusMu sync.Mutex // serialises status page writes (status.go)
}

// repoState is one open repository.
type repoState struct {
	name  string
	dir   string // DATA/repos/NAME
	be    *local.Backend
	meta  string // DATA/meta/NAME
	recMu sync.Mutex
}

// New opens the vault in o.Data, creating its directories, and removes
// temporary files that writes interrupted more than an hour ago left in
// its repositories.
func New(o Options) (*Server, error) {
	if o.Data == "" {
		return nil, errors.New("vault: no data directory")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxObjectSize <= 0 {
		o.MaxObjectSize = MaxObjectSize
	}
	if o.MaxUploads <= 0 {
		o.MaxUploads = 8
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	for _, d := range []string{o.Data, filepath.Join(o.Data, "repos"), filepath.Join(o.Data, "meta"), filepath.Join(o.Data, "usage")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("vault %s: %w", o.Data, err)
		}
	}
	s := &Server{
		data: o.Data, now: o.Now, maxSize: o.MaxObjectSize,
		log:     slog.New(slog.NewJSONHandler(o.Log, nil)),
		uploads: make(chan struct{}, o.MaxUploads),
		toks:    tokenCache{data: o.Data},
		repos:   map[string]*repoState{}, usage: map[string]*tokenUsage{},
	}
	// Usage files are rewritten through temporary files; a crash may have
	// left some behind, and no write is in flight before New returns.
	if tmps, err := filepath.Glob(filepath.Join(o.Data, "usage", ".tmp-*")); err == nil {
		for _, p := range tmps {
			_ = os.Remove(p)
		}
	}
	names, err := os.ReadDir(filepath.Join(o.Data, "repos"))
	if err != nil {
		return nil, fmt.Errorf("vault %s: %w", o.Data, err)
	}
	for _, e := range names {
		if !e.IsDir() || !ValidRepoName(e.Name()) {
			continue
		}
		rs, err := s.repo(e.Name(), false)
		if err != nil {
			return nil, err
		}
		if _, err := rs.be.CleanTemp(context.Background(), time.Hour); err != nil {
			return nil, fmt.Errorf("vault: repository %s: %w", e.Name(), err)
		}
	}
	return s, nil
}

// TLSConfig returns the vault's TLS configuration: the certificate pair,
// TLS 1.2 or later only. Go negotiates TLS 1.3 with every client that has
// it (bulwark does) and, on CPUs with AES instructions on both ends,
// AES-128-GCM, which costs little next to the disk.
func TLSConfig(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("vault: TLS certificate: %w", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
}

// HTTPServer returns an http.Server that serves s over TLS only; call its
// ServeTLS(ln, "", "") (Serve does).
func (s *Server) HTTPServer(cfg *tls.Config) *http.Server {
	return &http.Server{
		Handler:           s,
		TLSConfig:         cfg,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// Serve serves HTTPS on ln until ctx is done, then shuts down gracefully
// (up to 30 s for uploads in flight) and records exact usage (Close).
// Plain HTTP is never served.
func (s *Server) Serve(ctx context.Context, ln net.Listener, certFile, keyFile string) error {
	cfg, err := TLSConfig(certFile, keyFile)
	if err != nil {
		return err
	}
	hs := s.HTTPServer(cfg)
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if hs.Shutdown(sctx) != nil {
				hs.Close()
			}
		case <-done:
		}
	}()
	err = hs.ServeTLS(ln, "", "")
	close(done)
	if errors.Is(err, http.ErrServerClosed) {
		// Shutdown returned: nothing is in flight unless it timed out, and
		// Close leaves the bounds of unfinished uploads alone.
		return s.Close()
	}
	return err
}

// errNoRepo: the repository does not exist.
var errNoRepo = errors.New("no such repository")

// repo returns repository name, opening it on first use; create makes it
// if it is missing.
func (s *Server) repo(name string, create bool) (*repoState, error) {
	s.reposMu.Lock()
	defer s.reposMu.Unlock()
	if rs := s.repos[name]; rs != nil {
		return rs, nil
	}
	dir := filepath.Join(s.data, "repos", name)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) && !create {
		return nil, errNoRepo
	}
	// Create only adds what is missing from an existing layout, and a
	// repository the vault made has no config until the client's init
	// saves it, so local.Open (which wants one) does not fit.
	be, err := local.Create(dir)
	if err != nil {
		return nil, err
	}
	meta := filepath.Join(s.data, "meta", name)
	if err := os.MkdirAll(filepath.Join(meta, "lockowners"), 0o700); err != nil {
		return nil, err
	}
	rs := &repoState{name: name, dir: dir, be: be, meta: meta}
	s.repos[name] = rs
	return rs, nil
}

// reply is a request's outcome, for the response and the log.
type reply struct {
	w   http.ResponseWriter
	r   *http.Request
	tok string // token name
}

// refuse answers with status and reason, and logs the refusal.
func (s *Server) refuse(rp reply, status int, reason string) {
	if status != http.StatusNotFound && status != http.StatusRequestedRangeNotSatisfiable {
		level := slog.LevelWarn
		if status >= 500 {
			level = slog.LevelError
		}
		s.log.LogAttrs(rp.r.Context(), level, "refused",
			slog.String("remote", rp.r.RemoteAddr), slog.String("token", rp.tok),
			slog.String("method", rp.r.Method), slog.String("path", rp.r.URL.EscapedPath()),
			slog.Int("status", status), slog.String("reason", reason))
	}
	rp.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rp.w.Header().Set("X-Content-Type-Options", "nosniff")
	rp.w.WriteHeader(status)
	_, _ = io.WriteString(rp.w, reason+"\n")
}

// ServeHTTP implements the API in the package documentation.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, StatusPrefix) {
		s.serveStatus(w, r) // public pages (status.go)
		return
	}
	rp := reply{w: w, r: r}
	tok, ok := s.authorise(rp)
	if !ok {
		return
	}
	rp.tok = tok.Name
	if tok.Mode == ModeStatus {
		s.refuse(rp, http.StatusForbidden, fmt.Sprintf("token %q may only publish status pages", tok.Name))
		return
	}
	rt, err := ParsePath(r.URL.EscapedPath())
	if err != nil {
		s.refuse(rp, http.StatusBadRequest, err.Error())
		return
	}
	if tok.Repo != "" && tok.Repo != rt.Repo {
		s.refuse(rp, http.StatusForbidden, fmt.Sprintf("token %q is limited to repository %q", tok.Name, tok.Repo))
		return
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		s.refuse(rp, http.StatusBadRequest, "malformed query: "+err.Error())
		return
	}
	switch rt.Kind {
	case KindRepo:
		if r.Method != http.MethodPost {
			s.refuse(rp, http.StatusMethodNotAllowed, "use POST /NAME to create a repository")
			return
		}
		s.createRepo(rp, rt)
		return
	case KindList:
		if r.Method != http.MethodGet {
			s.refuse(rp, http.StatusMethodNotAllowed, "use GET to list")
			return
		}
	}
	if !queryOnly(q, allowedQuery(r.Method)...) {
		s.refuse(rp, http.StatusBadRequest, fmt.Sprintf("query parameters %q not allowed for %s", r.URL.RawQuery, r.Method))
		return
	}
	rs, err := s.repo(rt.Repo, false)
	if errors.Is(err, errNoRepo) {
		s.refuse(rp, http.StatusNotFound, fmt.Sprintf("no repository %q on this vault (create it with `bulwark repo init`)", rt.Repo))
		return
	}
	if err != nil {
		s.refuse(rp, http.StatusInternalServerError, err.Error())
		return
	}
	if rt.Kind == KindList {
		s.list(rp, rs, rt.Handle.Type)
		return
	}
	switch r.Method {
	case http.MethodGet:
		s.get(rp, rs, rt.Handle, q)
	case http.MethodHead:
		s.head(rp, rs, rt.Handle)
	case http.MethodPut:
		s.put(rp, rs, tok, rt.Handle, q.Get("replace") != "")
	case http.MethodDelete:
		s.remove(rp, rs, tok, rt.Handle)
	default:
		s.refuse(rp, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed")
	}
}

// authorise finds the request's token; it answers the request itself and
// returns false when there is none or it is unknown.
func (s *Server) authorise(rp reply) (Token, bool) {
	secret, ok := strings.CutPrefix(rp.r.Header.Get("Authorization"), "Bearer ")
	if !ok || secret == "" {
		s.refuse(rp, http.StatusUnauthorized, "no token: send Authorization: Bearer TOKEN")
		return Token{}, false
	}
	s.tokMu.Lock()
	tok, found, err := s.toks.lookup(secret)
	s.tokMu.Unlock()
	if err != nil {
		s.refuse(rp, http.StatusInternalServerError, "token store: "+err.Error())
		return Token{}, false
	}
	if !found {
		s.refuse(rp, http.StatusUnauthorized, "token rejected (revoked or wrong)")
		return Token{}, false
	}
	return tok, true
}

func allowedQuery(method string) []string {
	switch method {
	case http.MethodGet:
		return []string{"offset", "length"}
	case http.MethodPut:
		return []string{"replace"}
	}
	return nil
}

// queryOnly reports whether q has only keys from allowed, each once.
func queryOnly(q url.Values, allowed ...string) bool {
	for k, v := range q {
		ok := len(v) == 1
		if ok {
			ok = false
			for _, a := range allowed {
				ok = ok || k == a
			}
		}
		if !ok {
			return false
		}
	}
	if v, ok := q["replace"]; ok && v[0] != "1" {
		return false
	}
	return true
}

func (s *Server) createRepo(rp reply, rt Route) {
	dir := filepath.Join(s.data, "repos", rt.Repo)
	_, statErr := os.Stat(dir)
	if _, err := s.repo(rt.Repo, true); err != nil {
		s.refuse(rp, storageStatus(err), fmt.Sprintf("create repository %q: %v", rt.Repo, err))
		return
	}
	if statErr == nil {
		rp.w.WriteHeader(http.StatusOK)
		return
	}
	rp.w.WriteHeader(http.StatusCreated)
}

// storageStatus maps a storage error to a status: 507 for a full disk.
func storageStatus(err error) int {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return http.StatusInsufficientStorage
	}
	return http.StatusInternalServerError
}

// listEnd ends every list response, so that a client can tell a complete
// list from one cut short by a failure after the status was sent.
const listEnd = `{"end":true}`

// ListEntry is one line of a list response.
type ListEntry struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	End  bool   `json:"end,omitempty"`
}

func (s *Server) list(rp reply, rs *repoState, t backend.Type) {
	rp.w.Header().Set("Content-Type", "application/x-ndjson")
	bw := &bytes.Buffer{}
	enc := json.NewEncoder(bw)
	started := false
	flush := func() error {
		if !started {
			rp.w.WriteHeader(http.StatusOK)
			started = true
		}
		_, err := rp.w.Write(bw.Bytes())
		bw.Reset()
		return err
	}
	err := rs.be.List(rp.r.Context(), t, func(fi backend.FileInfo) error {
		if err := enc.Encode(ListEntry{Name: fi.Name, Size: fi.Size}); err != nil {
			return err
		}
		if bw.Len() >= 32<<10 {
			return flush()
		}
		return nil
	})
	if err != nil {
		if !started {
			s.refuse(rp, storageStatus(err), fmt.Sprintf("list %s: %v", t, err))
		} else {
			s.log.Error("list failed after the response started", "path", rp.r.URL.EscapedPath(), "err", err.Error())
		}
		return // no end marker: the client sees an incomplete list
	}
	bw.WriteString(listEnd + "\n")
	_ = flush()
}

func (s *Server) head(rp reply, rs *repoState, h backend.Handle) {
	fi, err := rs.be.Stat(rp.r.Context(), h)
	if err != nil {
		s.objectError(rp, "stat", h, err)
		return
	}
	rp.w.Header().Set("X-Object-Size", strconv.FormatInt(fi.Size, 10))
	rp.w.Header().Set("Content-Length", strconv.FormatInt(fi.Size, 10))
	rp.w.WriteHeader(http.StatusOK)
}

func (s *Server) objectError(rp reply, op string, h backend.Handle, err error) {
	switch {
	case errors.Is(err, backend.ErrNotExist):
		s.refuse(rp, http.StatusNotFound, fmt.Sprintf("%s %s: no such object", op, h))
	case errors.Is(err, backend.ErrExists):
		s.refuse(rp, http.StatusConflict, fmt.Sprintf("%s %s: object already exists and is never overwritten", op, h))
	case errors.Is(err, io.ErrUnexpectedEOF):
		s.refuse(rp, http.StatusRequestedRangeNotSatisfiable, fmt.Sprintf("%s %s: %v", op, h, err))
	case errors.Is(err, backend.ErrInvalidName):
		s.refuse(rp, http.StatusBadRequest, err.Error())
	default:
		st := storageStatus(err)
		reason := fmt.Sprintf("%s %s: %v", op, h, err)
		if st == http.StatusInsufficientStorage {
			reason = fmt.Sprintf("%s %s: the vault's disk is full", op, h)
		}
		s.refuse(rp, st, reason)
	}
}

func (s *Server) get(rp reply, rs *repoState, h backend.Handle, q url.Values) {
	var off int64
	var length int
	var err error
	if v := q.Get("offset"); v != "" {
		if off, err = strconv.ParseInt(v, 10, 64); err != nil || off < 0 {
			s.refuse(rp, http.StatusBadRequest, fmt.Sprintf("offset %q: want a non-negative integer", v))
			return
		}
	}
	if v := q.Get("length"); v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 0 {
			s.refuse(rp, http.StatusBadRequest, fmt.Sprintf("length %q: want a non-negative integer", v))
			return
		}
		length = int(n)
	}
	data, err := rs.be.Load(rp.r.Context(), h, off, length)
	if err != nil {
		s.objectError(rp, "load", h, err)
		return
	}
	rp.w.Header().Set("Content-Type", "application/octet-stream")
	rp.w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	rp.w.WriteHeader(http.StatusOK)
	_, _ = rp.w.Write(data)
}

// contentAddressed reports whether objects of type t are named by the
// SHA-256 of their bytes (as the repository writes them).
func contentAddressed(t backend.Type) bool {
	switch t {
	case backend.PackFile, backend.IndexFile, backend.SnapshotFile, backend.KeyFile, backend.LockFile:
		return true
	}
	return false
}

func (s *Server) put(rp reply, rs *repoState, tok Token, h backend.Handle, replace bool) {
	r := rp.r
	ctx := r.Context()
	if replace && tok.Mode != ModeFull {
		s.refuse(rp, http.StatusForbidden, fmt.Sprintf("replace %s: token %q is append-only: it may add objects but never overwrite them", h, tok.Name))
		return
	}
	if r.ContentLength < 0 {
		s.refuse(rp, http.StatusLengthRequired, "PUT needs a Content-Length")
		return
	}
	n := r.ContentLength
	if n > s.maxSize {
		s.refuse(rp, http.StatusRequestEntityTooLarge, fmt.Sprintf("%s: %d bytes is more than the vault's limit of %d per object", h, n, s.maxSize))
		return
	}
	if !replace {
		if _, err := rs.be.Stat(ctx, h); err == nil {
			s.refuse(rp, http.StatusConflict, fmt.Sprintf("save %s: object already exists and is never overwritten", h))
			return
		} else if !errors.Is(err, backend.ErrNotExist) {
			s.objectError(rp, "save", h, err)
			return
		}
	}
	switch err := s.reserve(tok, n); {
	case errors.Is(err, errQuota):
		s.refuse(rp, http.StatusInsufficientStorage, fmt.Sprintf("save %s: token %q would exceed its quota of %d bytes", h, tok.Name, tok.Quota))
		return
	case err != nil:
		s.objectError(rp, "save", h, fmt.Errorf("quota accounting: %w", err))
		return
	}
	stored := false
	defer func() { s.release(tok, n, stored) }()
	select {
	case s.uploads <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-s.uploads }()
	checkName := tok.Mode != ModeFull && contentAddressed(h.Type)
	err := storeObject(ctx, rs, h, http.MaxBytesReader(rp.w, r.Body, n), n, checkName, replace)
	var mismatch *hashMismatchError
	switch {
	case errors.Is(err, errShortBody):
		s.refuse(rp, http.StatusBadRequest, fmt.Sprintf("save %s: %v; nothing stored", h, err))
		return
	case errors.As(err, &mismatch):
		s.refuse(rp, http.StatusUnprocessableEntity, fmt.Sprintf("save %s: %v; nothing stored", h, err))
		return
	case err != nil:
		s.objectError(rp, "save", h, err)
		return
	}
	stored = true
	switch h.Type {
	case backend.SnapshotFile:
		if err := s.recordReceipt(rs, h.Name, tok.Name); err != nil {
			// The snapshot is stored; without its receipt, retention falls
			// back to the file's time, which the vault also set.
			s.log.Error("snapshot receipt not recorded", "repo", rs.name, "snapshot", h.Name, "err", err.Error())
		}
	case backend.LockFile:
		if err := os.WriteFile(filepath.Join(rs.meta, "lockowners", h.Name), []byte(tok.Name), 0o600); err != nil {
			s.log.Error("lock owner not recorded", "repo", rs.name, "lock", h.Name, "err", err.Error())
		}
	}
	if replace {
		rp.w.WriteHeader(http.StatusOK)
		return
	}
	rp.w.WriteHeader(http.StatusCreated)
}

func (s *Server) remove(rp reply, rs *repoState, tok Token, h backend.Handle) {
	owner := filepath.Join(rs.meta, "lockowners", h.Name)
	if tok.Mode != ModeFull {
		ok := false
		if h.Type == backend.LockFile {
			b, err := os.ReadFile(owner)
			ok = err == nil && string(b) == tok.Name
		}
		if !ok {
			reason := fmt.Sprintf("remove %s: token %q is append-only: it may add objects but never delete them (only its own locks); forget and prune need a full-access token", h, tok.Name)
			s.refuse(rp, http.StatusForbidden, reason)
			return
		}
	}
	if err := rs.be.Remove(rp.r.Context(), h); err != nil {
		s.objectError(rp, "remove", h, err)
		return
	}
	if h.Type == backend.LockFile {
		_ = os.Remove(owner)
	}
	rp.w.WriteHeader(http.StatusNoContent)
}
