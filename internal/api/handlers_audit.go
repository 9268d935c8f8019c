package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/bulwarkhq/bulwark/internal/access"
	"github.com/bulwarkhq/bulwark/internal/audit"
	"github.com/bulwarkhq/bulwark/internal/events"
)

func parseTime(q, field string) (time.Time, error) {
	if q == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, q)
	if err != nil {
		return time.Time{}, badRequest(field, "%s must be an RFC 3339 time such as 2026-01-02T15:04:05Z", field)
	}
	return t, nil
}

func (s *Server) auditFilter(r *http.Request) (audit.Filter, error) {
	q := r.URL.Query()
	var f audit.Filter
	var err error
	if f.Since, err = parseTime(q.Get("since"), "since"); err != nil {
		return f, err
	}
	if f.Until, err = parseTime(q.Get("until"), "until"); err != nil {
		return f, err
	}
	f.Actor, f.Action, f.Resource, f.Result = q.Get("actor"), q.Get("action"), q.Get("resource"), q.Get("result")
	if v := q.Get("after"); v != "" {
		if f.AfterSeq, err = strconv.ParseInt(v, 10, 64); err != nil || f.AfterSeq < 0 {
			return f, badRequest("after", "after must be a sequence number")
		}
	}
	_, f.Limit, err = s.page(r)
	return f, err
}

func (s *Server) auditQuery(w http.ResponseWriter, r *http.Request, c *Call) error {
	f, err := s.auditFilter(r)
	if err != nil {
		return err
	}
	c.Details = map[string]any{"query": r.URL.RawQuery}
	es, err := s.d.Audit.Query(r.Context(), f)
	if err != nil {
		return err
	}
	out := List[audit.Entry]{Items: es}
	if out.Items == nil {
		out.Items = []audit.Entry{}
	}
	if len(es) == f.Limit {
		out.Next = strconv.FormatInt(es[len(es)-1].Seq, 10)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) auditExport(w http.ResponseWriter, r *http.Request, c *Call) error {
	q := r.URL.Query()
	if f := q.Get("format"); f != "" && f != "jsonl" {
		return badRequest("format", "format %q is not supported; use jsonl", f)
	}
	since, err := parseTime(q.Get("since"), "since")
	if err != nil {
		return err
	}
	until, err := parseTime(q.Get("until"), "until")
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	n, err := s.d.Audit.Export(r.Context(), w, since, until)
	c.Details = map[string]any{"since": q.Get("since"), "until": q.Get("until"), "entries": n}
	if err != nil {
		// Headers are gone; the truncated stream is the signal.
		s.log.Error("audit export", "err", err)
	}
	return nil
}

func (s *Server) auditVerify(w http.ResponseWriter, r *http.Request, c *Call) error {
	rep, err := s.d.Audit.Verify(r.Context(), s.d.AuditVerifyOptions)
	if err != nil {
		return err
	}
	c.Details = map[string]any{"ok": rep.OK, "entries": rep.Entries}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

func (s *Server) auditAnchor(w http.ResponseWriter, r *http.Request, c *Call) error {
	a, err := s.d.Audit.Anchor(r.Context())
	if err != nil {
		return err
	}
	c.Details = map[string]any{"seq": a.Seq}
	writeJSON(w, http.StatusOK, a)
	return nil
}

// eventVisible applies module and tag scope to one event.
func (s *Server) eventVisible(c *Call, e events.Event) bool {
	m := access.Module(e.Module)
	if _, err := access.ParseModule(e.Module); err != nil {
		// Events of the system itself are visible to whoever may read audit.
		m = access.ModuleAudit
	}
	return s.checkResource(c, m, access.LevelRead, e.Tags) == nil
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request, c *Call) error {
	f, err := events.ParseFilter(r.URL.Query())
	if err != nil {
		return badRequest("", "%v", err)
	}
	if f.Limit > s.d.PageSizeMax {
		return badRequest("limit", "limit must be an integer from 1 to %d", s.d.PageSizeMax)
	}
	if f.Limit == 0 {
		f.Limit = min(100, s.d.PageSizeMax)
	}
	limit := f.Limit
	out := List[events.Event]{Items: []events.Event{}}
	for range 20 { // bounded: scoped callers may need several pages
		es, err := s.d.Events.Query(r.Context(), f)
		if err != nil {
			return err
		}
		for _, e := range es {
			f.AfterID = e.ID
			if s.eventVisible(c, e) {
				out.Items = append(out.Items, e)
				if len(out.Items) == limit {
					out.Next = strconv.FormatInt(e.ID, 10)
					writeJSON(w, http.StatusOK, out)
					return nil
				}
			}
		}
		if len(es) < f.Limit {
			break
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getEvent(w http.ResponseWriter, r *http.Request, c *Call) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return badRequest("id", "event id must be an integer")
	}
	e, err := s.d.Events.Get(r.Context(), id)
	if err != nil {
		return err
	}
	if !s.eventVisible(c, e) {
		return &Error{Status: http.StatusNotFound, Code: "not_found", Message: "no such event"}
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}
