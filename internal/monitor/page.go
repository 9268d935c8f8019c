package monitor

import (
	"context"
	"fmt"
	"time"

	"github.com/bulwarkhq/bulwark/internal/events"
)

// UptimeDays is the span of a status page's uptime bars.
const UptimeDays = 90

// PageData is what a public status page shows: no messages, addresses or
// values of checks, only their names, states and history, and the
// incident notes people posted.
type PageData struct {
	Name        string    `json:"name"`
	Title       string    `json:"title"`
	Description string    `json:"description,omitempty"`
	Generated   time.Time `json:"generated"`
	// Overall is operational, degraded (some checks down) or outage (all
	// down); unknown before any check ran.
	Overall   string           `json:"overall"`
	Checks    []PageCheck      `json:"checks"`
	Incidents []PublicIncident `json:"incidents"`
}

// PublicIncident is an incident note as the public sees it: without who
// wrote it.
type PublicIncident struct {
	ID      int64     `json:"id"`
	Title   string    `json:"title"`
	Body    string    `json:"body"`
	Status  string    `json:"status"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// PageCheck is one check on a status page.
type PageCheck struct {
	Name string `json:"name"`
	// State is up, down or pending.
	State string    `json:"state"`
	Since time.Time `json:"since,omitzero"`
	// UptimePercent is over the days shown, gaps left out; null without
	// runs.
	UptimePercent *float64 `json:"uptime_percent"`
	Days          []Day    `json:"days"`
}

// PageNames returns the configured pages' names ("main" when none are).
func (s *Service) PageNames() []string {
	if len(s.o.Status.Pages) == 0 {
		return []string{"main"}
	}
	out := make([]string, len(s.o.Status.Pages))
	for i, p := range s.o.Status.Pages {
		out[i] = p.Name
	}
	return out
}

// Page builds a status page's data.
func (s *Service) Page(ctx context.Context, name string) (*PageData, error) {
	pd := &PageData{Name: name, Title: s.o.Status.Title, Generated: s.o.Now().UTC()}
	var checks []string
	switch {
	case len(s.o.Status.Pages) == 0 && name == "main":
		for _, c := range s.checks {
			checks = append(checks, c.Name())
		}
	default:
		found := false
		for _, p := range s.o.Status.Pages {
			if p.Name == name {
				found = true
				checks = p.Checks
				if p.Title != "" {
					pd.Title = p.Title
				}
				pd.Description = p.Description
			}
		}
		if !found {
			return nil, fmt.Errorf("%w: no status page %q", ErrNotFound, name)
		}
	}
	st := s.Status()
	state := map[string]CheckStatus{}
	for _, c := range st.Checks {
		state[c.Name] = c
	}
	up, down := 0, 0
	now := s.o.Now()
	running, err := s.history.Running(ctx, dayRangeStart(UptimeDays, now), now, 2*time.Minute)
	if err != nil {
		return nil, fmt.Errorf("monitor: running spans: %w", err)
	}
	for _, name := range checks {
		days, err := s.history.days(ctx, name, UptimeDays, now, running)
		if err != nil {
			return nil, fmt.Errorf("monitor: history of %s: %w", name, err)
		}
		pc := PageCheck{Name: name, State: "pending", Days: days}
		if cs, ok := state[name]; ok {
			pc.State, pc.Since = cs.State, cs.Since
		}
		runs, fails := 0, 0
		for _, d := range days {
			runs += d.Runs
			fails += d.Failures
		}
		if runs > 0 {
			u := 100 * float64(runs-fails) / float64(runs)
			pc.UptimePercent = &u
		}
		switch pc.State {
		case "up":
			up++
		case "down":
			down++
		}
		pd.Checks = append(pd.Checks, pc)
	}
	switch {
	case up+down == 0:
		pd.Overall = "unknown"
	case down == 0:
		pd.Overall = "operational"
	case up == 0:
		pd.Overall = "outage"
	default:
		pd.Overall = "degraded"
	}
	inc, err := s.history.Incidents(ctx, name, s.o.Now().Add(-UptimeDays*24*time.Hour))
	if err != nil {
		return nil, fmt.Errorf("monitor: incidents: %w", err)
	}
	pd.Incidents = make([]PublicIncident, len(inc))
	for i, in := range inc {
		pd.Incidents[i] = PublicIncident{ID: in.ID, Title: in.Title, Body: in.Body, Status: in.Status, Created: in.Created, Updated: in.Updated}
	}
	return pd, nil
}

// HasPage reports whether a status page of that name exists.
func (s *Service) HasPage(name string) bool {
	for _, p := range s.PageNames() {
		if p == name {
			return true
		}
	}
	return false
}

// AddIncident stores an incident note on a page and publishes it as an
// event.
func (s *Service) AddIncident(ctx context.Context, in Incident) (Incident, error) {
	if !s.HasPage(in.Page) {
		return in, fmt.Errorf("%w: no status page %q", ErrNotFound, in.Page)
	}
	in, err := s.history.AddIncident(ctx, in)
	if err != nil {
		return in, err
	}
	s.publish(ctx, events.Event{Type: events.TypeStatusIncident, Severity: events.SeverityNotice, Resource: fmt.Sprintf("status/%s/incident/%d", in.Page, in.ID),
		Message: fmt.Sprintf("incident on status page %s (%s): %s", in.Page, in.Status, in.Title), Data: map[string]any{"page": in.Page, "title": in.Title, "status": in.Status, "author": in.Author}})
	s.pagesChanged()
	return in, nil
}

// Changes signals (coalesced) when what the status pages show has
// changed: a check went up or down, an incident was posted. A publisher
// re-exports the pages then (and daily, as the bars move).
func (s *Service) Changes() <-chan struct{} { return s.changes }

func (s *Service) pagesChanged() {
	select {
	case s.changes <- struct{}{}:
	default:
	}
}
