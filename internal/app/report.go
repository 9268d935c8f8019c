package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/firewall"
	"github.com/bulwarkhq/bulwark/internal/identity"
	"github.com/bulwarkhq/bulwark/internal/notify"
	"github.com/bulwarkhq/bulwark/internal/posture"
	"github.com/bulwarkhq/bulwark/internal/report"
)

// The security-practices report (internal/report) is made from what the
// capabilities recorded. Two pieces of evidence are kept here because no
// capability stores them:
//
//   - The edge's enforcement (guard, detection, firewall) exists only in
//     the process of `bulwark up`. It is kept in memory (the API's report)
//     and written to DATA/protection.json every report.ProtectionHeartbeat
//     (the CLI's report, another process), so a stale file says that up
//     has stopped.
//   - The posture audit reads the host for about two seconds. `bulwark
//     report` runs it and records the result as a posture.audited event;
//     the API's report uses the last one recorded.

// TypePostureAudited is the event recording a posture audit's results.
const TypePostureAudited events.Type = "posture.audited"

// protectionFile is the edge's last recorded enforcement in DATA.
const protectionFile = "protection.json"

// protectionState is the edge's enforcement as this process runs it.
type protectionState struct {
	mu   sync.Mutex
	p    report.Protection
	live bool // this process runs the edge (inside Serve)
}

func (s *protectionState) update(f func(p *report.Protection)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.p)
}

func (s *protectionState) snapshot() (report.Protection, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p, s.live
}

// guardStarted, detectStarted and firewallSynced record the edge's state
// (called by startProtection and mirrorBans).
func (a *App) guardStarted(running bool) {
	a.protection.update(func(p *report.Protection) {
		p.GuardRunning, p.GuardSince = running, a.now()
	})
}

func (a *App) detectStarted(running bool) {
	a.protection.update(func(p *report.Protection) {
		p.DetectRunning, p.DetectSince = running, a.now()
	})
}

func (a *App) firewallSynced(inForce, wanted int, st firewall.SyncStats, err error) {
	a.protection.update(func(p *report.Protection) {
		p.FirewallRunning = true
		p.BansInForce, p.BansWanted = inForce, wanted
		if err != nil {
			p.FirewallError = err.Error()
			return
		}
		p.FirewallError, p.FirewallSynced, p.BansLoaded = "", a.now(), st.Total
	})
}

// recordProtection marks the edge live in this process and writes its
// state to DATA/protection.json every heartbeat until ctx ends, then once
// more with everything stopped. done is closed after that last write.
func (a *App) recordProtection(ctx context.Context) (done <-chan struct{}) {
	a.protection.mu.Lock()
	a.protection.live = true
	a.protection.mu.Unlock()
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		t := time.NewTicker(report.ProtectionHeartbeat)
		defer t.Stop()
		for {
			a.protection.update(func(p *report.Protection) { p.Observed = a.now() })
			if err := a.writeProtection(); err != nil {
				a.Logger.Warn("report: record the edge's state", "err", err)
			}
			select {
			case <-ctx.Done():
				a.protection.update(func(p *report.Protection) {
					p.Observed, p.GuardRunning, p.DetectRunning, p.FirewallRunning = a.now(), false, false, false
				})
				a.protection.mu.Lock()
				a.protection.live = false
				a.protection.mu.Unlock()
				if err := a.writeProtection(); err != nil {
					a.Logger.Warn("report: record the edge's state", "err", err)
				}
				return
			case <-t.C:
			}
		}
	}()
	return ch
}

func (a *App) writeProtection() error {
	p, _ := a.protection.snapshot()
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(a.DataDir, protectionFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Protection returns the edge's enforcement: this process's when it runs
// the edge, else what the data directory's up last wrote (nil: nothing).
func (a *App) Protection() (*report.Protection, error) {
	if p, live := a.protection.snapshot(); live {
		return &p, nil
	}
	b, err := os.ReadFile(filepath.Join(a.DataDir, protectionFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var p report.Protection
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", protectionFile, err)
	}
	return &p, nil
}

// accounts reads identity for the report's two-factor control.
type accounts struct {
	id  *identity.Service
	now func() time.Time
}

var _ report.Accounts = accounts{}

func (a accounts) Accounts(ctx context.Context) ([]report.Account, error) {
	const page = 500
	var out []report.Account
	now := a.now()
	for after := ""; ; {
		us, err := a.id.ListUsers(ctx, after, page)
		if err != nil {
			return nil, err
		}
		for _, u := range us {
			acc := report.Account{Username: u.Username, Disabled: u.Disabled, MFA: u.HasMFA()}
			for _, b := range u.Roles {
				if !b.Expired(now) {
					acc.Roles = append(acc.Roles, b.Role)
				}
			}
			out = append(out, acc)
			after = u.Username
		}
		if len(us) < page {
			return out, nil
		}
	}
}

func (a accounts) Require2FA(ctx context.Context) (bool, []string, error) {
	st, err := a.id.Settings(ctx)
	return st.Require2FA, st.Require2FARoles, err
}

// RunPosture runs the hardening audit of this host (about two seconds)
// and records its results as a posture.audited event, for the reports
// made later without running it (the API's).
func (a *App) RunPosture(ctx context.Context) (*posture.Report, error) {
	au := posture.Auditor{Root: "/", ClockSynced: posture.ClockSynced, Now: a.now}
	r := au.Audit()
	r.Time = r.Time.Truncate(time.Microsecond) // as the event store keeps it
	type finding struct {
		ID       string           `json:"id"`
		Title    string           `json:"title"`
		Severity posture.Severity `json:"severity"`
		Status   posture.Status   `json:"status"`
		Evidence []string         `json:"evidence,omitempty"`
	}
	var found []finding
	for _, f := range r.Findings {
		// Keep the event small (the report shows one line): five lines of
		// evidence at most, each within 512 bytes.
		var ev []string
		for _, line := range f.Evidence[:min(len(f.Evidence), 5)] {
			if len(line) > 512 {
				line = strings.ToValidUTF8(line[:509], "") + "..."
			}
			ev = append(ev, line)
		}
		found = append(found, finding{ID: f.ID, Title: f.Title, Severity: f.Severity, Status: f.Status, Evidence: ev})
	}
	_, err := a.Events.Publish(ctx, events.Event{Type: TypePostureAudited, Module: events.ModulePosture, Severity: events.SeverityInfo,
		Actor: events.SystemActor("posture"), Resource: "host", Time: r.Time,
		Message: fmt.Sprintf("posture audit: %d checks, %d passed, %d failed (%d high), %d unknown, %d skipped", len(r.Findings),
			r.Counts[posture.Pass], r.Counts[posture.Fail], r.Failed[posture.High], r.Counts[posture.Unknown], r.Counts[posture.Skipped]),
		Data: map[string]any{"findings": found}})
	if err != nil {
		return r, fmt.Errorf("record the posture audit: %w", err)
	}
	return r, nil
}

// LastPosture returns the last posture audit recorded (nil: none).
func (a *App) LastPosture(ctx context.Context) (*posture.Report, error) {
	es, err := a.Events.Query(ctx, events.Filter{Types: []events.Type{TypePostureAudited}, Limit: 1, Desc: true})
	if err != nil || len(es) == 0 {
		return nil, err
	}
	b, err := json.Marshal(es[0].Data["findings"])
	if err != nil {
		return nil, err
	}
	r := &posture.Report{Time: es[0].Time}
	if err := json.Unmarshal(b, &r.Findings); err != nil {
		return nil, fmt.Errorf("posture.audited event %d: %w", es[0].ID, err)
	}
	return r, nil
}

// ReportSources gathers the report's sources from the app.
func (a *App) ReportSources(ctx context.Context) (report.Sources, error) {
	src := report.Sources{Config: a.Config, History: a.Continuity.History, Integrity: a.Integrity, Events: a.Events,
		Accounts: accounts{id: a.Identity, now: a.now}, Access: a.Access, Audit: a.Audit, Bans: a.Bans}
	src.Host, _ = os.Hostname()
	if a.Notifier != nil {
		src.Deliveries = a.Notifier
	} else {
		// Only the recorded deliveries are read: no channel (and none of
		// their secrets) is needed.
		n, err := notify.NewNotifier(a.DB, nil, notify.Options{Now: a.now, Logger: a.Logger, Host: src.Host})
		if err != nil {
			return src, err
		}
		src.Deliveries = n
	}
	p, err := a.Protection()
	if err != nil {
		a.Logger.Warn("report: the edge's recorded state", "err", err) // the controls fail for want of it
	}
	src.Protection = p
	return src, nil
}

// Report makes the security-practices report. withPosture runs the
// posture audit now (and records it); otherwise the last one recorded is
// used.
func (a *App) Report(ctx context.Context, withPosture bool) (report.Report, error) {
	src, err := a.ReportSources(ctx)
	if err != nil {
		return report.Report{}, err
	}
	if withPosture {
		if src.Posture, err = a.RunPosture(ctx); err != nil {
			return report.Report{}, err
		}
	} else if src.Posture, err = a.LastPosture(ctx); err != nil {
		return report.Report{}, err
	}
	return report.Generate(ctx, src, a.now())
}

// ReportReuseFor bounds how long the API reuses a report it made. Making
// one verifies the whole audit chain (about 2 µs an entry), and the
// console's overview asks for it every 15 s in every open tab; any new
// audit entry (every event and every change is one) makes a new report at
// once, so only the passing of time goes unseen, for at most this long.
const ReportReuseFor = 30 * time.Second

// reportCache is the API's last report and the audit head it was made at.
type reportCache struct {
	mu   sync.Mutex
	at   time.Time
	head int64
	rep  *report.Report
}

// reportForAPI is the API's report: the last recorded posture audit, not
// a new one (it would take seconds and read the host on every request),
// reused while nothing was audited for up to ReportReuseFor. Callers of
// the same moment wait for one report rather than each making one.
func (a *App) reportForAPI(ctx context.Context) (report.Report, error) {
	head, _, herr := a.Audit.Head(ctx)
	c := &a.reportCache
	c.mu.Lock()
	defer c.mu.Unlock()
	now := a.now()
	if herr == nil && c.rep != nil && c.head == head && !now.Before(c.at) && now.Sub(c.at) < ReportReuseFor {
		return *c.rep, nil
	}
	rep, err := a.Report(ctx, false)
	if err != nil {
		return rep, err
	}
	c.rep, c.at, c.head = &rep, now, head
	if herr != nil {
		c.rep = nil
	}
	return rep, nil
}
