package console

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"
	"time"
)

// pageTemplate is one page: the layout and the page's own templates.
type pageTemplate struct {
	t *template.Template
}

// view is what every page template receives.
type view struct {
	Title string
	// Page names the page (its nav entry is marked current).
	Page    string
	Site    string
	S       *session
	Notice  *notice
	Now     time.Time
	Data    any
	Nav     []navItem
	Partial bool
}

type navItem struct {
	Name, Path, Label string
}

// nav lists the console's pages with the module a user must be able to
// read to see each (empty: everyone signed in).
var nav = []struct {
	navItem
	module string
	global bool
}{
	{navItem{"overview", "/", "Overview"}, "", false},
	{navItem{"backups", "/backups", "Backups"}, "backups", false},
	{navItem{"guard", "/guard", "Guard"}, "guard", true},
	{navItem{"integrity", "/integrity", "Integrity"}, "integrity", false},
	{navItem{"monitoring", "/monitoring", "Monitoring"}, "monitoring", true},
	{navItem{"access", "/access", "Access"}, "access", false},
	{navItem{"audit", "/audit", "Audit"}, "audit", true},
	{navItem{"events", "/events", "Events"}, "", false},
	{navItem{"report", "/report", "Report"}, "", false},
	{navItem{"account", "/account", "Account"}, "", false},
}

func (c *Console) navFor(s *session) []navItem {
	var out []navItem
	for _, n := range nav {
		if s.Me.Restricted && n.Name != "account" {
			continue
		}
		if n.module != "" {
			if n.global && !s.CanAll(n.module, "read") || !n.global && !s.Can(n.module, "read") {
				continue
			}
		}
		out = append(out, n.navItem)
	}
	return out
}

var funcs = template.FuncMap{
	"ago":      ago,
	"when":     when,
	"seconds":  func(s float64) string { return humanDuration(time.Duration(s * float64(time.Second))) },
	"join":     strings.Join,
	"path":     url.PathEscape,
	"tagsText": tagsText,
	"list":     func(v ...string) []string { return v },
	"svg":      func(s string) template.HTML { return template.HTML(s) }, // charts built by chart.go, escaped there
}

// parseTemplates parses the layout with each page's file.
func parseTemplates() map[string]*pageTemplate {
	base := template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	out := map[string]*pageTemplate{}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "layout" {
			continue
		}
		t := template.Must(template.Must(base.Clone()).ParseFS(templateFS, n))
		out[name] = &pageTemplate{t: t}
	}
	return out
}

// render writes the page (or, with ?partial=NAME on an htmx request, only
// the block NAME of it).
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, v *view) {
	securityHeaders(w, r)
	w.Header().Set("Cache-Control", "no-store")
	pt, ok := c.pages[name]
	if !ok {
		http.Error(w, "no such page template: "+name, http.StatusInternalServerError)
		return
	}
	v.Page, v.Site, v.Now = name, c.o.Title, c.o.Now()
	if v.S != nil {
		v.Nav = c.navFor(v.S)
	}
	entry := "layout"
	if p := r.URL.Query().Get("partial"); p != "" && r.Header.Get("HX-Request") == "true" && pt.t.Lookup(p) != nil && strings.HasPrefix(p, "live-") {
		entry, v.Partial = p, true
	}
	if v.Notice == nil && !v.Partial { // a refresh must not eat the notice of a redirect
		v.Notice = takeNotice(w, r)
	}
	var buf bytes.Buffer
	if err := pt.t.ExecuteTemplate(&buf, entry, v); err != nil {
		c.o.Logger.Error("console: render", "page", name, "err", err)
		http.Error(w, "the page could not be rendered; the server's log says why", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail renders an error page for err: the API's status and message when
// the API refused, 500 otherwise.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	status, msg := http.StatusInternalServerError, err.Error()
	var ae *APIError
	if errors.As(err, &ae) {
		status = ae.Status
	} else {
		c.o.Logger.Error("console", "path", r.URL.Path, "err", err)
	}
	c.render(w, r, status, "error", &view{Title: http.StatusText(status), S: s, Data: map[string]any{"Status": status, "Message": msg}})
}

// handler is a page or an action of a signed-in user.
type handler func(w http.ResponseWriter, r *http.Request, s *session) error

// page serves a GET page to a signed-in user; others go to the sign-in
// page and come back.
func (c *Console) page(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := c.session(r)
		if errors.Is(err, errNoSession) {
			if r.Header.Get("HX-Request") == "true" {
				w.Header().Set("HX-Redirect", "/login")
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if err != nil {
			c.fail(w, r, nil, err)
			return
		}
		if s.Me.Restricted && r.URL.Path != "/account" {
			http.Redirect(w, r, "/account", http.StatusSeeOther)
			return
		}
		if err := h(w, r, s); err != nil {
			c.fail(w, r, s, err)
		}
	})
}

// actionFunc does what a form asks and returns the notice to show.
type actionFunc func(r *http.Request, s *session) (string, error)

// signedPost checks a form's POST: it must come from this site, from a
// signed-in user, and carry the session's form token. It renders the
// refusal itself and returns nil then.
func (c *Console) signedPost(w http.ResponseWriter, r *http.Request) *session {
	securityHeaders(w, r)
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if !sameSite(r) {
		c.forbidden(w, r, "cross-site request refused")
		return nil
	}
	s, err := c.session(r)
	if errors.Is(err, errNoSession) {
		c.forbidden(w, r, "sign in first: this form needs a session")
		return nil
	}
	if err != nil {
		c.fail(w, r, nil, err)
		return nil
	}
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, s, &APIError{Status: http.StatusBadRequest, Message: "the form could not be read: " + err.Error()})
		return nil
	}
	if !validToken(r.PostForm.Get("csrf"), s.CSRF) {
		c.forbidden(w, r, "the form's security token is missing or does not match your session; reload the page and try again")
		return nil
	}
	if s.Me.Restricted && !strings.HasPrefix(r.URL.Path, "/account") {
		c.forbidden(w, r, "enrol a second factor first (Account page)")
		return nil
	}
	return s
}

// action serves a form's POST (see signedPost); the outcome is a notice
// and a redirect to back, or to the form's "back" field (a local path).
func (c *Console) action(back string, f actionFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := c.signedPost(w, r)
		if s == nil {
			return
		}
		to := back
		if b := r.PostForm.Get("back"); localPath(b) {
			to = b
		}
		msg, err := f(r, s)
		if err != nil {
			setNotice(w, r, true, err.Error())
		} else if msg != "" {
			setNotice(w, r, false, msg)
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
	})
}

// form serves a form's POST whose answer is a page (a secret shown once).
func (c *Console) form(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := c.signedPost(w, r)
		if s == nil {
			return
		}
		if err := h(w, r, s); err != nil {
			c.fail(w, r, s, err)
		}
	})
}

func (c *Console) forbidden(w http.ResponseWriter, r *http.Request, msg string) {
	c.render(w, r, http.StatusForbidden, "error", &view{Title: "Forbidden", Data: map[string]any{"Status": http.StatusForbidden, "Message": msg}})
}

// localPath accepts a path on this site ("/x..."): no scheme, no host, no
// "//host" or "/\host", and no control character, which browsers strip
// before following a Location ("/<TAB>/host" is "//host" to them).
func localPath(p string) bool {
	if p == "" || len(p) > 2048 || p[0] != '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return false
		}
	}
	u, err := url.Parse(p)
	return err == nil && u.Scheme == "" && u.Host == "" && u.User == nil &&
		strings.HasPrefix(u.Path, "/") && !strings.HasPrefix(u.Path, "//") && !strings.HasPrefix(p, "//")
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t)
	if d < 0 {
		return "in " + humanDuration(-d)
	}
	return humanDuration(d) + " ago"
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func humanDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.0f s", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%.0f min", d.Minutes())
	case d < 48*time.Hour:
		return fmt.Sprintf("%.1f h", d.Hours())
	}
	return fmt.Sprintf("%.0f days", math.Floor(d.Hours()/24))
}

func tagsText(tags map[string]string) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + tags[k]
	}
	return strings.Join(keys, ", ")
}
