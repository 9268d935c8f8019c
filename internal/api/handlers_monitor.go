package api

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/monitor"
	"github.com/bulwarkhq/bulwark/internal/monitor/alert"
	"github.com/bulwarkhq/bulwark/internal/notify"
)

// Supervision (module monitoring): read for state, history, alerts and
// deliveries; operate to acknowledge, silence, post incident notes and send
// test notifications.

func (s *Server) monitorSvc() (*monitor.Service, error) {
	if s.d.Monitor == nil {
		return nil, &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "supervision is not enabled in this server (monitor.enabled in the configuration)"}
	}
	return s.d.Monitor, nil
}

func (s *Server) monitorStatus(w http.ResponseWriter, r *http.Request, c *Call) error {
	m, err := s.monitorSvc()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m.Status())
	return nil
}

// seriesValue is one current value of a derived series.
type seriesValue struct {
	Series string  `json:"series"`
	Value  float64 `json:"value"`
}

func (s *Server) monitorMetrics(w http.ResponseWriter, r *http.Request, c *Call) error {
	m, err := s.monitorSvc()
	if err != nil {
		return err
	}
	pts := m.Points()
	out := make([]seriesValue, len(pts))
	for i, p := range pts {
		out[i] = seriesValue{monitor.SeriesKey(p), p.Value}
	}
	writeJSON(w, http.StatusOK, List[seriesValue]{Items: out})
	return nil
}

// timeParam reads an RFC 3339 time or a duration back from now ("24h").
func timeParam(r *http.Request, name string, now, def time.Time) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, badRequest(name, "%s must be an RFC 3339 time (2026-11-22T10:00:00Z) or a duration back from now (24h); got %q", name, v)
}

func (s *Server) monitorHistory(w http.ResponseWriter, r *http.Request, c *Call) error {
	m, err := s.monitorSvc()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	series := q.Get("series")
	if series == "" {
		return badRequest("series", "series is required: a name (load1, filesystem_used_percent) or one series (filesystem_used_percent{device=...,fstype=...,mountpoint=\"/\"}); GET /api/v1/monitor/metrics lists them")
	}
	now := s.d.Now()
	from, err := timeParam(r, "from", now, now.Add(-24*time.Hour))
	if err != nil {
		return err
	}
	to, err := timeParam(r, "to", now, now)
	if err != nil {
		return err
	}
	if !to.After(from) {
		return badRequest("to", "to must be after from")
	}
	res := m.Resolution(from, to)
	if v := q.Get("resolution"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n != monitor.ResRaw && n != monitor.ResMinute && n != monitor.ResHour {
			return badRequest("resolution", "resolution must be 0 (every sample), 60 or 3600 seconds")
		}
		res = n
	}
	list, err := m.History().Query(r.Context(), series, from, to, res)
	if err != nil {
		return err
	}
	if list == nil {
		list = []monitor.Series{}
	}
	writeJSON(w, http.StatusOK, List[monitor.Series]{Items: list})
	return nil
}

func (s *Server) monitorCheckDays(w http.ResponseWriter, r *http.Request, c *Call) error {
	m, err := s.monitorSvc()
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if !m.HasCheck(name) {
		return &Error{Status: http.StatusNotFound, Code: "not_found", Message: "no check named " + strconv.Quote(name)}
	}
	n := monitor.UptimeDays
	if v := r.URL.Query().Get("days"); v != "" {
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 400 {
			return badRequest("days", "days must be between 1 and 400")
		}
	}
	days, err := m.History().Days(r.Context(), name, n, s.d.Now())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, List[monitor.Day]{Items: days})
	return nil
}

func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request, c *Call) error {
	m, err := s.monitorSvc()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, List[alert.Alert]{Items: m.Status().Alerts})
	return nil
}

type ackRequest struct {
	// Key is the alert's key, as listed (rule/check or rule/{labels}).
	Key string `json:"key"`
	// Comment says who is doing what about it.
	Comment string `json:"comment"`
}

func (s *Server) ackAlert(w http.ResponseWriter, r *http.Request, c *Call) error {
	m, err := s.monitorSvc()
	if err != nil {
		return err
	}
	var req ackRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Comment) == "" || len(req.Comment) > 1024 {
		return badRequest("comment", "comment is required (at most 1024 bytes): say what you are doing about it")
	}
	a, err := m.Ack(r.Context(), req.Key, "user:"+c.Principal.Username, req.Comment)
	if err != nil {
		return err
	}
	c.Resource = "alert/" + req.Key
	c.Details = map[string]any{"comment": req.Comment}
	writeJSON(w, http.StatusOK, a)
	return nil
}

func (s *Server) listSilences(w http.ResponseWriter, r *http.Request, c *Call) error {
	m, err := s.monitorSvc()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, List[alert.Silence]{Items: m.Silences()})
	return nil
}

type silenceRequest struct {
	// Rule, Check and Labels select the alerts held back; at least one.
	Rule   string            `json:"rule,omitempty"`
	Check  string            `json:"check,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
	// Start is when it begins (default now): a later start makes a
	// maintenance window.
	Start time.Time `json:"start,omitzero"`
	// Duration is how long, as a Go duration ("2h"), at most 30 days.
	Duration string `json:"duration"`
	// Reason says why.
	Reason string `json:"reason"`
}

func (s *Server) addSilence(w http.ResponseWriter, r *http.Request, c *Call) error {
	m, err := s.monitorSvc()
	if err != nil {
		return err
	}
	var req silenceRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if len(req.Labels) > 16 {
		return badRequest("labels", "at most 16 labels")
	}
	for k, v := range req.Labels {
		if len(k) > 128 || len(v) > 256 {
			return badRequest("labels", "a label name is at most 128 bytes, a value 256")
		}
	}
	if len(req.Rule) > 64 || len(req.Check) > 64 {
		return badRequest("rule", "rule and check are names of at most 64 bytes")
	}
	if req.Rule == "" && req.Check == "" && len(req.Labels) == 0 {
		return badRequest("rule", "say what to silence: a rule, a check or labels (a silence of everything is not allowed)")
	}
	d, err := time.ParseDuration(req.Duration)
	if err != nil || d <= 0 || d > 30*24*time.Hour {
		return badRequest("duration", "duration must be a positive Go duration such as 2h, at most 720h; got %q", req.Duration)
	}
	if strings.TrimSpace(req.Reason) == "" || len(req.Reason) > 1024 {
		return badRequest("reason", "reason is required (at most 1024 bytes)")
	}
	start := req.Start
	if start.IsZero() {
		start = s.d.Now()
	}
	var id [6]byte
	rand.Read(id[:])
	sl := alert.Silence{ID: hex.EncodeToString(id[:]), Rule: req.Rule, Check: req.Check, Labels: req.Labels, Start: start.UTC(), End: start.Add(d).UTC(),
		Author: "user:" + c.Principal.Username, Reason: req.Reason}
	if err := m.AddSilence(r.Context(), sl); err != nil {
		return err
	}
	c.Resource = "silence/" + sl.ID
	c.Details = map[string]any{"rule": sl.Rule, "check": sl.Check, "labels": sl.Labels, "start": sl.Start, "end": sl.End, "reason": sl.Reason}
	writeJSON(w, http.StatusCreated, sl)
	return nil
}

func (s *Server) removeSilence(w http.ResponseWriter, r *http.Request, c *Call) error {
	m, err := s.monitorSvc()
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := m.RemoveSilence(r.Context(), id); err != nil {
		return err
	}
	c.Resource = "silence/" + id
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type incidentRequest struct {
	Title  string `json:"title"`
	Body   string `json:"body"`
	Status string `json:"status"`
}

func (s *Server) addIncident(w http.ResponseWriter, r *http.Request, c *Call) error {
	m, err := s.monitorSvc()
	if err != nil {
		return err
	}
	page := r.PathValue("page")
	if !m.HasPage(page) {
		return &Error{Status: http.StatusNotFound, Code: "not_found", Message: "no status page named " + strconv.Quote(page)}
	}
	var req incidentRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if t := strings.TrimSpace(req.Title); t == "" || len(t) > 200 {
		return badRequest("title", "title is required (at most 200 bytes)")
	}
	if len(req.Body) > 8<<10 {
		return badRequest("body", "body is at most 8 KiB")
	}
	in, err := m.AddIncident(r.Context(), monitor.Incident{Page: page, Title: strings.TrimSpace(req.Title), Body: req.Body, Status: req.Status,
		Author: "user:" + c.Principal.Username, Created: s.d.Now()})
	if err != nil {
		return err
	}
	c.Resource = "status/" + page + "/incident/" + strconv.FormatInt(in.ID, 10)
	c.Details = map[string]any{"title": in.Title, "status": in.Status}
	writeJSON(w, http.StatusCreated, in)
	return nil
}

func (s *Server) notifier() (*notify.Notifier, error) {
	if s.d.Notifier == nil {
		return nil, &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "notifications are not enabled in this server (monitor.enabled in the configuration)"}
	}
	return s.d.Notifier, nil
}

// channelEvidence is one channel and its last successful delivery.
type channelEvidence struct {
	Name          string    `json:"name"`
	LastDelivered time.Time `json:"last_delivered,omitzero"`
}

func (s *Server) listChannels(w http.ResponseWriter, r *http.Request, c *Call) error {
	n, err := s.notifier()
	if err != nil {
		return err
	}
	last, err := n.LastDeliveries(r.Context())
	if err != nil {
		return err
	}
	var out []channelEvidence
	for _, name := range n.Names() {
		out = append(out, channelEvidence{Name: name, LastDelivered: last[name]})
	}
	if out == nil {
		out = []channelEvidence{}
	}
	writeJSON(w, http.StatusOK, List[channelEvidence]{Items: out})
	return nil
}

func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request, c *Call) error {
	n, err := s.notifier()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := notify.AttemptFilter{Channel: q.Get("channel"), Outcome: notify.Outcome(q.Get("outcome"))}
	if f.Outcome != notify.OutcomeAny && f.Outcome != notify.OutcomeOK && f.Outcome != notify.OutcomeFailed {
		return badRequest("outcome", "outcome must be ok or failed")
	}
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 || f.Limit > s.d.PageSizeMax {
			return badRequest("limit", "limit must be between 1 and %d", s.d.PageSizeMax)
		}
	}
	list, err := n.Attempts(r.Context(), f)
	if err != nil {
		return err
	}
	if list == nil {
		list = []notify.Attempt{}
	}
	writeJSON(w, http.StatusOK, List[notify.Attempt]{Items: list})
	return nil
}

func (s *Server) testChannel(w http.ResponseWriter, r *http.Request, c *Call) error {
	n, err := s.notifier()
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	c.Resource = "channel/" + name
	if err := n.Test(r.Context(), name); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"channel": name, "delivered": true})
	return nil
}
