// Package report turns the evidence Bulwark's capabilities record into
// control evidence and the security-practices report.
//
// A control checks that one control works, from what was recorded: the
// newest successful backup against the policy's RPO, the last restore
// test, the offsite copies, the scrubs' coverage, the last integrity scan,
// each alert channel's last delivery, the guard's and the firewall's
// heartbeat, the administrators' second factors, the audit chain and its
// anchor, the posture audit's patching checks. Each has a status (ok,
// at_risk or failed), a sentence saying what was found, the time of the
// evidence and, when it is not ok, what to do. A missing piece of evidence
// is a failure, never a pass.
//
// A practice (package practice) is what a hosting provider promises on its
// security page; its status is the worst of its controls (met, at_risk,
// failed). Generate reads only what is already recorded (the run history,
// the event and audit stores, in-memory status): no repository is listed
// and nothing goes over the network, so a report takes well under a
// second. The posture audit, which reads the host for about two seconds,
// is an input (Sources.Posture) rather than something Generate runs.
//
// The thresholds (docs/report.md): a control whose evidence must be
// younger than a window is ok while its age is within 80% of the window,
// at_risk up to the window, failed beyond it.
package report

import (
	"context"
	"slices"
	"time"

	"github.com/bulwarkhq/bulwark/internal/access"
	"github.com/bulwarkhq/bulwark/internal/audit"
	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/continuity"
	"github.com/bulwarkhq/bulwark/internal/detect"
	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/integrity"
	"github.com/bulwarkhq/bulwark/internal/notify"
	"github.com/bulwarkhq/bulwark/internal/posture"
	"github.com/bulwarkhq/bulwark/internal/report/practice"
)

// Status is a control's outcome.
type Status string

// Control statuses, best first.
const (
	OK     Status = "ok"
	AtRisk Status = "at_risk"
	Failed Status = "failed"
)

// PracticeStatus is a practice's outcome: the worst of its controls.
type PracticeStatus string

// Practice statuses, best first.
const (
	PracticeMet    PracticeStatus = "met"
	PracticeAtRisk PracticeStatus = "at_risk"
	PracticeFailed PracticeStatus = "failed"
)

func rank(s Status) int {
	switch s {
	case OK:
		return 0
	case AtRisk:
		return 1
	}
	return 2 // failed, and anything unknown
}

func worse(a, b Status) Status {
	if rank(b) > rank(a) {
		return b
	}
	return a
}

func practiceStatus(s Status) PracticeStatus {
	switch s {
	case OK:
		return PracticeMet
	case AtRisk:
		return PracticeAtRisk
	}
	return PracticeFailed
}

// Control is the evidence that one control works.
type Control struct {
	// ID names the kind of control ("backups.rpo"); with Resource it is
	// unique in a report.
	ID string `json:"id"`
	// Resource is what the control is about ("policy/web",
	// "channel/oncall"), empty for controls of the whole installation.
	Resource string `json:"resource,omitempty"`
	Title    string `json:"title"`
	// Module is the access-control module whose read grant shows the
	// control, and Tags the resource's tags for tag-scoped grants (none:
	// only unscoped grants reach it).
	Module string            `json:"module"`
	Tags   map[string]string `json:"tags,omitempty"`
	Status Status            `json:"status"`
	// Detail says what was found, in one sentence.
	Detail string `json:"detail"`
	// EvidenceAt is when the evidence was recorded (zero: none).
	EvidenceAt time.Time `json:"evidence_at,omitzero"`
	// Measurements are the figures behind Detail (ages and windows in
	// seconds, the restore test's recovery time, counts).
	Measurements map[string]float64 `json:"measurements,omitempty"`
	// Remediation says what to do; empty when the control is ok.
	Remediation string `json:"remediation,omitempty"`
}

// Practice is one promised practice with its controls.
type Practice struct {
	ID      string         `json:"id"`
	Title   string         `json:"title"`
	Promise string         `json:"promise"`
	Status  PracticeStatus `json:"status"`
	// EvidenceAt is the oldest evidence among the controls: everything
	// the status rests on is at least that recent (zero: no evidence).
	EvidenceAt time.Time `json:"evidence_at,omitzero"`
	// Summary is the public sentence for the status (what /trust shows).
	Summary string `json:"summary"`
	// Remediation says what to do in general; empty when met.
	Remediation string    `json:"remediation,omitempty"`
	Controls    []Control `json:"controls"`
}

// Counts counts practices by status.
type Counts struct {
	Met    int `json:"met"`
	AtRisk int `json:"at_risk"`
	Failed int `json:"failed"`
}

// Report is the security-practices report.
type Report struct {
	// Format identifies this JSON shape.
	Format      string    `json:"format"`
	GeneratedAt time.Time `json:"generated_at"`
	// Host is the host the report was made on (internal reports only).
	Host string `json:"host,omitempty"`
	// Status is the worst practice status.
	Status    PracticeStatus `json:"status"`
	Summary   Counts         `json:"summary"`
	Practices []Practice     `json:"practices"`
}

// Format is the value of Report.Format.
const Format = "bulwark-report/1"

// Failed reports whether any practice failed (the CLI's exit status 1).
func (r Report) Failed() bool { return r.Summary.Failed > 0 }

// Practice returns the practice id names, if the report has it.
func (r Report) Practice(id string) (Practice, bool) {
	for _, p := range r.Practices {
		if p.ID == id {
			return p, true
		}
	}
	return Practice{}, false
}

// Accounts is what the two-factor control reads of identity (which only
// the composition root may import).
type Accounts interface {
	// Accounts returns every account, disabled ones included, with the
	// roles it holds now (expired bindings left out) and whether it has a
	// second factor (TOTP or a security key) enrolled.
	Accounts(ctx context.Context) ([]Account, error)
	// Require2FA returns the policy in force, configuration and runtime
	// settings together: whether every account must use a second factor,
	// and the roles whose holders must.
	Require2FA(ctx context.Context) (all bool, roles []string, err error)
}

// Account is one account as the two-factor control sees it.
type Account struct {
	Username string
	Disabled bool
	Roles    []string
	MFA      bool
}

// Deliveries is what the supervision control reads of the notifier.
type Deliveries interface {
	// LastDeliveries returns, per channel that ever delivered, when it
	// last did (the end of its last successful attempt).
	LastDeliveries(ctx context.Context) (map[string]time.Time, error)
}

var _ Deliveries = (*notify.Notifier)(nil)

// Protection is the edge's enforcement as `bulwark up` last recorded it
// (internal/app keeps it in memory and in DATA/protection.json).
type Protection struct {
	// Observed is when this state was last confirmed (the heartbeat).
	Observed time.Time `json:"observed"`
	// GuardRunning says the protecting proxy serves its sites, since
	// GuardSince.
	GuardRunning bool      `json:"guard_running"`
	GuardSince   time.Time `json:"guard_since,omitzero"`
	// DetectRunning says the detection engine runs, since DetectSince.
	DetectRunning bool      `json:"detect_running"`
	DetectSince   time.Time `json:"detect_since,omitzero"`
	// FirewallRunning says the bans are mirrored into nftables;
	// FirewallSynced is the last successful synchronisation and
	// FirewallError the last attempt's error (empty when it succeeded).
	FirewallRunning bool      `json:"firewall_running"`
	FirewallSynced  time.Time `json:"firewall_synced,omitzero"`
	FirewallError   string    `json:"firewall_error,omitempty"`
	// At the last synchronisation: the bans in force, those of them to
	// load (less the exempt networks) and the elements nftables held.
	BansInForce int `json:"bans_in_force"`
	BansWanted  int `json:"bans_wanted"`
	BansLoaded  int `json:"bans_loaded"`
}

// Sources are what a report is made from. A nil capability is one that is
// not configured, or whose evidence this process cannot read: its
// controls fail.
type Sources struct {
	// Config is the configuration in effect: policies, alert channels,
	// guard sites, firewall, integrity, watchdog.
	Config config.Config
	// History is the continuity run history (backups, restore tests,
	// scrubs).
	History *continuity.History
	// Integrity is the file-integrity service; its in-memory status is
	// used when it runs in this process, else the events it recorded.
	Integrity *integrity.Service
	// Events is the event store (integrity scans, posture audits).
	Events *events.Bus
	// Deliveries are the notifier's deliveries.
	Deliveries Deliveries
	// Accounts and Access are the accounts and roles.
	Accounts Accounts
	Access   *access.Store
	// Audit is the audit log, verified with AuditVerify.
	Audit       *audit.Log
	AuditVerify audit.VerifyOptions
	// Protection is the edge's last recorded enforcement; Bans the ban
	// decisions.
	Protection *Protection
	Bans       *detect.Bans
	// Posture is a posture audit's report: one run now, or the last one
	// recorded; nil: none.
	Posture *posture.Report
	// Host names the host in the report.
	Host string
}

// Windows and thresholds (docs/report.md).
const (
	// riskShare is the share of a window after which evidence is at risk.
	riskNum, riskDen = 8, 10
	// DefaultRPO judges a policy without an RPO: the practice is daily.
	DefaultRPO = 24 * time.Hour
	// DefaultRestoreTestWindow is the window of a policy without a
	// restore-test schedule: twice a weekly test.
	DefaultRestoreTestWindow = 14 * 24 * time.Hour
	// DefaultIntegrityWindow is the window of the last full scan when
	// integrity.rescan is 0 (a scan only at the start).
	DefaultIntegrityWindow = 48 * time.Hour
	// AnchorWindow is how recent the audit log's last anchor must be.
	AnchorWindow = 7 * 24 * time.Hour
	// PostureWindow is how recent the posture audit must be.
	PostureWindow = 7 * 24 * time.Hour
	// ProtectionStale is how old the edge's heartbeat may be: `bulwark
	// up` records it every ProtectionHeartbeat.
	ProtectionStale     = 2 * time.Minute
	ProtectionHeartbeat = 30 * time.Second
)

// fresh grades evidence of age against its window.
func fresh(age, window time.Duration) Status {
	switch {
	case age > window:
		return Failed
	case age*riskDen > window*riskNum:
		return AtRisk
	}
	return OK
}

// Generate makes the report at now from src. It reads only recorded
// evidence; a source that cannot be read fails its controls (the detail
// says why). The error is ctx's, when it ends first.
func Generate(ctx context.Context, src Sources, now time.Time) (Report, error) {
	g := &gen{ctx: ctx, src: src, now: now.UTC()}
	r := Report{Format: Format, GeneratedAt: g.now, Host: src.Host}
	byPractice := map[string][]Control{}
	daily, offsite, restore := g.backups()
	byPractice[practice.BackupsDaily] = daily
	byPractice[practice.BackupsOffsite] = offsite
	byPractice[practice.BackupsRestore] = restore
	guardCtl, firewallCtl := g.guard(), g.firewall()
	byPractice[practice.EdgeDDoS] = []Control{guardCtl, firewallCtl}
	byPractice[practice.EdgeIntrusion] = []Control{g.waf(guardCtl), g.detection()}
	byPractice[practice.IntegrityFiles] = g.integrity()
	byPractice[practice.MonitorSupervision] = g.alerts()
	byPractice[practice.AccessMFA] = []Control{g.twoFactor()}
	byPractice[practice.AuditTrail] = g.audit()
	byPractice[practice.PatchingUpdates] = g.patching()
	if err := ctx.Err(); err != nil {
		return Report{}, err
	}
	for _, p := range practice.All() {
		r.Practices = append(r.Practices, assemble(p, byPractice[p.ID]))
	}
	r.tally()
	return r, nil
}

// assemble makes a practice of its controls.
func assemble(p practice.Practice, controls []Control) Practice {
	out := Practice{ID: p.ID, Title: p.Title, Promise: p.Promise, Controls: controls}
	if out.Controls == nil {
		out.Controls = []Control{}
	}
	out.rollUp()
	return out
}

// rollUp derives the practice's status, evidence time, summary and
// remediation from its controls.
func (p *Practice) rollUp() {
	worst := OK
	if len(p.Controls) == 0 {
		worst = Failed // no control, no evidence
	}
	p.EvidenceAt = time.Time{}
	for _, c := range p.Controls {
		worst = worse(worst, c.Status)
		if !c.EvidenceAt.IsZero() && (p.EvidenceAt.IsZero() || c.EvidenceAt.Before(p.EvidenceAt)) {
			p.EvidenceAt = c.EvidenceAt
		}
	}
	p.Status = practiceStatus(worst)
	def, _ := practice.Get(p.ID)
	p.Summary = def.Public[string(p.Status)]
	p.Remediation = ""
	if p.Status != PracticeMet {
		p.Remediation = def.Remediation
	}
}

// tally sets the overall status and counts.
func (r *Report) tally() {
	r.Summary = Counts{}
	r.Status = PracticeMet
	worst := OK
	for _, p := range r.Practices {
		switch p.Status {
		case PracticeMet:
			r.Summary.Met++
		case PracticeAtRisk:
			r.Summary.AtRisk++
			worst = worse(worst, AtRisk)
		default:
			r.Summary.Failed++
			worst = worse(worst, Failed)
		}
	}
	r.Status = practiceStatus(worst)
	if r.Practices == nil {
		r.Practices = []Practice{}
	}
}

// Filter returns the report with only the controls visible says may be
// shown; a practice left without controls is left out, and statuses are
// computed again from what remains, so nothing about a hidden control
// shows through.
func (r Report) Filter(visible func(Control) bool) Report {
	out := r
	out.Practices = []Practice{}
	for _, p := range r.Practices {
		var keep []Control
		for _, c := range p.Controls {
			if visible(c) {
				keep = append(keep, c)
			}
		}
		if len(keep) == 0 {
			continue
		}
		p.Controls = keep
		p.rollUp()
		out.Practices = append(out.Practices, p)
	}
	out.tally()
	return out
}

// PublicPractice is a practice as /trust shows it: no control, no detail.
type PublicPractice struct {
	ID         string         `json:"id"`
	Title      string         `json:"title"`
	Promise    string         `json:"promise"`
	Status     PracticeStatus `json:"status"`
	EvidenceAt time.Time      `json:"evidence_at,omitzero"`
	Summary    string         `json:"summary"`
}

// Public is the public variant of a report: the published practices only,
// each with its status, the date of its evidence and the public summary.
// It carries no host name, path, user name or other internal detail: every
// text in it is a fixed sentence of package practice.
type Public struct {
	GeneratedAt time.Time        `json:"generated_at"`
	Practices   []PublicPractice `json:"practices"`
}

// Public returns the public variant with the practices ids names, in the
// report's order; unknown ids are ignored.
func (r Report) Public(ids []string) Public {
	out := Public{GeneratedAt: r.GeneratedAt, Practices: []PublicPractice{}}
	for _, p := range r.Practices {
		if !slices.Contains(ids, p.ID) {
			continue
		}
		def, _ := practice.Get(p.ID)
		out.Practices = append(out.Practices, PublicPractice{ID: p.ID, Title: def.Title, Promise: def.Promise,
			Status: p.Status, EvidenceAt: p.EvidenceAt, Summary: def.Public[string(p.Status)]})
	}
	return out
}
