// Package practice names the security practices of Bulwark's report: the
// promises a hosting provider makes on its security page (daily encrypted
// backups, an offsite copy, restore tests, protection against denial of
// service and brute force, intrusion prevention, file integrity,
// supervision, two-factor login and access control, an audit trail,
// patching). Each has a stable id, used in the report's JSON, in the API
// and in the configuration (report.publish).
//
// It is a leaf package so that internal/config can refuse an unknown id
// with the file and line, as it does for schedules, without importing the
// report itself.
package practice

import "slices"

// The practice ids, in the report's order.
const (
	BackupsDaily       = "backups.daily_encrypted"
	BackupsOffsite     = "backups.offsite"
	BackupsRestore     = "backups.restore_tested"
	EdgeDDoS           = "edge.ddos_bruteforce"
	EdgeIntrusion      = "edge.intrusion_prevention"
	IntegrityFiles     = "integrity.files"
	MonitorSupervision = "monitoring.supervision"
	AccessMFA          = "access.mfa"
	AuditTrail         = "audit.trail"
	PatchingUpdates    = "patching.updates"
)

// Practice describes one practice.
type Practice struct {
	// ID is the stable id.
	ID string
	// Title names it for people.
	Title string
	// Promise is what the practice promises, in one sentence.
	Promise string
	// Remediation says what to do, in general, when it is not met; each
	// control of the report says what to do about itself.
	Remediation string
	// Public are the summaries /trust shows, by status (met, at_risk,
	// failed): sentences without any internal detail.
	Public map[string]string
}

var all = []Practice{
	{ID: BackupsDaily, Title: "Daily encrypted backups",
		Promise:     "Every backup policy completes an encrypted, deduplicated backup within its recovery-point objective (a day when none is set).",
		Remediation: "Run the late policies (bulwark policy run NAME), read why their last runs failed (bulwark policy status NAME), and check that bulwark up is running its scheduler.",
		Public: map[string]string{
			"met":     "Every backup completed within its recovery-point objective, encrypted at rest.",
			"at_risk": "Backups are running, but at least one is close to its recovery-point objective or its last run failed.",
			"failed":  "At least one backup is older than its recovery-point objective, or has no evidence.",
		}},
	{ID: BackupsOffsite, Title: "Offsite copy",
		Promise:     "Every backup is copied to a repository in another place within the recovery-point objective.",
		Remediation: "Configure an offsite repository for every policy (continuity.policies[].offsite) and check that the copies succeed (bulwark policy run NAME shows each copy).",
		Public: map[string]string{
			"met":     "A second copy of every backup is kept in another place and is up to date.",
			"at_risk": "Offsite copies exist, but at least one is close to its recovery-point objective or its last copy failed.",
			"failed":  "At least one backup has no recent offsite copy, or no evidence of one.",
		}},
	{ID: BackupsRestore, Title: "Restore tests and scrubbing",
		Promise:     "Backups are restored and verified on a schedule, with the recovery time measured, and every stored byte is re-read and checked within the scrub period.",
		Remediation: "Schedule restore tests and scrubs for every policy (restore_test.schedule, scrub.schedule), and fix what the failing ones report (bulwark restore-test NAME, bulwark policy scrub NAME).",
		Public: map[string]string{
			"met":     "Backups are restored and verified regularly, and stored data is re-checked for corruption.",
			"at_risk": "Restore tests or data checks are running, but one is due or incomplete.",
			"failed":  "A recent restore test or data check is missing or failed.",
		}},
	{ID: EdgeDDoS, Title: "DDoS and brute-force protection",
		Promise:     "The protecting proxy limits connections and request rates per source, and bans from detection are enforced in the kernel's firewall.",
		Remediation: "Configure guard.sites and firewall.enabled and keep bulwark up running; read its log for why the guard or the firewall stopped.",
		Public: map[string]string{
			"met":     "Traffic is rate-limited per source and attackers are banned at the firewall.",
			"at_risk": "Protection is running, but part of its enforcement is late.",
			"failed":  "Part of the protection against denial of service and password guessing is not running or not proven.",
		}},
	{ID: EdgeIntrusion, Title: "Intrusion prevention",
		Promise:     "Requests are inspected against the OWASP Core Rule Set and blocked, and detection turns attacks seen in the traffic and the logs into bans.",
		Remediation: "Set waf: block on every guard site and keep detection running (guard.sites, detect.logs).",
		Public: map[string]string{
			"met":     "Requests are inspected and attacks are blocked; attackers are detected and banned.",
			"at_risk": "Intrusion prevention runs, but in part only detects without blocking.",
			"failed":  "Intrusion prevention is not running or not proven.",
		}},
	{ID: IntegrityFiles, Title: "File integrity monitoring",
		Promise:     "System and configuration files are compared with a signed baseline at every full scan, and no high-severity change is left unexplained.",
		Remediation: "Enable integrity monitoring (integrity.enabled) with a periodic rescan, and review and accept or undo the changes reported (bulwark integrity check, bulwark integrity accept).",
		Public: map[string]string{
			"met":     "System files are checked against a signed baseline and no unexplained critical change is open.",
			"at_risk": "File integrity is checked, but a scan is due.",
			"failed":  "File integrity checks are missing, late, or have found unexplained critical changes.",
		}},
	{ID: MonitorSupervision, Title: "Supervision and alerting",
		Promise:     "Every alert channel has delivered a notification within its heartbeat period, so alerts are known to reach people.",
		Remediation: "Set alerts.watchdog.interval and list every channel in alerts.watchdog.channels, then fix the channels whose deliveries fail (bulwark alert test NAME).",
		Public: map[string]string{
			"met":     "Services are supervised and alerts are proven to reach the people on call.",
			"at_risk": "Supervision runs, but an alert channel has not been proven recently.",
			"failed":  "At least one alert channel has not been proven to deliver.",
		}},
	{ID: AccessMFA, Title: "Two-factor login and access control",
		Promise:     "Every account that administers Bulwark, or may change access rights, signs in with a second factor.",
		Remediation: "Make the administrators enrol TOTP or a security key, or require two-factor login (auth.require_2fa, auth.require_2fa_roles, or a role's require_2fa).",
		Public: map[string]string{
			"met":     "Administrative access requires two-factor authentication and fine-grained roles.",
			"at_risk": "Two-factor authentication is required, but not every administrator is enrolled yet.",
			"failed":  "At least one administrative account can sign in without a second factor.",
		}},
	{ID: AuditTrail, Title: "Tamper-evident audit log",
		Promise:     "Every access and change is recorded in a hash-chained, signed audit log that verifies clean, and its head is anchored outside the server regularly.",
		Remediation: "Investigate a failed verification at once (bulwark audit verify), and anchor the log on a schedule (bulwark audit anchor --to FILE|URL).",
		Public: map[string]string{
			"met":     "Every access and change is recorded in a tamper-evident audit log, verified and anchored.",
			"at_risk": "The audit log verifies, but its anchoring is due.",
			"failed":  "The audit log could not be verified, or is not anchored.",
		}},
	{ID: PatchingUpdates, Title: "Security patching",
		Promise:     "Security updates are applied, automatically, on an operating system that still receives them.",
		Remediation: "Install the pending security updates, enable automatic security updates, upgrade an operating system past its end of life, and run the posture audit regularly (bulwark report, bulwark posture audit).",
		Public: map[string]string{
			"met":     "Security updates are applied automatically on supported systems.",
			"at_risk": "Security updates are applied, but the evidence is getting old.",
			"failed":  "Security updates are pending, not automatic, or not proven.",
		}},
}

// All returns every practice, in the report's order.
func All() []Practice {
	out := make([]Practice, len(all))
	copy(out, all)
	return out
}

// IDs returns every practice id, in the report's order.
func IDs() []string {
	out := make([]string, len(all))
	for i, p := range all {
		out[i] = p.ID
	}
	return out
}

// Known reports whether id names a practice.
func Known(id string) bool {
	return slices.ContainsFunc(all, func(p Practice) bool { return p.ID == id })
}

// Get returns the practice id names.
func Get(id string) (Practice, bool) {
	for _, p := range all {
		if p.ID == id {
			return p, true
		}
	}
	return Practice{}, false
}
