package vault

// Status pages. A Bulwark control plane pushes its exported status pages
// (internal/web/statuspage) to the vault, which serves them to anyone, so
// the page stays up while the control plane, or its whole host, is down:
// the vault runs elsewhere by design.
//
//	GET  /_status/[PATH]   public, no token: the file (PATH "" or a
//	                       directory is its index.html)
//	PUT  /_status/PATH     a status or full token (not one limited to a
//	                       repository): store the file, replacing it
//
// PATH is at most two segments of letters, digits, '.', '_' and '-' (no
// dot segments), ending in .html, .css or .json: the export's layout, and
// nothing a browser would run as anything but a page, a stylesheet or
// data. A file is at most MaxStatusFile bytes and the whole set at most
// MaxStatusFiles files; each is written to a temporary file and renamed
// into place, so a reader never gets half a page. Pages are sent with a
// Content-Security-Policy that allows nothing but the stylesheet.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/signkey"
)

// StatusPrefix is the URL path under which status pages live.
const StatusPrefix = "/_status/"

// Bounds of the status pages a vault keeps.
const (
	MaxStatusFile  = 1 << 20
	MaxStatusFiles = 256
)

// ModeStatus may only publish status pages.
const ModeStatus Mode = "status"

var statusSegment = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

var statusTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".json": "application/json",
}

// statusPath checks a path below StatusPrefix; "" and names ending in "/"
// mean that directory's index.html.
func statusPath(rel string) (string, error) {
	if rel == "" || strings.HasSuffix(rel, "/") {
		rel += "index.html"
	}
	segs := strings.Split(rel, "/")
	if len(segs) > 2 {
		return "", errors.New("status path: at most DIR/FILE")
	}
	for _, s := range segs {
		if !statusSegment.MatchString(s) || s == "." || s == ".." || strings.Contains(s, "..") {
			return "", fmt.Errorf("status path: %q is not a file name of letters, digits, '.', '_' and '-'", s)
		}
	}
	if _, ok := statusTypes[path.Ext(rel)]; !ok {
		return "", errors.New("status path: only .html, .css and .json files")
	}
	return rel, nil
}

func (s *Server) statusDir() string { return filepath.Join(s.data, "status") }

// serveStatus handles every request below StatusPrefix.
func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request) {
	rp := reply{w: w, r: r}
	rel, err := statusPath(strings.TrimPrefix(r.URL.Path, StatusPrefix))
	if err != nil {
		s.refuse(rp, http.StatusBadRequest, err.Error())
		return
	}
	file := filepath.Join(s.statusDir(), filepath.FromSlash(rel))
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		f, err := os.Open(file)
		if errors.Is(err, fs.ErrNotExist) {
			http.Error(w, "no such status page", http.StatusNotFound)
			return
		}
		if err != nil {
			s.refuse(rp, http.StatusInternalServerError, err.Error())
			return
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			http.Error(w, "no such status page", http.StatusNotFound)
			return
		}
		h.Set("Content-Type", statusTypes[path.Ext(rel)])
		http.ServeContent(w, r, "", fi.ModTime(), f)
	case http.MethodPut:
		tok, ok := s.authorise(rp)
		if !ok {
			return
		}
		if tok.Mode != ModeStatus && (tok.Mode != ModeFull || tok.Repo != "") {
			s.refuse(rp, http.StatusForbidden, fmt.Sprintf("token %q may not publish status pages: add one with `bulwark vault token add NAME --status`", tok.Name))
			return
		}
		if r.ContentLength < 0 {
			s.refuse(rp, http.StatusLengthRequired, "PUT needs a Content-Length")
			return
		}
		if r.ContentLength > MaxStatusFile {
			s.refuse(rp, http.StatusRequestEntityTooLarge, fmt.Sprintf("a status file is at most %d bytes", MaxStatusFile))
			return
		}
		if err := s.putStatus(file, r.Body, r.ContentLength); err != nil {
			status := http.StatusInternalServerError
			if errors.Is(err, errStatusFull) {
				status = http.StatusInsufficientStorage
			}
			s.refuse(rp, status, err.Error())
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT")
		s.refuse(rp, http.StatusMethodNotAllowed, "status pages take GET, HEAD and PUT")
	}
}

var errStatusFull = fmt.Errorf("the vault keeps at most %d status files", MaxStatusFiles)

// putStatus writes a status file atomically.
func (s *Server) putStatus(file string, body io.Reader, n int64) error {
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
		count := 0
		filepath.WalkDir(s.statusDir(), func(_ string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				count++
			}
			return nil
		})
		if count >= MaxStatusFiles {
			return errStatusFull
		}
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	err := signkey.WriteAtomic(file, 0o644, func(w io.Writer) error {
		written, err := io.Copy(w, io.LimitReader(body, MaxStatusFile+1))
		if err == nil && written != n {
			err = fmt.Errorf("the body has %d bytes, Content-Length says %d", written, n)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("store status file: %w", err)
	}
	return nil
}
