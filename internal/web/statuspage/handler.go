package statuspage

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/monitor"
)

// Source gives the pages' data (monitor.Service).
type Source interface {
	PageNames() []string
	Page(ctx context.Context, name string) (*monitor.PageData, error)
}

// CacheFor is how long a page's data is reused: anonymous visitors, however
// many, cost at most one build of each page per period.
const CacheFor = 5 * time.Second

// cache holds each page's data for CacheFor.
type cache struct {
	mu    sync.Mutex
	pages map[string]cached
}

type cached struct {
	at time.Time
	pd *monitor.PageData
}

func (c *cache) page(ctx context.Context, src Source, name string) (*monitor.PageData, error) {
	c.mu.Lock()
	defer c.mu.Unlock() // one build at a time: a burst waits for it
	if e, ok := c.pages[name]; ok && time.Since(e.at) < CacheFor {
		return e.pd, nil
	}
	pd, err := src.Page(ctx, name)
	if err != nil {
		return nil, err
	}
	c.pages[name] = cached{time.Now(), pd}
	return pd, nil
}

// Handler serves the pages live under prefix (e.g. "/status"): prefix is
// the page "main", prefix/NAME the others, each with status.json beside
// it, and prefix/status.css. No login: these are public, so each page's
// data is built at most once every CacheFor.
func Handler(prefix string, src Source) http.Handler {
	css := CSS()
	pages := &cache{pages: map[string]cached{}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		rest := strings.Trim(strings.TrimPrefix(r.URL.Path, prefix), "/")
		if rest == "status.css" {
			h.Set("Content-Type", "text/css; charset=utf-8")
			w.Write(css)
			return
		}
		name, file := rest, ""
		if i := strings.LastIndexByte(rest, '/'); i >= 0 {
			name, file = rest[:i], rest[i+1:]
		} else if rest == "status.json" || rest == "index.html" {
			name, file = "", rest
		}
		if name == "" {
			name = "main"
		}
		if file != "" && file != "status.json" && file != "index.html" || strings.Contains(name, "/") {
			http.NotFound(w, r)
			return
		}
		pd, err := pages.page(r.Context(), src, name)
		if errors.Is(err, monitor.ErrNotFound) {
			http.Error(w, "no such status page", http.StatusNotFound)
			return
		}
		if err != nil {
			http.Error(w, "the status page is unavailable", http.StatusInternalServerError)
			return
		}
		if file == "status.json" {
			h.Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(pd)
			return
		}
		body, err := Render(pd, prefix+"/status.css")
		if err != nil {
			http.Error(w, "the status page is unavailable", http.StatusInternalServerError)
			return
		}
		h.Set("Content-Type", "text/html; charset=utf-8")
		w.Write(body)
	})
}

// Pages gathers every page's data from src.
func Pages(ctx context.Context, src Source) ([]*monitor.PageData, error) {
	var out []*monitor.PageData
	for _, name := range src.PageNames() {
		pd, err := src.Page(ctx, name)
		if err != nil {
			return nil, err
		}
		out = append(out, pd)
	}
	return out, nil
}
