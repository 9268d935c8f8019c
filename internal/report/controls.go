package report

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/access"
	"github.com/bulwarkhq/bulwark/internal/audit"
	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/continuity"
	"github.com/bulwarkhq/bulwark/internal/continuity/schedule"
	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/posture"
)

// gen holds one generation's inputs.
type gen struct {
	ctx context.Context
	src Sources
	now time.Time
}

// age is now - t, never negative (a clock behind the evidence's).
func (g *gen) age(t time.Time) time.Duration { return max(g.now.Sub(t), 0) }

// human writes a duration for people: 45s, 12m, 5h30m, 3d4h.
func human(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		h, m := int(d.Hours()), int(d.Minutes())%60
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%dm", h, m)
	}
	days, h := int(d.Hours())/24, int(d.Hours())%24
	if h == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd%dh", days, h)
}

// plural is "1 entry", "2 entries".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// failedControl is c failed for missing or unreadable evidence.
func failedControl(c Control, detail, remediation string) Control {
	c.Status, c.Detail, c.Remediation = Failed, detail, remediation
	return c
}

// grade sets c's status from the age of evidence at t against window, the
// detail (what, and the age against the window) and the measurements.
func (g *gen) grade(c Control, t time.Time, window time.Duration, what, remediation string) Control {
	age := g.age(t)
	c.EvidenceAt = t.UTC()
	c.Status = fresh(age, window)
	c.Measurements = map[string]float64{"age_seconds": math.Round(age.Seconds()), "window_seconds": window.Seconds()}
	switch c.Status {
	case OK:
		c.Detail = fmt.Sprintf("%s %s ago, within %s", what, human(age), human(window))
	case AtRisk:
		c.Detail = fmt.Sprintf("%s %s ago: more than 80%% of %s", what, human(age), human(window))
		c.Remediation = remediation
	default:
		c.Detail = fmt.Sprintf("%s %s ago, older than %s", what, human(age), human(window))
		c.Remediation = remediation
	}
	return c
}

// atLeast lowers c to status s (at least), adding why to the detail.
func atLeast(c Control, s Status, why, remediation string) Control {
	if rank(s) > rank(c.Status) {
		c.Status = s
		if c.Remediation == "" {
			c.Remediation = remediation
		}
	}
	c.Detail += "; " + why
	return c
}

// interval is the time between two activations of a schedule (0: none or
// unparsable). For cron schedules it is measured at a fixed date, so that
// it does not change from one report to the next.
func interval(s string) time.Duration {
	if s == "" {
		return 0
	}
	sch, err := schedule.Parse(s)
	if err != nil {
		return 0
	}
	ref := time.Date(2025, 1, 6, 12, 0, 0, 0, time.UTC) // a Monday
	a := sch.Next(ref)
	if a.IsZero() {
		return 0
	}
	b := sch.Next(a)
	if b.IsZero() {
		return 0
	}
	return b.Sub(a)
}

// scrubGroups is how many scrubs a full pass takes (continuity's M: the
// period over the schedule's interval, 1 to 256).
func scrubGroups(sc config.Scrub) (period time.Duration, m int) {
	period = sc.Period.D()
	if period <= 0 {
		period = continuity.DefaultScrubPeriod
	}
	iv := interval(sc.Schedule)
	if iv <= 0 {
		iv = period
	}
	m = int(math.Floor(float64(period) / float64(iv)))
	return period, min(max(m, 1), 256)
}

// --- Backups: RPO, offsite copies, restore tests, scrubs ---

const (
	fixBackup      = "Run the policy now (bulwark policy run %s), fix what its report says failed, and check that bulwark up is running its schedule."
	fixOffsite     = "Fix the copy to the offsite repository (bulwark policy run %s shows each copy's error): the vault or S3 endpoint, its credentials, its quota."
	fixNoOffsite   = "Add an offsite repository in another place to the policy (continuity.policies[].offsite: a vault or S3 with object lock)."
	fixRestoreTest = "Run a restore test now (bulwark restore-test %s), fix what fails, and schedule them (restore_test.schedule)."
	fixScrub       = "Scrub now (bulwark policy scrub %s), schedule scrubs (scrub.schedule) so that every group is read within the period, and repair what they report."
)

func (g *gen) backups() (daily, offsite, restore []Control) {
	pols := g.src.Config.Continuity.Policies
	if len(pols) == 0 {
		none := func(id, title, module string) Control {
			return failedControl(Control{ID: id, Title: title, Module: module}, "no backup policy is configured, so nothing is backed up",
				"Configure repositories and policies (continuity.repositories, continuity.policies; docs/continuity.md).")
		}
		return []Control{none("backups.rpo", "Newest backup within the RPO", "backups")},
			[]Control{none("backups.offsite", "Offsite copy within the RPO", "backups")},
			[]Control{none("continuity.restore_test", "Restore test passed recently", "continuity"), none("continuity.scrub", "Scrubbing covers the repository", "continuity")}
	}
	for _, p := range pols {
		tags := continuity.ResourceTags(p)
		res := "policy/" + p.Name
		daily = append(daily, g.rpo(p, Control{ID: "backups.rpo", Resource: res, Title: "Newest backup within the RPO", Module: "backups", Tags: tags}))
		offsite = append(offsite, g.offsite(p, Control{ID: "backups.offsite", Resource: res, Title: "Offsite copy within the RPO", Module: "backups", Tags: tags}))
		restore = append(restore,
			g.restoreTest(p, Control{ID: "continuity.restore_test", Resource: res, Title: "Restore test passed recently", Module: "continuity", Tags: tags}),
			g.scrub(p, Control{ID: "continuity.scrub", Resource: res, Title: "Scrubbing covers the repository", Module: "continuity", Tags: tags}))
	}
	return daily, offsite, restore
}

// rpoWindow is the policy's RPO, or a day, with how to say which.
func rpoWindow(p config.Policy) (time.Duration, string) {
	if p.RPO > 0 {
		return p.RPO.D(), "the RPO"
	}
	return DefaultRPO, "a day (no rpo set)"
}

func noHistory(c Control) Control {
	return failedControl(c, "the run history cannot be read in this process", "Run the report where the data directory and its database are (bulwark report --data DIR).")
}

func (g *gen) rpo(p config.Policy, c Control) Control {
	if g.src.History == nil {
		return noHistory(c)
	}
	fix := fmt.Sprintf(fixBackup, p.Name)
	ok, found, err := g.src.History.Last(g.ctx, p.Name, continuity.KindBackup, true)
	if err != nil {
		return failedControl(c, "the run history could not be read: "+err.Error(), fix)
	}
	if !found {
		return failedControl(c, "no successful backup of the policy is recorded", fix)
	}
	window, basis := rpoWindow(p)
	c = g.grade(c, ok.Started, window, "newest successful backup started", fix)
	c.Detail += " (" + basis + "); snapshots encrypted with AES-256-GCM"
	if ok.Finished.After(ok.Started) {
		c.Measurements["duration_seconds"] = math.Round(ok.Finished.Sub(ok.Started).Seconds()*10) / 10
	}
	last, err := g.lastFinished(p.Name, continuity.KindBackup)
	if err == nil && last != nil && last.ID != ok.ID && last.Status == continuity.StatusFailed {
		c = atLeast(c, AtRisk, fmt.Sprintf("the latest run, %s ago, failed: %s", human(g.age(last.Started)), oneLine(last.Error)), fix)
	}
	return c
}

// lastFinished is the newest run of kind that is no longer running.
func (g *gen) lastFinished(policy string, kind continuity.Kind) (*continuity.Run, error) {
	runs, err := g.src.History.Query(g.ctx, continuity.RunQuery{Policy: policy, Kinds: []continuity.Kind{kind}, Limit: 8})
	if err != nil {
		return nil, err
	}
	for i := range runs {
		if runs[i].Status != continuity.StatusRunning {
			return &runs[i], nil
		}
	}
	return nil, nil
}

// oneLine keeps the first line of an error, within 300 bytes.
func oneLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 300 {
		s = strings.ToValidUTF8(s[:297], "") + "..."
	}
	return s
}

// offsiteRuns is how many backup runs the offsite control looks back.
const offsiteRuns = 200

func (g *gen) offsite(p config.Policy, c Control) Control {
	if len(p.Offsite) == 0 {
		return failedControl(c, "the policy has no offsite repository: its backups exist in one place only", fixNoOffsite)
	}
	if g.src.History == nil {
		return noHistory(c)
	}
	fix := fmt.Sprintf(fixOffsite, p.Name)
	runs, err := g.src.History.Query(g.ctx, continuity.RunQuery{Policy: p.Name, Kinds: []continuity.Kind{continuity.KindBackup}, Limit: offsiteRuns})
	if err != nil {
		return failedControl(c, "the run history could not be read: "+err.Error(), fix)
	}
	var (
		good      *continuity.Run
		newestBad string
		seenBad   bool
	)
	for i := range runs {
		r := &runs[i]
		if r.Status == continuity.StatusRunning {
			continue
		}
		var rep continuity.BackupReport
		missing := slices.Clone(p.Offsite)
		var failures []string
		if json.Unmarshal(r.Evidence, &rep) == nil {
			for _, cp := range rep.Copies {
				if cp.Error != "" {
					failures = append(failures, cp.Repository+": "+oneLine(cp.Error))
					continue
				}
				missing = slices.DeleteFunc(missing, func(s string) bool { return s == cp.Repository })
			}
		}
		if len(missing) == 0 && len(failures) == 0 {
			good = r
			break
		}
		if !seenBad {
			seenBad = true
			switch {
			case len(failures) > 0:
				newestBad = fmt.Sprintf("the latest copy, %s ago, failed (%s)", human(g.age(r.Started)), strings.Join(failures, "; "))
			default:
				newestBad = fmt.Sprintf("the latest run, %s ago, copied nothing to %s", human(g.age(r.Started)), strings.Join(missing, ", "))
			}
		}
	}
	if good == nil {
		detail := fmt.Sprintf("none of the last %d backup runs copied to every offsite repository (%s)", len(runs), strings.Join(p.Offsite, ", "))
		if len(runs) == 0 {
			detail = "no backup run is recorded, so no copy was made"
		} else if newestBad != "" {
			detail += "; " + newestBad
		}
		return failedControl(c, detail, fix)
	}
	window, basis := rpoWindow(p)
	c = g.grade(c, good.Started, window, "newest backup copied to "+strings.Join(p.Offsite, ", ")+" started", fix)
	c.Detail += " (" + basis + ")"
	if newestBad != "" {
		c = atLeast(c, AtRisk, newestBad, fix)
	}
	return c
}

func (g *gen) restoreTest(p config.Policy, c Control) Control {
	if g.src.History == nil {
		return noHistory(c)
	}
	fix := fmt.Sprintf(fixRestoreTest, p.Name)
	window := DefaultRestoreTestWindow
	basis := "no restore_test.schedule: twice a week"
	if iv := interval(p.RestoreTest.Schedule); iv > 0 {
		window, basis = 2*iv, "twice the schedule's interval"
	}
	last, err := g.lastFinished(p.Name, continuity.KindRestoreTest)
	if err != nil {
		return failedControl(c, "the run history could not be read: "+err.Error(), fix)
	}
	if last == nil {
		return failedControl(c, "no restore test of the policy is recorded", fix)
	}
	var ev continuity.RestoreTestEvidence
	_ = json.Unmarshal(last.Evidence, &ev)
	if last.Status != continuity.StatusOK {
		c = failedControl(c, fmt.Sprintf("the last restore test, %s ago, failed: %s", human(g.age(last.Started)), oneLine(last.Error)), fix)
		c.EvidenceAt = last.Started.UTC()
		return c
	}
	c = g.grade(c, last.Started, window, "last restore test passed", fix)
	var files int64
	for _, t := range ev.Tests {
		files += t.FilesVerified
	}
	c.Detail += fmt.Sprintf(" (%s): %d snapshots restored and verified (%d files) in %.1fs", basis, len(ev.Tests), files, ev.Duration)
	c.Measurements["recovery_seconds"] = math.Round(ev.Duration*100) / 100
	c.Measurements["snapshots_tested"] = float64(len(ev.Tests))
	c.Measurements["files_verified"] = float64(files)
	return c
}

func (g *gen) scrub(p config.Policy, c Control) Control {
	if g.src.History == nil {
		return noHistory(c)
	}
	fix := fmt.Sprintf(fixScrub, p.Name)
	period, m := scrubGroups(p.Scrub)
	runs, err := g.src.History.Query(g.ctx, continuity.RunQuery{Policy: p.Name, Kinds: []continuity.Kind{continuity.KindScrub}, Limit: 2*m + 8})
	if err != nil {
		return failedControl(c, "the run history could not be read: "+err.Error(), fix)
	}
	var newest *continuity.Run
	covered := map[int]bool{}
	for i := range runs {
		r := &runs[i]
		if r.Status == continuity.StatusRunning {
			continue
		}
		if newest == nil {
			newest = r
		}
		if r.Status != continuity.StatusOK || g.age(r.Started) > period {
			continue
		}
		var rep continuity.ScrubReport
		if json.Unmarshal(r.Evidence, &rep) != nil {
			continue
		}
		ns, ms, ok := strings.Cut(rep.Group, "/")
		n, err1 := strconv.Atoi(ns)
		mm, err2 := strconv.Atoi(ms)
		if ok && err1 == nil && err2 == nil && mm == m && n >= 1 && n <= m {
			covered[n] = true
		}
	}
	if newest == nil {
		return failedControl(c, "no scrub of the policy's repository is recorded", fix)
	}
	c.EvidenceAt = newest.Started.UTC()
	if newest.Status != continuity.StatusOK {
		return failedControl(withEvidence(c, newest.Started), fmt.Sprintf("the last scrub, %s ago, failed: %s", human(g.age(newest.Started)), oneLine(newest.Error)), fix)
	}
	c = g.grade(c, newest.Started, period, "last scrub passed", fix)
	c.Measurements["groups"] = float64(m)
	c.Measurements["groups_verified"] = float64(len(covered))
	c.Measurements["coverage_percent"] = math.Round(float64(len(covered))*1000/float64(m)) / 10
	c.Detail += fmt.Sprintf("; %d of %d groups verified in the last %s", len(covered), m, human(period))
	if len(covered) < m && c.Status == OK {
		c = atLeast(c, AtRisk, "a full pass is not complete", fix)
	}
	return c
}

func withEvidence(c Control, t time.Time) Control {
	c.EvidenceAt = t.UTC()
	return c
}

// --- Edge: the guard, the firewall, request inspection, detection ---

const (
	fixGuard     = "Configure guard.sites and keep bulwark up running (it records the guard's heartbeat); its log says why the guard stopped."
	fixFirewall  = "Set firewall.enabled: true and run bulwark up as root (or with CAP_NET_ADMIN); its log says why a synchronisation failed."
	fixWAF       = "Set waf: block on every guard site (guard.sites[].waf), after a period in detect mode to tune exclusions."
	fixDetection = "Configure guard.sites or detect.logs (sshd, web and mail logs) and keep bulwark up running."
)

// protection returns the recorded enforcement if it is current, or a
// reason why it cannot be used.
func (g *gen) protection() (*Protection, string) {
	pr := g.src.Protection
	if pr == nil || pr.Observed.IsZero() {
		return nil, "no heartbeat of bulwark up's edge protection is recorded (is bulwark up running on this host?)"
	}
	if age := g.age(pr.Observed); age > ProtectionStale {
		return nil, fmt.Sprintf("bulwark up's edge protection was last seen %s ago (heartbeat every %s): is it running?", human(age), human(ProtectionHeartbeat))
	}
	return pr, ""
}

func (g *gen) guard() Control {
	c := Control{ID: "guard.enforcing", Title: "Protecting proxy enforces per-source limits", Module: "guard"}
	cfg := g.src.Config.Guard
	if !cfg.Enabled() {
		return failedControl(c, "no site is protected: guard.sites is empty", fixGuard)
	}
	pr, why := g.protection()
	if pr == nil {
		return failedControl(c, why, fixGuard)
	}
	c.EvidenceAt = pr.Observed.UTC()
	if !pr.GuardRunning {
		return failedControl(c, "the guard is not running in bulwark up", fixGuard)
	}
	c.Status = OK
	c.Detail = fmt.Sprintf("the guard protects %d sites (connection caps, rate limits per source, slow-attack defences, login limits), running for %s",
		len(cfg.Sites), human(g.age(pr.GuardSince)))
	c.Measurements = map[string]float64{"sites": float64(len(cfg.Sites))}
	return c
}

func (g *gen) firewall() Control {
	c := Control{ID: "firewall.bans", Title: "Bans enforced in nftables", Module: "guard"}
	cfg := g.src.Config.Firewall
	if !cfg.Enabled {
		return failedControl(c, "firewall.enabled is false: bans are not enforced in the kernel", fixFirewall)
	}
	pr, why := g.protection()
	if pr == nil {
		return failedControl(c, why, fixFirewall)
	}
	c.EvidenceAt = pr.Observed.UTC()
	switch {
	case !pr.FirewallRunning:
		return failedControl(c, "the firewall is not running in bulwark up", fixFirewall)
	case pr.FirewallError != "":
		return failedControl(c, "the last synchronisation with nftables failed: "+oneLine(pr.FirewallError), fixFirewall)
	case pr.FirewallSynced.IsZero():
		return failedControl(c, "the bans have never been loaded into nftables", fixFirewall)
	}
	c.Measurements = map[string]float64{"bans_in_force": float64(pr.BansInForce), "bans_loaded": float64(pr.BansLoaded), "bans_exempt": float64(pr.BansInForce - pr.BansWanted)}
	if pr.BansLoaded != pr.BansWanted {
		return failedControl(c, fmt.Sprintf("nftables holds %d bans, %d are to be enforced", pr.BansLoaded, pr.BansWanted), fixFirewall)
	}
	window := 2 * max(cfg.Reconcile.D(), time.Second)
	lag := max(pr.Observed.Sub(pr.FirewallSynced), 0)
	c.Status = fresh(lag, window)
	c.Detail = fmt.Sprintf("%d bans in force, %d loaded in nftables (%d exempt: allowed networks and trusted proxies), synchronised %s before the last heartbeat",
		pr.BansInForce, pr.BansLoaded, pr.BansInForce-pr.BansWanted, human(lag))
	if c.Status != OK {
		c.Detail += fmt.Sprintf(", more than the reconciliation allows (%s)", human(window))
		c.Remediation = fixFirewall
	}
	return c
}

func (g *gen) waf(guardCtl Control) Control {
	c := Control{ID: "guard.waf", Title: "Requests inspected and attacks blocked", Module: "guard"}
	sites := g.src.Config.Guard.Sites
	if len(sites) == 0 {
		return failedControl(c, "no site is protected: guard.sites is empty", fixWAF)
	}
	if guardCtl.Status != OK {
		return failedControl(withEvidence(c, guardCtl.EvidenceAt), "the guard is not proven to run: "+guardCtl.Detail, fixGuard)
	}
	var block, detect, off []string
	for _, s := range sites {
		name := strings.Join(s.Hosts, ",")
		if name == "" {
			name = "(every host)"
		}
		switch s.WAF {
		case "block":
			block = append(block, name)
		case "detect":
			detect = append(detect, name)
		default:
			off = append(off, name)
		}
	}
	c.EvidenceAt = guardCtl.EvidenceAt
	c.Measurements = map[string]float64{"sites": float64(len(sites)), "sites_blocking": float64(len(block))}
	switch {
	case len(off) > 0:
		return failedControl(c, fmt.Sprintf("%d of %d sites do not inspect requests (waf off): %s", len(off), len(sites), strings.Join(off, "; ")), fixWAF)
	case len(detect) > 0:
		c.Status, c.Remediation = AtRisk, fixWAF
		c.Detail = fmt.Sprintf("%d of %d sites only detect attacks without blocking (waf detect): %s", len(detect), len(sites), strings.Join(detect, "; "))
		return c
	}
	c.Status = OK
	c.Detail = fmt.Sprintf("all %d sites inspect requests with the OWASP Core Rule Set and block attacks", len(sites))
	return c
}

func (g *gen) detection() Control {
	c := Control{ID: "detect.engine", Title: "Attacks detected and banned", Module: "guard"}
	cfg := g.src.Config
	if !cfg.Guard.Enabled() && len(cfg.Detect.Logs) == 0 {
		return failedControl(c, "detection has nothing to watch: no guard site and no detect.logs", fixDetection)
	}
	pr, why := g.protection()
	if pr == nil {
		return failedControl(c, why, fixDetection)
	}
	c.EvidenceAt = pr.Observed.UTC()
	if !pr.DetectRunning {
		return failedControl(c, "the detection engine is not running in bulwark up", fixDetection)
	}
	var watched []string
	if cfg.Guard.Enabled() {
		watched = append(watched, "the guard's refusals")
	}
	if n := len(cfg.Detect.Logs); n > 0 {
		watched = append(watched, plural(n, "log file", "log files"))
	}
	inForce := pr.BansInForce
	if g.src.Bans != nil {
		inForce = len(g.src.Bans.Active())
	}
	c.Status = OK
	c.Detail = fmt.Sprintf("detection watches %s, running for %s; %s in force", strings.Join(watched, " and "), human(g.age(pr.DetectSince)), plural(inForce, "ban", "bans"))
	c.Measurements = map[string]float64{"bans_in_force": float64(inForce)}
	return c
}

// --- File integrity ---

const fixIntegrity = "Enable file integrity (integrity.enabled: true, with integrity.rescan) and keep bulwark up running; bulwark integrity check runs a scan by hand."

// integrityEvidence is the last full scan, from the service running in
// this process or from the events it recorded.
type integrityEvidence struct {
	at                time.Time
	differences, high int
	problem           string // the service is not watching, and why
	live              bool
}

func (g *gen) integrityEvidence() (integrityEvidence, error) {
	var ev integrityEvidence
	if s := g.src.Integrity; s != nil {
		st := s.Status()
		if st.Watching || !st.LastScanAt.IsZero() || st.Error != "" {
			ev = integrityEvidence{at: st.LastScanAt, differences: st.Differences, high: st.High, problem: st.Error, live: true}
		}
	}
	if g.src.Events == nil {
		return ev, nil
	}
	es, err := g.src.Events.Query(g.ctx, events.Filter{Types: []events.Type{events.TypeIntegrityScanCompleted, events.TypeIntegrityBaselineInvalid}, Limit: 1, Desc: true})
	if err != nil {
		return ev, err
	}
	if len(es) == 0 || ev.live && !es[0].Time.After(ev.at) {
		return ev, nil
	}
	e := es[0]
	if e.Type == events.TypeIntegrityBaselineInvalid {
		if !ev.live {
			ev.problem = e.Message
		}
		return ev, nil
	}
	ev.at = e.Time
	if !ev.live {
		ev.differences, ev.high = dataInt(e.Data, "differences"), dataInt(e.Data, "high")
	}
	return ev, nil
}

// dataInt reads a number of an event's data (json.Number after a query).
func dataInt(d map[string]any, key string) int {
	switch v := d[key].(type) {
	case json.Number:
		n, _ := v.Int64()
		return int(n)
	case float64:
		return int(v)
	case int:
		return v
	}
	return 0
}

func (g *gen) integrity() []Control {
	scan := Control{ID: "integrity.scan", Title: "Full integrity scan recent", Module: "integrity"}
	changes := Control{ID: "integrity.changes", Title: "No unaccepted high-severity change", Module: "integrity"}
	cfg := g.src.Config.Integrity
	if !cfg.Enabled {
		why := "integrity.enabled is false: system files are not watched"
		return []Control{failedControl(scan, why, fixIntegrity), failedControl(changes, why, fixIntegrity)}
	}
	ev, err := g.integrityEvidence()
	if err != nil {
		why := "the events could not be read: " + err.Error()
		return []Control{failedControl(scan, why, fixIntegrity), failedControl(changes, why, fixIntegrity)}
	}
	if ev.at.IsZero() {
		why := "no complete integrity scan is recorded"
		if ev.problem != "" {
			why = "not watching: " + oneLine(ev.problem)
		}
		return []Control{failedControl(scan, why, fixIntegrity), failedControl(changes, why, fixIntegrity)}
	}
	window, basis := DefaultIntegrityWindow, "integrity.rescan is 0: two days"
	if r := cfg.Rescan.D(); r > 0 {
		window, basis = 2*r, "twice integrity.rescan"
	}
	scan = g.grade(scan, ev.at, window, "last full scan", fixIntegrity)
	scan.Detail += " (" + basis + ")"
	if ev.problem != "" {
		scan = atLeast(scan, Failed, "not watching now: "+oneLine(ev.problem), fixIntegrity)
	}
	changes.EvidenceAt = ev.at.UTC()
	changes.Measurements = map[string]float64{"differences": float64(ev.differences), "high": float64(ev.high)}
	if ev.high > 0 {
		return []Control{scan, failedControl(changes, fmt.Sprintf("%d paths differ from the baseline, %d of them graded high, not accepted", ev.differences, ev.high),
			"Review the high-severity changes (bulwark integrity check), undo those that are not yours and accept the others (bulwark integrity accept).")}
	}
	changes.Status = OK
	changes.Detail = fmt.Sprintf("%d paths differ from the baseline, none graded high", ev.differences)
	return []Control{scan, changes}
}

// --- Supervision ---

func (g *gen) alerts() []Control {
	a := g.src.Config.Alerts
	if len(a.Channels) == 0 {
		return []Control{failedControl(Control{ID: "alerts.delivery", Title: "Alert channel delivered within its heartbeat", Module: "monitoring"},
			"no alert channel is configured: alerts reach no one", "Configure alerts.channels (email, webhook or Slack) and the watchdog's heartbeat (alerts.watchdog).")}
	}
	var last map[string]time.Time
	var readErr error
	if g.src.Deliveries != nil {
		last, readErr = g.src.Deliveries.LastDeliveries(g.ctx)
	}
	var out []Control
	for _, ch := range a.Channels {
		c := Control{ID: "alerts.delivery", Resource: "channel/" + ch.Name, Title: "Alert channel delivered within its heartbeat", Module: "monitoring"}
		fix := fmt.Sprintf("Test the channel (bulwark alert test %s) and fix what fails: the server, its credentials, the address.", ch.Name)
		switch {
		case g.src.Deliveries == nil:
			out = append(out, failedControl(c, "the notifier's deliveries cannot be read in this process", "Run the report where the data directory and its database are."))
			continue
		case readErr != nil:
			out = append(out, failedControl(c, "the deliveries could not be read: "+readErr.Error(), fix))
			continue
		}
		t, delivered := last[ch.Name]
		never := ""
		if !delivered {
			never = "; it has never delivered"
		}
		switch {
		case a.Watchdog.Interval == 0:
			out = append(out, failedControl(withEvidence(c, t), "no heartbeat proves the channel works: alerts.watchdog.interval is 0"+never,
				"Set alerts.watchdog.interval (for example 1h) and list the channel in alerts.watchdog.channels."))
			continue
		case !slices.Contains(a.Watchdog.Channels, ch.Name):
			out = append(out, failedControl(withEvidence(c, t), "the channel is not in alerts.watchdog.channels, so no heartbeat proves it works"+never,
				"Add the channel to alerts.watchdog.channels."))
			continue
		case !delivered:
			out = append(out, failedControl(c, "the channel has never delivered a notification", fix))
			continue
		}
		window := 2 * a.Watchdog.Interval.D()
		c = g.grade(c, t, window, "last successful delivery", fix)
		c.Detail += " (twice the heartbeat interval)"
		out = append(out, c)
	}
	return out
}

// --- Two-factor login ---

func (g *gen) twoFactor() Control {
	c := Control{ID: "access.admin_2fa", Title: "Administrators sign in with a second factor", Module: "access"}
	fix := "Make the listed accounts enrol TOTP or a security key, or require a second factor (auth.require_2fa, auth.require_2fa_roles, or the role's require_2fa)."
	if g.src.Accounts == nil || g.src.Access == nil {
		return failedControl(c, "the accounts cannot be read in this process", "Run the report where the data directory and its database are.")
	}
	roles, err := g.src.Access.ListRoles(g.ctx)
	if err != nil {
		return failedControl(c, "the roles could not be read: "+err.Error(), fix)
	}
	accts, err := g.src.Accounts.Accounts(g.ctx)
	if err != nil {
		return failedControl(c, "the accounts could not be read: "+err.Error(), fix)
	}
	all, reqRoles, err := g.src.Accounts.Require2FA(g.ctx)
	if err != nil {
		return failedControl(c, "the two-factor settings could not be read: "+err.Error(), fix)
	}
	byName := map[string]access.Role{}
	for _, r := range roles {
		byName[r.Name] = r
	}
	var privileged, enrolled, required int
	var exposed []string
	for _, a := range accts {
		if a.Disabled {
			continue
		}
		var grants []access.Grant
		admin, req := false, all
		for _, rn := range a.Roles {
			admin = admin || rn == access.RoleAdmin
			r := byName[rn]
			grants = append(grants, r.Grants...)
			req = req || r.Require2FA || slices.Contains(reqRoles, rn)
		}
		if !admin && !access.Decide(grants, g.now, access.Request{Module: access.ModuleAccess, Level: access.LevelWrite}).Allowed {
			continue
		}
		privileged++
		switch {
		case a.MFA:
			enrolled++
		case req:
			required++
		default:
			exposed = append(exposed, a.Username)
		}
	}
	c.EvidenceAt = g.now
	c.Measurements = map[string]float64{"privileged_accounts": float64(privileged), "enrolled": float64(enrolled), "required_not_enrolled": float64(required), "without_2fa": float64(len(exposed))}
	if len(exposed) > 0 {
		slices.Sort(exposed)
		return failedControl(c, fmt.Sprintf("%d of %d accounts that administer Bulwark or may change access can sign in without a second factor: %s",
			len(exposed), privileged, strings.Join(exposed, ", ")), fix)
	}
	c.Status = OK
	c.Detail = fmt.Sprintf("all %d accounts that administer Bulwark or may change access have a second factor enrolled", privileged)
	if privileged == 0 {
		c.Detail = "no enabled account administers Bulwark or may change access"
	}
	if required > 0 {
		has := fmt.Sprintf("%d have", enrolled)
		if enrolled == 1 {
			has = "1 has"
		}
		c.Detail = fmt.Sprintf("of %d accounts that administer Bulwark or may change access, %s a second factor and %d must enrol one at the next sign-in (required by policy)",
			privileged, has, required)
	}
	return c
}

// --- Audit ---

func (g *gen) audit() []Control {
	chain := Control{ID: "audit.chain", Title: "Audit log verifies clean", Module: "audit"}
	anchor := Control{ID: "audit.anchor", Title: "Audit log anchored outside the server", Module: "audit"}
	if g.src.Audit == nil {
		why := "the audit log cannot be read in this process"
		fix := "Run the report where the data directory and its database are."
		return []Control{failedControl(chain, why, fix), failedControl(anchor, why, fix)}
	}
	rep, err := g.src.Audit.Verify(g.ctx, g.src.AuditVerify)
	switch {
	case err != nil:
		chain = failedControl(chain, "the audit log could not be read: "+err.Error(), "Check the database, then run bulwark audit verify.")
	case !rep.OK:
		p := "unknown problem"
		if rep.Problem != nil {
			p = rep.Problem.String()
		}
		chain = failedControl(chain, "verification failed at "+p, "Treat it as an incident: keep a copy of the database, compare with your anchors (bulwark audit verify --anchor FILE) and find who had access.")
		chain.EvidenceAt = g.now
	default:
		chain.Status, chain.EvidenceAt = OK, g.now
		chain.Detail = fmt.Sprintf("%s and %s verified (entries %d to %d)", plural(int(rep.Entries), "entry", "entries"),
			plural(int(rep.Checkpoints), "signed checkpoint", "signed checkpoints"), rep.FirstSeq, rep.LastSeq)
		chain.Measurements = map[string]float64{"entries": float64(rep.Entries), "checkpoints": float64(rep.Checkpoints)}
	}
	fix := "Anchor the log now and on a schedule (bulwark audit anchor --to FILE|URL, e.g. from cron), to a place the server cannot write."
	es, err := g.src.Audit.Query(g.ctx, audit.Filter{Action: "audit.anchor", Result: "ok", Limit: 1, Desc: true})
	switch {
	case err != nil:
		anchor = failedControl(anchor, "the audit log could not be read: "+err.Error(), fix)
	case len(es) == 0:
		anchor = failedControl(anchor, "the audit log has never been anchored", fix)
	default:
		anchor = g.grade(anchor, es[0].Time, AnchorWindow, "last anchor", fix)
	}
	return []Control{chain, anchor}
}

// --- Patching ---

// patchChecks are the posture checks behind the patching practice.
var patchChecks = []struct{ id, check, title string }{
	{"patching.security_updates", "updates.security", "No security update pending"},
	{"patching.automatic_updates", "updates.automatic", "Security updates applied automatically"},
	{"patching.supported_os", "os.end_of_life", "Operating system still supported"},
}

func (g *gen) patching() []Control {
	var out []Control
	pr := g.src.Posture
	for _, pc := range patchChecks {
		c := Control{ID: pc.id, Resource: "posture/" + pc.check, Title: pc.title, Module: "posture"}
		if pr == nil {
			out = append(out, failedControl(c, "no posture audit is recorded", "Run bulwark report (it runs the posture audit and records it) or bulwark posture audit."))
			continue
		}
		i := slices.IndexFunc(pr.Findings, func(f posture.Finding) bool { return f.ID == pc.check })
		if i < 0 {
			out = append(out, failedControl(withEvidence(c, pr.Time), "the posture audit has no check "+pc.check+": this evidence is missing",
				"Upgrade Bulwark to a version whose posture audit has the check, and run it again."))
			continue
		}
		f := pr.Findings[i]
		evidence := strings.Join(f.Evidence, "; ")
		switch f.Status {
		case posture.Pass:
			c = g.grade(c, pr.Time, PostureWindow, "check "+pc.check+" passed in the posture audit", "Run the posture audit again (bulwark report).")
			if evidence != "" {
				c.Detail += ": " + oneLine(evidence)
			}
		case posture.Fail:
			c = failedControl(withEvidence(c, pr.Time), "check "+pc.check+" failed: "+oneLine(orElse(evidence, f.Title)), f.Remediation)
		default:
			c = failedControl(withEvidence(c, pr.Time), fmt.Sprintf("check %s could not tell (%s): %s", pc.check, f.Status, oneLine(orElse(evidence, "no evidence"))),
				"Run the posture audit as root on the host itself (bulwark report), where the package lists are readable.")
		}
		out = append(out, c)
	}
	return out
}

func orElse(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
