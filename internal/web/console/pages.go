package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/audit"
	"github.com/bulwarkhq/bulwark/internal/continuity"
	"github.com/bulwarkhq/bulwark/internal/detect"
	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/integrity"
	"github.com/bulwarkhq/bulwark/internal/monitor"
	"github.com/bulwarkhq/bulwark/internal/monitor/alert"
	"github.com/bulwarkhq/bulwark/internal/report"
)

// part is one API read of a page: Off when the capability is not
// configured (503), Err when the API refused or failed.
type part struct {
	Off bool
	Err string
}

// get reads path into out. A page survives a part that fails: the part
// says why in place of its data.
func (c *Console) get(r *http.Request, s *session, path string, out any) part {
	err := c.call(r, s.token, http.MethodGet, path, nil, out)
	if err == nil {
		return part{}
	}
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable {
		return part{Off: true, Err: ae.Message}
	}
	return part{Err: err.Error()}
}

// ---- Overview ----

type overviewData struct {
	Report     *report.Report
	ReportPart part
	Policies   []continuity.PolicySummary
	Backups    part
	Bans       int
	Guard      part
	Integrity  integrity.Status
	IntPart    part
	Monitor    monitor.Status
	MonPart    part
	Up, Down   int
	Firing     int
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *session) error {
	d := overviewData{}
	var rep report.Report
	if d.ReportPart = c.get(r, s, "/api/v1/report", &rep); d.ReportPart.Err == "" {
		d.Report = &rep
	}
	if s.Can("backups", "read") {
		var l list[continuity.PolicySummary]
		d.Backups = c.get(r, s, "/api/v1/policies", &l)
		d.Policies = l.Items
	}
	if s.CanAll("guard", "read") {
		var l list[detect.Ban]
		d.Guard = c.get(r, s, "/api/v1/bans?limit=500", &l)
		d.Bans = len(l.Items)
	}
	if s.Can("integrity", "read") {
		d.IntPart = c.get(r, s, "/api/v1/integrity/status", &d.Integrity)
	}
	if s.CanAll("monitoring", "read") {
		d.MonPart = c.get(r, s, "/api/v1/monitor/status", &d.Monitor)
		for _, ch := range d.Monitor.Checks {
			switch ch.State {
			case "up":
				d.Up++
			case "down":
				d.Down++
			}
		}
		for _, a := range d.Monitor.Alerts {
			if a.State == alert.StateFiring {
				d.Firing++
			}
		}
	}
	c.render(w, r, http.StatusOK, "overview", &view{Title: "Overview", S: s, Data: d})
	return nil
}

// ---- Backups ----

type backupsData struct {
	Policies []policyRow
	Part     part
}

type policyRow struct {
	continuity.PolicySummary
	Tags    map[string]string
	RPO     []continuity.RPOStatus
	RPOPart part
	// Last restore test.
	LastTest *continuity.Run
	Test     *continuity.RestoreTestEvidence
	TestPart part
}

type rpoAnswer struct {
	RPOSeconds   float64                `json:"rpo_seconds"`
	Repositories []continuity.RPOStatus `json:"repositories"`
}

func (c *Console) backups(w http.ResponseWriter, r *http.Request, s *session) error {
	var l list[continuity.PolicySummary]
	d := backupsData{Part: c.get(r, s, "/api/v1/policies", &l)}
	for _, p := range l.Items {
		row := policyRow{PolicySummary: p, Tags: continuity.TagsOf(p.Name, p.Tags)}
		if p.RPOSeconds > 0 && s.CanOn("continuity", "read", row.Tags) {
			var ra rpoAnswer
			row.RPOPart = c.get(r, s, "/api/v1/policies/"+url.PathEscape(p.Name)+"/rpo", &ra)
			row.RPO = ra.Repositories
		}
		if s.CanOn("continuity", "read", row.Tags) {
			var runs list[continuity.Run]
			if row.TestPart = c.get(r, s, "/api/v1/policies/"+url.PathEscape(p.Name)+"/runs?kind=restore_test&limit=1", &runs); row.TestPart.Err == "" && len(runs.Items) > 0 {
				row.LastTest = &runs.Items[0]
				var ev continuity.RestoreTestEvidence
				if json.Unmarshal(row.LastTest.Evidence, &ev) == nil {
					row.Test = &ev
				}
			}
		}
		d.Policies = append(d.Policies, row)
	}
	c.render(w, r, http.StatusOK, "backups", &view{Title: "Backups and continuity", S: s, Data: d})
	return nil
}

type policyData struct {
	P         policyRow
	Runs      []continuity.Run
	RunsPart  part
	Snapshots []continuity.SnapshotInfo
	SnapPart  part
}

func (c *Console) policy(w http.ResponseWriter, r *http.Request, s *session) error {
	name := r.PathValue("name")
	var p continuity.PolicySummary
	if err := c.call(r, s.token, http.MethodGet, "/api/v1/policies/"+url.PathEscape(name), nil, &p); err != nil {
		return err
	}
	d := policyData{P: policyRow{PolicySummary: p, Tags: continuity.TagsOf(p.Name, p.Tags)}}
	var runs list[continuity.Run]
	d.RunsPart = c.get(r, s, "/api/v1/policies/"+url.PathEscape(name)+"/runs?limit=50", &runs)
	d.Runs = runs.Items
	var snaps list[continuity.SnapshotInfo]
	d.SnapPart = c.get(r, s, "/api/v1/policies/"+url.PathEscape(name)+"/snapshots?limit=100", &snaps)
	d.Snapshots = snaps.Items
	c.render(w, r, http.StatusOK, "policy", &view{Title: "Policy " + name, S: s, Data: d})
	return nil
}

func (c *Console) policyJob(path, what string) actionFunc {
	return func(r *http.Request, s *session) (string, error) {
		name := r.PathValue("name")
		var run continuity.Run
		if err := c.call(r, s.token, http.MethodPost, "/api/v1/policies/"+url.PathEscape(name)+"/"+path, nil, &run); err != nil {
			return "", err
		}
		return fmt.Sprintf("Started the %s of %s (run %d).", what, name, run.ID), nil
	}
}

// ---- Guard ----

type guardData struct {
	Bans       []detect.Ban
	Part       part
	All        bool
	Status     guardStatus
	StatusPart part
}

// guardStatus is GET /api/v1/guard/status.
type guardStatus struct {
	Enabled   bool   `json:"enabled"`
	Listen    string `json:"listen"`
	ListenTLS string `json:"listen_tls"`
	Sites     []struct {
		Hosts     []string `json:"hosts"`
		Upstreams []struct {
			URL string `json:"url"`
			Up  *bool  `json:"up"`
		} `json:"upstreams"`
		WAF  string `json:"waf"`
		Rate int    `json:"rate_per_second"`
	} `json:"sites"`
	Enforcement *report.Protection `json:"enforcement"`
	Blocks      []struct {
		Reason string  `json:"reason"`
		Count  float64 `json:"count"`
	} `json:"blocks"`
	Requests []struct {
		Site  string  `json:"site"`
		Code  string  `json:"code"`
		Count float64 `json:"count"`
	} `json:"requests"`
}

func (c *Console) guard(w http.ResponseWriter, r *http.Request, s *session) error {
	d := guardData{All: r.URL.Query().Get("all") == "true"}
	var l list[detect.Ban]
	q := "/api/v1/bans?limit=500"
	if d.All {
		q += "&all=true"
	}
	d.Part = c.get(r, s, q, &l)
	d.Bans = l.Items
	d.StatusPart = c.get(r, s, "/api/v1/guard/status", &d.Status)
	c.render(w, r, http.StatusOK, "guard", &view{Title: "Guard", S: s, Data: d})
	return nil
}

func (c *Console) banAdd(r *http.Request, s *session) (string, error) {
	in := map[string]string{"net": strings.TrimSpace(r.PostForm.Get("net")), "duration": strings.TrimSpace(r.PostForm.Get("duration")), "reason": r.PostForm.Get("reason")}
	var b detect.Ban
	if err := c.call(r, s.token, http.MethodPost, "/api/v1/bans", in, &b); err != nil {
		return "", err
	}
	return fmt.Sprintf("Banned %s until %s.", b.Net, when(b.Expires)), nil
}

func (c *Console) banRemove(r *http.Request, s *session) (string, error) {
	n := r.PostForm.Get("net")
	if err := c.call(r, s.token, http.MethodDelete, "/api/v1/bans?net="+url.QueryEscape(n), nil, nil); err != nil {
		return "", err
	}
	return "Lifted the ban on " + n + ".", nil
}

// ---- Integrity ----

type integrityData struct {
	Status   integrity.Status
	Part     part
	Findings []integrity.CurrentFinding
	FindPart part
}

func (c *Console) integrity(w http.ResponseWriter, r *http.Request, s *session) error {
	d := integrityData{}
	d.Part = c.get(r, s, "/api/v1/integrity/status", &d.Status)
	if !d.Part.Off {
		var l list[integrity.CurrentFinding]
		d.FindPart = c.get(r, s, "/api/v1/integrity/findings?limit=500", &l)
		d.Findings = l.Items
	}
	c.render(w, r, http.StatusOK, "integrity", &view{Title: "File integrity", S: s, Data: d})
	return nil
}

func (c *Console) integrityAccept(r *http.Request, s *session) (string, error) {
	paths := r.PostForm["path"]
	if len(paths) == 0 {
		return "", errors.New("choose the changes to accept")
	}
	// Each change is accepted as it was shown: the API skips a path that
	// changed again since (its state differs).
	states := map[string]string{}
	for _, p := range paths {
		if st := r.PostForm.Get("state:" + p); st != "" {
			states[p] = st
		}
	}
	var out integrity.AcceptResult
	in := map[string]any{"paths": paths, "comment": r.PostForm.Get("comment"), "states": states}
	if err := c.call(r, s.token, http.MethodPost, "/api/v1/integrity/accept", in, &out); err != nil {
		return "", err
	}
	msg := fmt.Sprintf("Accepted %d change(s); the baseline now holds %d entries.", out.Accepted, out.Entries)
	if out.SkippedTotal > 0 {
		var why []string
		for _, sk := range out.Skipped {
			why = append(why, sk.Path+" ("+sk.Reason+")")
		}
		msg += fmt.Sprintf(" Not accepted, %d: %s.", out.SkippedTotal, strings.Join(why, "; "))
	}
	if out.ScanErrorsTotal > 0 {
		msg += fmt.Sprintf(" %d path(s) could not be read and were kept as they were.", out.ScanErrorsTotal)
	}
	return msg, nil
}

// ---- Monitoring ----

type monitoringData struct {
	Status   monitor.Status
	Part     part
	Silences []alert.Silence
	SilPart  part
	ChanPart part
	Channels []struct {
		Name          string    `json:"name"`
		LastDelivered time.Time `json:"last_delivered"`
	}
	Charts []chart
}

// chartSeries are the host series the monitoring page draws.
var chartSeries = []struct{ series, title, unit string }{
	{"cpu_busy_percent", "CPU busy", "%"},
	{"memory_used_percent", "Memory used", "%"},
	{`filesystem_used_percent{mountpoint="/"}`, "Disk used (/)", "%"},
	{"load1", "Load (1 min)", ""},
}

func (c *Console) monitoring(w http.ResponseWriter, r *http.Request, s *session) error {
	d := monitoringData{}
	d.Part = c.get(r, s, "/api/v1/monitor/status", &d.Status)
	if d.Part.Err == "" {
		var sl list[alert.Silence]
		d.SilPart = c.get(r, s, "/api/v1/monitor/silences", &sl)
		d.Silences = sl.Items
		var ch list[struct {
			Name          string    `json:"name"`
			LastDelivered time.Time `json:"last_delivered"`
		}]
		d.ChanPart = c.get(r, s, "/api/v1/notify/channels", &ch)
		d.Channels = ch.Items
		span := 6 * time.Hour
		for _, cs := range chartSeries {
			var hl list[monitor.Series]
			q := "/api/v1/monitor/history?series=" + url.QueryEscape(cs.series) + "&from=" + span.String()
			if c.get(r, s, q, &hl).Err != "" || len(hl.Items) == 0 {
				continue
			}
			d.Charts = append(d.Charts, lineChart(cs.title, cs.unit, hl.Items[0].Points, c.o.Now().Add(-span), c.o.Now()))
		}
	}
	sort.Slice(d.Status.Checks, func(i, j int) bool {
		a, b := d.Status.Checks[i], d.Status.Checks[j]
		if (a.State == "down") != (b.State == "down") {
			return a.State == "down"
		}
		return a.Name < b.Name
	})
	c.render(w, r, http.StatusOK, "monitoring", &view{Title: "Monitoring", S: s, Data: d})
	return nil
}

func (c *Console) alertAck(r *http.Request, s *session) (string, error) {
	in := map[string]string{"key": r.PostForm.Get("key"), "comment": r.PostForm.Get("comment")}
	if err := c.call(r, s.token, http.MethodPost, "/api/v1/monitor/alerts/ack", in, nil); err != nil {
		return "", err
	}
	return "Acknowledged " + in["key"] + ".", nil
}

func (c *Console) silenceAdd(r *http.Request, s *session) (string, error) {
	in := map[string]any{"rule": strings.TrimSpace(r.PostForm.Get("rule")), "check": strings.TrimSpace(r.PostForm.Get("check")),
		"duration": strings.TrimSpace(r.PostForm.Get("duration")), "reason": r.PostForm.Get("reason")}
	if st := strings.TrimSpace(r.PostForm.Get("start")); st != "" {
		t, err := time.ParseInLocation("2006-01-02T15:04", st, time.UTC)
		if err != nil {
			return "", fmt.Errorf("start: %q is not a date and time (YYYY-MM-DDTHH:MM, UTC)", st)
		}
		in["start"] = t
	}
	var sl alert.Silence
	if err := c.call(r, s.token, http.MethodPost, "/api/v1/monitor/silences", in, &sl); err != nil {
		return "", err
	}
	return "Silence " + sl.ID + " set until " + when(sl.End) + ".", nil
}

func (c *Console) silenceRemove(r *http.Request, s *session) (string, error) {
	id := r.PathValue("id")
	if err := c.call(r, s.token, http.MethodDelete, "/api/v1/monitor/silences/"+url.PathEscape(id), nil, nil); err != nil {
		return "", err
	}
	return "Ended silence " + id + ".", nil
}

// ---- Audit and events ----

// nextURL is the link to the page after cursor, with the same filters.
func nextURL(page string, q url.Values, cursor string) string {
	if cursor == "" {
		return ""
	}
	n := url.Values{}
	for k, v := range q {
		n[k] = v
	}
	n.Set("after", cursor)
	return page + "?" + n.Encode()
}

type auditData struct {
	Entries []audit.Entry
	Part    part
	Q       url.Values
	NextURL string
	Verify  *audit.Report
	VerErr  string
	Export  string
}

func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, s *session) error {
	q := url.Values{}
	for _, k := range []string{"actor", "action", "resource", "result", "since", "until", "after"} {
		if v := strings.TrimSpace(r.URL.Query().Get(k)); v != "" {
			q.Set(k, v)
		}
	}
	d := auditData{Q: q}
	lq := url.Values{}
	for k, v := range q {
		lq[k] = v
	}
	lq.Set("limit", "100")
	var l list[audit.Entry]
	d.Part = c.get(r, s, "/api/v1/audit?"+lq.Encode(), &l)
	d.Entries = l.Items
	d.NextURL = nextURL("/audit", q, l.Next)
	if r.URL.Query().Get("verify") == "1" {
		var rep audit.Report
		if p := c.get(r, s, "/api/v1/audit/verify", &rep); p.Err != "" {
			d.VerErr = p.Err
		} else {
			d.Verify = &rep
		}
	}
	eq := url.Values{}
	for _, k := range []string{"since", "until"} {
		if v := q.Get(k); v != "" {
			eq.Set(k, v)
		}
	}
	d.Export = "/api/v1/audit/export?" + eq.Encode()
	c.render(w, r, http.StatusOK, "audit", &view{Title: "Audit log", S: s, Data: d})
	return nil
}

type eventsData struct {
	Events  []events.Event
	Part    part
	Q       url.Values
	NextURL string
}

func (c *Console) eventsPage(w http.ResponseWriter, r *http.Request, s *session) error {
	q := url.Values{}
	for _, k := range []string{"type", "module", "severity", "since", "until", "resource", "after"} {
		if v := strings.TrimSpace(r.URL.Query().Get(k)); v != "" {
			q.Set(k, v)
		}
	}
	lq := url.Values{}
	for k, v := range q {
		lq[k] = v
	}
	lq.Set("limit", "100")
	d := eventsData{Q: q}
	var l list[events.Event]
	d.Part = c.get(r, s, "/api/v1/events?"+lq.Encode(), &l)
	d.Events = l.Items
	d.NextURL = nextURL("/events", q, l.Next)
	c.render(w, r, http.StatusOK, "events", &view{Title: "Events", S: s, Data: d})
	return nil
}
