package api

import (
	"net/http"

	"github.com/bulwarkhq/bulwark/internal/access"
	"github.com/bulwarkhq/bulwark/internal/continuity"
	"github.com/bulwarkhq/bulwark/internal/detect"
	"github.com/bulwarkhq/bulwark/internal/guard/rules"
	"github.com/bulwarkhq/bulwark/internal/integrity"
	"github.com/bulwarkhq/bulwark/internal/monitor"
	"github.com/bulwarkhq/bulwark/internal/monitor/alert"
	"github.com/bulwarkhq/bulwark/internal/notify"
	"github.com/bulwarkhq/bulwark/internal/report"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// routeTable declares every endpoint. A test walks it and fails when a
// route lacks an access declaration or an audit action where one is due.
func (s *Server) routeTable() []Route {
	R, O, W := access.LevelRead, access.LevelOperate, access.LevelWrite
	A := access.ModuleAccess
	B, C, G, M := access.ModuleBackups, access.ModuleContinuity, access.ModuleGuard, access.ModuleMonitoring
	return []Route{
		// Service endpoints.
		{Method: "GET", Pattern: "/healthz", Auth: Public, Summary: "Liveness: the process answers.", Handler: s.healthz},
		{Method: "GET", Pattern: "/readyz", Auth: Public, Summary: "Readiness: the database answers.", Handler: s.readyz},
		s.metricsRoute(),
		{Method: "GET", Pattern: "/api/v1/openapi.json", Auth: Public, Summary: "This API's OpenAPI 3.1 document.", Handler: s.openapi},

		// Sign-in.
		{Method: "POST", Pattern: "/api/v1/auth/login", Auth: Public, Action: "auth.login", Summary: "Sign in with username, password and, when enrolled, a TOTP or recovery code. Returns a session token, or an MFA challenge.", Handler: s.login, Request: loginRequest{}, Response: loginResponse{}},
		{Method: "POST", Pattern: "/api/v1/auth/login/mfa", Auth: Public, Action: "auth.login.mfa", Summary: "Complete a sign-in with a TOTP or recovery code.", Handler: s.loginMFA, Request: mfaRequest{}, Response: loginResponse{}},
		{Method: "POST", Pattern: "/api/v1/auth/webauthn/begin", Auth: Public, Action: "auth.webauthn.begin", Summary: "Get security-key assertion options for an MFA challenge.", Handler: s.webauthnLoginBegin, Request: mfaRequest{}},
		{Method: "POST", Pattern: "/api/v1/auth/webauthn/finish", Auth: Public, Action: "auth.login.webauthn", Summary: "Complete a sign-in with a security-key assertion.", Handler: s.webauthnLoginFinish, Request: webauthnFinishRequest{}, Response: loginResponse{}},
		{Method: "POST", Pattern: "/api/v1/auth/logout", Auth: Self, Restricted: true, Action: "auth.logout", Summary: "End the current session.", Handler: s.logout},

		// The caller.
		{Method: "GET", Pattern: "/api/v1/me", Auth: Self, Restricted: true, Summary: "The caller and their effective grants.", Handler: s.me, Response: meResponse{}},
		{Method: "POST", Pattern: "/api/v1/me/password", SessionOnly: true, Auth: Self, Action: "me.password", Summary: "Change your password.", Handler: s.changePassword, Request: passwordChange{}},
		{Method: "POST", Pattern: "/api/v1/me/totp", SessionOnly: true, Auth: Self, Restricted: true, Action: "me.totp.begin", Summary: "Start TOTP enrolment: returns the secret, the otpauth:// URI and a QR code (PNG, base64).", Handler: s.totpBegin},
		{Method: "GET", Pattern: "/api/v1/me/totp/qr.png", Auth: Self, Restricted: true, SessionOnly: true, Summary: "The pending TOTP enrolment's QR code as a PNG (start one with POST /api/v1/me/totp).", Handler: s.totpQR},
		{Method: "POST", Pattern: "/api/v1/me/totp/confirm", SessionOnly: true, Auth: Self, Restricted: true, Action: "me.totp.confirm", Summary: "Confirm TOTP with a code; returns ten single-use recovery codes, shown once.", Handler: s.totpConfirm, Request: codeRequest{}},
		{Method: "DELETE", Pattern: "/api/v1/me/totp", SessionOnly: true, Auth: Self, Action: "me.totp.disable", Summary: "Remove your TOTP second factor.", Handler: s.totpDisable},
		{Method: "POST", Pattern: "/api/v1/me/recovery-codes", SessionOnly: true, Auth: Self, Action: "me.recovery_codes.regenerate", Summary: "Replace your recovery codes.", Handler: s.recoveryCodes},
		{Method: "GET", Pattern: "/api/v1/me/webauthn", Auth: Self, Restricted: true, Summary: "Your registered security keys.", Handler: s.webauthnKeys},
		{Method: "POST", Pattern: "/api/v1/me/webauthn/begin", SessionOnly: true, Auth: Self, Restricted: true, Action: "me.webauthn.begin", Summary: "Start registering a security key.", Handler: s.webauthnRegisterBegin},
		{Method: "POST", Pattern: "/api/v1/me/webauthn/finish", SessionOnly: true, Auth: Self, Restricted: true, Action: "me.webauthn.register", Summary: "Finish registering a security key.", Handler: s.webauthnRegisterFinish, Request: webauthnRegisterRequest{}},
		{Method: "DELETE", Pattern: "/api/v1/me/webauthn/{id}", SessionOnly: true, Auth: Self, Action: "me.webauthn.delete", Summary: "Remove one of your security keys.", Handler: s.webauthnDelete},
		{Method: "GET", Pattern: "/api/v1/me/tokens", Auth: Self, Summary: "Your API tokens.", Handler: s.myTokens},
		{Method: "POST", Pattern: "/api/v1/me/tokens", SessionOnly: true, Auth: Self, Action: "token.create", Summary: "Create an API token limited to some of your roles; the secret is shown once.", Handler: s.createToken, Request: tokenRequest{}},
		{Method: "DELETE", Pattern: "/api/v1/me/tokens/{id}", Auth: Self, Action: "token.revoke", Summary: "Revoke one of your API tokens.", Handler: s.revokeMyToken},

		// Accounts.
		{Method: "GET", Pattern: "/api/v1/users", Auth: Perm, Module: A, Level: R, Summary: "List users.", Handler: s.listUsers},
		{Method: "POST", Pattern: "/api/v1/users", Auth: Perm, Module: A, Level: W, Action: "user.create", Summary: "Create a user.", Handler: s.createUser, Request: userCreate{}},
		{Method: "GET", Pattern: "/api/v1/users/{name}", Auth: Perm, Module: A, Level: R, Summary: "Show a user.", Handler: s.getUser},
		{Method: "PATCH", Pattern: "/api/v1/users/{name}", Auth: Perm, Module: A, Level: W, Action: "user.update", Summary: "Change a user's profile, status, tags or roles.", Handler: s.updateUser, Request: userPatch{}},
		{Method: "DELETE", Pattern: "/api/v1/users/{name}", Auth: Perm, Module: A, Level: W, Action: "user.delete", Summary: "Delete a user.", Handler: s.deleteUser},
		{Method: "POST", Pattern: "/api/v1/users/{name}/password", Auth: Perm, Module: A, Level: W, Action: "user.password", Summary: "Set a user's password.", Handler: s.setPassword, Request: passwordSet{}},
		{Method: "POST", Pattern: "/api/v1/users/{name}/unlock", Auth: Perm, Module: A, Level: O, Action: "user.unlock", Summary: "Lift a user's lockout.", Handler: s.unlockUser},

		// Roles and grants.
		{Method: "GET", Pattern: "/api/v1/roles", Auth: Perm, Module: A, Level: R, Summary: "List roles with their grants.", Handler: s.listRoles},
		{Method: "POST", Pattern: "/api/v1/roles", Unscoped: true, Auth: Perm, Module: A, Level: W, Action: "role.create", Summary: "Create a role.", Handler: s.createRole, Request: roleCreate{}},
		{Method: "GET", Pattern: "/api/v1/roles/{name}", Auth: Perm, Module: A, Level: R, Summary: "Show a role.", Handler: s.getRole},
		{Method: "PATCH", Pattern: "/api/v1/roles/{name}", Unscoped: true, Auth: Perm, Module: A, Level: W, Action: "role.update", Summary: "Change a role's description or 2FA requirement.", Handler: s.updateRole, Request: rolePatch{}},
		{Method: "DELETE", Pattern: "/api/v1/roles/{name}", Unscoped: true, Auth: Perm, Module: A, Level: W, Action: "role.delete", Summary: "Delete a role.", Handler: s.deleteRole},
		{Method: "POST", Pattern: "/api/v1/roles/{name}/grants", Unscoped: true, Auth: Perm, Module: A, Level: W, Action: "grant.add", Summary: "Add a grant to a role.", Handler: s.addGrant, Request: grantRequest{}},
		{Method: "DELETE", Pattern: "/api/v1/roles/{name}/grants/{id}", Unscoped: true, Auth: Perm, Module: A, Level: W, Action: "grant.remove", Summary: "Remove a grant from a role.", Handler: s.removeGrant},

		// Everyone's tokens, for administrators.
		{Method: "GET", Pattern: "/api/v1/tokens", Unscoped: true, Auth: Perm, Module: A, Level: R, Summary: "List every API token.", Handler: s.listTokens},
		{Method: "DELETE", Pattern: "/api/v1/tokens/{id}", Unscoped: true, Auth: Perm, Module: A, Level: W, Action: "token.revoke", Summary: "Revoke any API token.", Handler: s.revokeToken},

		// Authentication settings.
		{Method: "GET", Pattern: "/api/v1/settings/auth", Auth: Perm, Module: A, Level: R, Summary: "Authentication settings.", Handler: s.getAuthSettings},
		{Method: "PUT", Pattern: "/api/v1/settings/auth", Unscoped: true, Auth: Perm, Module: A, Level: W, Action: "settings.auth", Summary: "Require two-factor authentication for everyone.", Handler: s.putAuthSettings, Request: authSettings{}},

		// Audit log.
		{Method: "GET", Pattern: "/api/v1/audit", Unscoped: true, Auth: Perm, Module: access.ModuleAudit, Level: R, Action: "audit.read", AuditRead: true, Summary: "Search audit entries.", Handler: s.auditQuery},
		{Method: "GET", Pattern: "/api/v1/audit/export", Unscoped: true, Auth: Perm, Module: access.ModuleAudit, Level: R, Action: "audit.export", AuditRead: true, Summary: "Stream audit entries as JSON Lines.", Handler: s.auditExport},
		{Method: "GET", Pattern: "/api/v1/audit/verify", Unscoped: true, Auth: Perm, Module: access.ModuleAudit, Level: R, Action: "audit.verify", AuditRead: true, Summary: "Verify the hash chain and checkpoint signatures.", Handler: s.auditVerify},
		{Method: "GET", Pattern: "/api/v1/audit/anchor", Unscoped: true, Auth: Perm, Module: access.ModuleAudit, Level: R, Action: "audit.anchor", AuditRead: true, Summary: "A signed statement of the log's head, to keep elsewhere.", Handler: s.auditAnchor},

		// Backup policies (handlers_continuity.go): module backups for
		// policies, backup runs and "run now"; continuity for restore
		// tests, scrubs and the recovery-point watch.
		// File integrity (handlers_integrity.go): the control's evidence.
		{Method: "GET", Pattern: "/api/v1/integrity/status", Auth: Perm, Module: access.ModuleIntegrity, Level: R, Summary: "File integrity's evidence: watching or not (and why), the baseline, the last complete scan with its coverage, and how many paths differ from the baseline now, how many of them high.", Handler: s.integrityStatus, Response: integrity.Status{}},
		{Method: "GET", Pattern: "/api/v1/integrity/findings", Unscoped: true, Auth: Perm, Module: access.ModuleIntegrity, Level: R, Summary: "The paths that differ from the baseline now (not accepted), each with its last finding: kind, severity, type, changed attributes, reasons, package, time; high severity first, then by path (?severity=high|medium|low, ?limit, default 500).", Handler: s.integrityFindings, Response: integrityFindingsResponse{}},
		{Method: "POST", Pattern: "/api/v1/integrity/accept", Unscoped: true, Auth: Perm, Module: access.ModuleIntegrity, Level: W, Action: "integrity.accept", Summary: "Fold reviewed findings into the baseline, with a required comment: each of paths exactly (itself only) and only as its current finding reports it, or pinned to the state reviewed (states: path to the finding's state); none: every current finding, each as reported; recursive: true makes each path cover everything below it as it is now (none: every change). Scans again, signs a new baseline with the data directory's integrity.key and watches with it at once; what was not folded is listed in skipped (path, reason), what the scan could not read keeps its entries and is listed in scan_errors (the first 20; scan_errors_total); audited with both digests.", Handler: s.integrityAccept, Request: integrityAcceptRequest{}, Response: integrity.AcceptResult{}},
		{Method: "GET", Pattern: "/api/v1/policies", Auth: Perm, Module: B, Level: R, Summary: "List the backup policies you may read: definition without secrets, last and next runs, jobs running now.", Handler: s.listPolicies, Response: List[continuity.PolicySummary]{}},
		{Method: "GET", Pattern: "/api/v1/policies/{name}", Auth: Perm, Module: B, Level: R, Summary: "Show one backup policy.", Handler: s.getPolicy, Response: continuity.PolicySummary{}},
		{Method: "GET", Pattern: "/api/v1/policies/{name}/runs", Auth: Perm, Module: B, Level: R, Summary: "A policy's runs, latest first, each with its evidence (?kind=backup|restore_test|scrub, ?limit, ?after). Restore tests and scrubs are listed to callers who may read continuity.", Handler: s.listPolicyRuns, Response: List[continuity.Run]{}},
		{Method: "GET", Pattern: "/api/v1/policies/{name}/snapshots", Auth: Perm, Module: B, Level: R, Summary: "The policy's snapshots in its repository, or in ?repo=NAME (one of its offsite repositories), newest first, each with its source, paths, tags and summary (?limit, ?after). 502 when the repository cannot be read.", Handler: s.listPolicySnapshots, Response: List[continuity.SnapshotInfo]{}},
		{Method: "GET", Pattern: "/api/v1/policies/{name}/runs/{id}", Auth: Perm, Module: B, Level: R, Summary: "One run of a policy with its evidence (snapshot ids, bytes, durations, data age, result).", Handler: s.getPolicyRun, Response: continuity.Run{}},
		{Method: "POST", Pattern: "/api/v1/policies/{name}/run", Auth: Perm, Module: B, Level: O, Action: "policy.run", Summary: "Start the policy's backup now (every source, offsite copies, retention). 202 with the run; 409 while one runs. Follow it at Location.", Handler: s.startJob(continuity.KindBackup), Response: continuity.Run{}},
		{Method: "POST", Pattern: "/api/v1/policies/{name}/restore-test", Auth: Perm, Module: C, Level: O, Action: "policy.restore_test", Summary: "Start a restore test of the policy now. 202 with the run; its evidence appears when it ends.", Handler: s.startJob(continuity.KindRestoreTest), Response: continuity.Run{}},
		{Method: "POST", Pattern: "/api/v1/policies/{name}/scrub", Auth: Perm, Module: C, Level: O, Action: "policy.scrub", Summary: "Start a scrub of the policy's primary repository now. 202 with the run.", Handler: s.startJob(continuity.KindScrub), Response: continuity.Run{}},
		{Method: "GET", Pattern: "/api/v1/policies/{name}/rpo", Auth: Perm, Module: C, Level: R, Summary: "Measure the age of the newest snapshot of each source in each of the policy's repositories now, against its RPO.", Handler: s.policyRPO, Response: rpoResponse{}},

		// Ban decisions (handlers_guard.go).
		{Method: "GET", Pattern: "/api/v1/bans", Unscoped: true, Auth: Perm, Module: G, Level: R, Summary: "Bans in force, newest first (?all=true: every decision kept, lifted and expired included; ?limit).", Handler: s.listBans, Response: List[detect.Ban]{}},
		{Method: "POST", Pattern: "/api/v1/bans", Unscoped: true, Auth: Perm, Module: G, Level: O, Action: "ban.add", Summary: "Ban an address or network for a duration, with a reason; enforced at once by the guard and the firewall.", Handler: s.addBan, Request: banRequest{}, Response: detect.Ban{}},
		{Method: "DELETE", Pattern: "/api/v1/bans", Unscoped: true, Auth: Perm, Module: G, Level: O, Action: "ban.remove", Summary: "Lift the bans in force on exactly ?net=ADDR|CIDR; the decisions stay in the history.", Handler: s.removeBan, Response: List[detect.Ban]{}},

		// What the guard protects and refuses (handlers_guard_status.go).
		{Method: "GET", Pattern: "/api/v1/guard/status", Unscoped: true, Auth: Perm, Module: G, Level: R, Summary: "The guard's sites (hosts, upstreams without credentials and whether each is in rotation, request inspection, rate), the edge's enforcement (proxy, detection, bans mirrored into nftables) and the connections and requests refused since start, by reason.", Handler: s.guardStatus, Response: guardStatus{}},

		// The guard's runtime lists and shaping rules (handlers_guard.go).
		{Method: "GET", Pattern: "/api/v1/guard/lists", Unscoped: true, Auth: Perm, Module: G, Level: R, Summary: "Allow and deny list entries added at run time (?list=allow|deny; ?expired=true includes expired ones). The config's static entries are not listed.", Handler: s.listEntries, Response: List[rules.Entry]{}},
		{Method: "POST", Pattern: "/api/v1/guard/lists", Unscoped: true, Auth: Perm, Module: G, Level: O, Action: "guard.list.add", Summary: "Add an address or network to the allow or deny list, with a reason and an optional duration; applied at once, replacing an entry for the same network.", Handler: s.addEntry, Request: listEntryRequest{}, Response: rules.Entry{}},
		{Method: "DELETE", Pattern: "/api/v1/guard/lists", Unscoped: true, Auth: Perm, Module: G, Level: O, Action: "guard.list.remove", Summary: "Remove exactly ?net=ADDR|CIDR from ?list=allow|deny.", Handler: s.removeEntry, Response: rules.Entry{}},
		{Method: "GET", Pattern: "/api/v1/guard/shaping", Unscoped: true, Auth: Perm, Module: G, Level: R, Summary: "Bandwidth rules set at run time, by name.", Handler: s.listShapes, Response: List[rules.Shape]{}},
		{Method: "PUT", Pattern: "/api/v1/guard/shaping/{name}", Unscoped: true, Auth: Perm, Module: G, Level: O, Action: "guard.shape.set", Summary: "Create or replace a bandwidth rule: a cap for a client (networks or accounts) or, with neither, for whole sites; responses in progress follow the new cap at once.", Handler: s.putShape, Request: shapeRequest{}, Response: rules.Shape{}},
		{Method: "DELETE", Pattern: "/api/v1/guard/shaping/{name}", Unscoped: true, Auth: Perm, Module: G, Level: O, Action: "guard.shape.remove", Summary: "Remove a bandwidth rule; what it matched falls back to the config's caps.", Handler: s.removeShape, Response: rules.Shape{}},

		// Supervision (handlers_monitor.go). Checks, alerts, channels and
		// pages carry no tags: these routes need a grant on the whole
		// module (a tag-scoped grant does not reach them).
		{Method: "GET", Pattern: "/api/v1/monitor/status", Unscoped: true, Auth: Perm, Module: M, Level: R, Summary: "Every check's state and last result, the alerts, and when the host was last sampled.", Handler: s.monitorStatus, Response: monitor.Status{}},
		{Method: "GET", Pattern: "/api/v1/monitor/metrics", Unscoped: true, Auth: Perm, Module: M, Level: R, Summary: "The host's derived series (the names metric alert rules use) at the last sample.", Handler: s.monitorMetrics, Response: List[seriesValue]{}},
		{Method: "GET", Pattern: "/api/v1/monitor/history", Unscoped: true, Auth: Perm, Module: M, Level: R, Summary: "History of a series or of every series of a name (?series=, ?from= and ?to= as RFC 3339 or a duration back from now, ?resolution=0|60|3600; by default the finest kept).", Handler: s.monitorHistory, Response: List[monitor.Series]{}},
		{Method: "GET", Pattern: "/api/v1/monitor/checks/{name}/days", Unscoped: true, Auth: Perm, Module: M, Level: R, Summary: "A check's runs, failures and uptime by day, with the share of each day the monitor ran (?days=, default 90).", Handler: s.monitorCheckDays, Response: List[monitor.Day]{}},
		{Method: "GET", Pattern: "/api/v1/monitor/alerts", Unscoped: true, Auth: Perm, Module: M, Level: R, Summary: "Alerts: pending, firing and recently resolved.", Handler: s.listAlerts, Response: List[alert.Alert]{}},
		{Method: "POST", Pattern: "/api/v1/monitor/alerts/ack", Unscoped: true, Auth: Perm, Module: M, Level: O, Action: "alert.ack", Summary: "Acknowledge an alert by key, with a comment: no more repeats or escalation; its channels are told.", Handler: s.ackAlert, Request: ackRequest{}, Response: alert.Alert{}},
		{Method: "GET", Pattern: "/api/v1/monitor/silences", Unscoped: true, Auth: Perm, Module: M, Level: R, Summary: "Silences and maintenance windows in force or scheduled.", Handler: s.listSilences, Response: List[alert.Silence]{}},
		{Method: "POST", Pattern: "/api/v1/monitor/silences", Unscoped: true, Auth: Perm, Module: M, Level: O, Action: "silence.add", Summary: "Silence alerts by rule, check or labels for a duration, now or from a later start (a maintenance window), with a reason.", Handler: s.addSilence, Request: silenceRequest{}, Response: alert.Silence{}},
		{Method: "DELETE", Pattern: "/api/v1/monitor/silences/{id}", Unscoped: true, Auth: Perm, Module: M, Level: O, Action: "silence.remove", Summary: "End a silence now; notices it held back go out.", Handler: s.removeSilence},
		{Method: "POST", Pattern: "/api/v1/status/{page}/incidents", Unscoped: true, Auth: Perm, Module: M, Level: O, Action: "status.incident", Summary: "Post an incident note on a public status page (status: investigating, identified, monitoring or resolved).", Handler: s.addIncident, Request: incidentRequest{}, Response: monitor.Incident{}},
		{Method: "GET", Pattern: "/api/v1/notify/channels", Unscoped: true, Auth: Perm, Module: M, Level: R, Summary: "The notification channels and each one's last successful delivery (the evidence that alerts reach people).", Handler: s.listChannels, Response: List[channelEvidence]{}},
		{Method: "GET", Pattern: "/api/v1/notify/deliveries", Unscoped: true, Auth: Perm, Module: M, Level: R, Summary: "Delivery attempts, newest first (?channel=, ?outcome=ok|failed, ?limit=).", Handler: s.listDeliveries, Response: List[notify.Attempt]{}},
		{Method: "POST", Pattern: "/api/v1/notify/channels/{name}/test", Unscoped: true, Auth: Perm, Module: M, Level: O, Action: "channel.test", Summary: "Send a test notification to a channel; 502 when every attempt failed.", Handler: s.testChannel},
		{Method: "GET", Pattern: "/status", Auth: Public, Summary: "The public status page (no login); /status/NAME for the others, status.json beside each.", Handler: s.statusPages},
		{Method: "GET", Pattern: "/status/{path...}", Auth: Public, Summary: "Public status pages, their JSON and stylesheet.", Handler: s.statusPages},

		// Events.
		{Method: "GET", Pattern: "/api/v1/events", Auth: Perm, Module: ModuleAny, Level: R, Summary: "Search events of the modules you may read.", Handler: s.listEvents},
		{Method: "GET", Pattern: "/api/v1/events/{id}", Auth: Perm, Module: ModuleAny, Level: R, Summary: "Show one event.", Handler: s.getEvent},

		// The security-practices report (handlers_report.go).
		{Method: "GET", Pattern: "/api/v1/report", Auth: Perm, Module: ModuleAny, Level: R, Summary: "The security-practices report: each practice's status with its controls' evidence and what to do, limited to the controls of the modules (and policy tags) you may read (?format=json|html).", Handler: s.getReport, Response: report.Report{}},
		{Method: "GET", Pattern: "/trust", Auth: Public, Summary: "The public security-practices page: the practices of report.publish with their status, the date of their evidence and a public summary (HTML; JSON with Accept: application/json). 404 when none is published.", Handler: s.trust, Response: report.Public{}},
	}
}

func (s *Server) metricsRoute() Route {
	rt := Route{Method: "GET", Pattern: "/metrics", Summary: "Prometheus metrics."}
	if s.d.MetricsPublic {
		rt.Auth = Public
	} else {
		rt.Auth, rt.Module, rt.Level = Perm, access.ModuleMonitoring, access.LevelRead
	}
	h := promhttp.HandlerFor(s.d.Registry, promhttp.HandlerOpts{})
	rt.Handler = func(w http.ResponseWriter, r *http.Request, _ *Call) error {
		h.ServeHTTP(w, r)
		return nil
	}
	return rt
}

func (s *Server) statusPages(w http.ResponseWriter, r *http.Request, _ *Call) error {
	if s.d.StatusPages == nil {
		return &Error{Status: http.StatusNotFound, Code: "not_found", Message: "status pages are not enabled in this server (monitor.enabled)"}
	}
	s.d.StatusPages.ServeHTTP(w, r)
	return nil
}
