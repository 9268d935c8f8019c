package api

import (
	"bytes"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/access"
	"github.com/bulwarkhq/bulwark/internal/report"
)

// The security-practices report. GET /api/v1/report is open to anyone
// who may read some module, and shows only the controls the caller may
// read: each control names its module (backups, continuity, guard,
// integrity, monitoring, access, audit, posture) and, for a backup
// policy's controls, the policy's tags. A control with tags needs a read
// grant matching them (a grant scoped to policy=web sees web's controls);
// one without tags needs an unscoped read grant on its module. A practice
// with no visible control is left out, and the statuses and counts are
// computed from what is shown, so nothing of a hidden control shows
// through. GET /trust is the public page of the practices chosen in
// report.publish, without any internal detail.

// TrustPage is the public page /trust.
type TrustPage struct {
	// Publish are the practice ids shown (none: 404).
	Publish []string
	// MaxAge is how long a public report is served before a new one is
	// made (default one minute): the page needs no login, so a flood of
	// requests must not become a flood of reports.
	MaxAge time.Duration

	mu  sync.Mutex
	at  time.Time
	pub *report.Public
}

// public returns the cached public report, or makes one.
func (t *TrustPage) public(r *http.Request, s *Server) (report.Public, error) {
	t.mu.Lock() // held while generating: concurrent requests wait for one report
	defer t.mu.Unlock()
	maxAge := t.MaxAge
	if maxAge <= 0 {
		maxAge = time.Minute
	}
	now := s.now()
	if t.pub != nil && now.Sub(t.at) < maxAge && !now.Before(t.at) {
		return *t.pub, nil
	}
	rep, err := s.d.Report(r.Context())
	if err != nil {
		return report.Public{}, err
	}
	pub := rep.Public(t.Publish)
	t.pub, t.at = &pub, now
	return pub, nil
}

// controlVisible says whether the caller may read a control.
func (s *Server) controlVisible(c *Call, ctl report.Control) bool {
	m, err := access.ParseModule(ctl.Module)
	if err != nil || m == access.ModuleAll {
		return false
	}
	if len(ctl.Tags) > 0 {
		return s.checkResource(c, m, access.LevelRead, ctl.Tags) == nil
	}
	return c.Principal.Authorize(s.now(), access.Request{Module: m, Level: access.LevelRead, Global: true}) == nil
}

func reportUnavailable() *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the security-practices report is not available in this server"}
}

func (s *Server) getReport(w http.ResponseWriter, r *http.Request, c *Call) error {
	if s.d.Report == nil {
		return reportUnavailable()
	}
	format := r.URL.Query().Get("format")
	if format != "" && format != "json" && format != "html" {
		return badRequest("format", "format must be json or html")
	}
	rep, err := s.d.Report(r.Context())
	if err != nil {
		return err
	}
	rep = rep.Filter(func(ctl report.Control) bool { return s.controlVisible(c, ctl) })
	if len(rep.Practices) == 0 {
		rep.Host = "" // nothing to show: not even where
	}
	if format == "html" {
		var b bytes.Buffer
		if err := report.RenderHTML(&b, rep, report.HTMLOptions{}); err != nil {
			return err
		}
		writeHTML(w, b.Bytes())
		return nil
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

func (s *Server) trust(w http.ResponseWriter, r *http.Request, _ *Call) error {
	t := s.d.Trust
	if t == nil || len(t.Publish) == 0 {
		return &Error{Status: http.StatusNotFound, Code: "not_found", Message: "no practice is published (report.publish)"}
	}
	if s.d.Report == nil {
		return reportUnavailable()
	}
	pub, err := t.public(r, s)
	if err != nil {
		return err
	}
	w.Header().Set("Vary", "Accept")
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		w.Header().Set("Cache-Control", "public, max-age=60")
		writeJSON(w, http.StatusOK, pub)
		return nil
	}
	var b bytes.Buffer
	if err := report.RenderPublicHTML(&b, pub, report.HTMLOptions{}); err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "public, max-age=60")
	writeHTML(w, b.Bytes())
	return nil
}

// writeHTML sends a report page under the report's strict CSP.
func writeHTML(w http.ResponseWriter, page []byte) {
	w.Header().Set("Content-Security-Policy", report.CSP())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(page)
}
