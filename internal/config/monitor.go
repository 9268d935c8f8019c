package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Monitor configures supervision (internal/monitor): host metrics, their
// history, service checks and named processes. See docs/monitor.md.
type Monitor struct {
	// Enabled samples host metrics, runs the checks and evaluates the
	// alert rules inside `bulwark up`, and serves /status.
	Enabled bool `yaml:"enabled"`
	// Interval is how often host metrics are sampled and kept as history.
	Interval Duration `yaml:"interval"`
	// History is how long samples are kept at each resolution.
	History MonitorHistory `yaml:"history"`
	// Processes are process names (as in /proc/PID/comm) reported up or
	// down with their restart count, e.g. nginx, postgres.
	Processes []string `yaml:"processes"`
	// Checks are the service checks.
	Checks []Check `yaml:"checks"`
}

// MonitorHistory is the retention of each resolution of metric history.
type MonitorHistory struct {
	// Raw keeps every sample this long.
	Raw Duration `yaml:"raw"`
	// Minute keeps 1-minute aggregates this long.
	Minute Duration `yaml:"minute"`
	// Hour keeps 1-hour aggregates this long.
	Hour Duration `yaml:"hour"`
}

// Check is one service check. Exactly one kind (http, tcp, ping, dns, ssh,
// tls, postgres, mysql, process, systemd, file, nagios) is set.
type Check struct {
	// Name identifies the check in results, events, alert rules and status
	// pages: letters, digits, '.', '_' and '-'.
	Name string `yaml:"name"`
	// Interval is the time between runs; runs of all checks are spread
	// over their intervals rather than fired together.
	Interval Duration `yaml:"interval"`
	// Timeout bounds one attempt.
	Timeout Duration `yaml:"timeout"`
	// Retries is how many times a failed attempt is tried again, at once,
	// before the run counts as failed.
	Retries int `yaml:"retries"`
	// HTTP checks a URL.
	HTTP HTTPCheck `yaml:"http"`
	// TCP checks that a port accepts connections.
	TCP TCPCheck `yaml:"tcp"`
	// Ping sends ICMP echo requests.
	Ping PingCheck `yaml:"ping"`
	// DNS resolves a name and checks the answer.
	DNS DNSCheck `yaml:"dns"`
	// SSH reads a server's banner.
	SSH SSHCheck `yaml:"ssh"`
	// TLS checks a certificate's validity and expiry on any host:port.
	TLS TLSCheck `yaml:"tls"`
	// Postgres connects to PostgreSQL, runs a query and checks replication.
	Postgres DBCheck `yaml:"postgres"`
	// MySQL connects to MariaDB or MySQL, runs a query and checks
	// replication.
	MySQL DBCheck `yaml:"mysql"`
	// Process checks that a named process runs.
	Process ProcessCheck `yaml:"process"`
	// Systemd checks that a unit is active.
	Systemd SystemdCheck `yaml:"systemd"`
	// File checks that a file was modified recently.
	File FileCheck `yaml:"file"`
	// Nagios runs a Nagios-compatible plugin.
	Nagios NagiosCheck `yaml:"nagios"`
}

// HTTPCheck requests a URL and checks the answer.
type HTTPCheck struct {
	// URL is the http:// or https:// address requested.
	URL string `yaml:"url"`
	// Method is the request method (default GET).
	Method string `yaml:"method"`
	// Headers are request headers, each "Name: value".
	Headers []string `yaml:"headers"`
	// Body is the request body.
	Body string `yaml:"body"`
	// Status is the expected status code (0: any 2xx or 3xx).
	Status int `yaml:"status"`
	// Contains is a substring the body must contain.
	Contains string `yaml:"contains"`
	// Regex is a regular expression (RE2) the body must match.
	Regex string `yaml:"regex"`
	// JSON is a condition on the body parsed as JSON:
	// `$.path.to[0].field OP value`, OP one of == != < <= > >= =~, or a
	// bare path that must exist.
	JSON string `yaml:"json"`
	// MaxLatency fails the check when the answer takes longer.
	MaxLatency Duration `yaml:"max_latency"`
	// CertExpiry fails an https check whose certificate expires within
	// this long (default 14d; 0 with https: the default).
	CertExpiry Duration `yaml:"cert_expiry"`
	// FollowRedirects follows up to 10 redirects; otherwise a redirect is
	// the answer checked.
	FollowRedirects bool `yaml:"follow_redirects"`
	// InsecureSkipVerify accepts any certificate (expiry is still checked).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// TCPCheck connects to a port.
type TCPCheck struct {
	// Address is host:port.
	Address string `yaml:"address"`
}

// PingCheck sends ICMP echo requests.
type PingCheck struct {
	// Host is a name or address.
	Host string `yaml:"host"`
	// Count is the number of echo requests (default 3); the check passes
	// when at least one answer comes back.
	Count int `yaml:"count"`
	// MaxLoss fails the check above this share of lost packets, in
	// percent; 0 (unset) means 100: fail only when every packet is lost.
	MaxLoss int `yaml:"max_loss"`
}

// DNSCheck resolves a name.
type DNSCheck struct {
	// Name is the name looked up.
	Name string `yaml:"name"`
	// Type is the record type: A, AAAA, CNAME, MX, TXT, NS (default A).
	Type string `yaml:"type"`
	// Server is the resolver's host:port (default: the system's).
	Server string `yaml:"server"`
	// Expect lists answers at least one of which must be returned (empty:
	// any answer).
	Expect []string `yaml:"expect"`
}

// SSHCheck reads an SSH server's identification banner.
type SSHCheck struct {
	// Address is host:port (port 22 when left out).
	Address string `yaml:"address"`
	// Contains is a substring the banner must contain (e.g. OpenSSH_9).
	Contains string `yaml:"contains"`
}

// TLSCheck connects with TLS and checks the certificate.
type TLSCheck struct {
	// Address is host:port.
	Address string `yaml:"address"`
	// ServerName is the name verified (default: the host of Address).
	ServerName string `yaml:"server_name"`
	// Expiry fails the check when the certificate expires within this
	// long (default 14d).
	Expiry Duration `yaml:"expiry"`
	// InsecureSkipVerify checks expiry only, not the chain or name.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// DBCheck connects to a database server.
type DBCheck struct {
	// DSN is the connection string: postgres://USER@HOST:PORT/DB?... or
	// mysql://USER[:PASSWORD]@HOST[:PORT]/DB, as for database dumps.
	DSN Secret `yaml:"dsn"`
	// Query is run and must succeed (default SELECT 1).
	Query string `yaml:"query"`
	// MaxLag fails a replica whose replication lag is longer (0: lag is
	// reported, not judged).
	MaxLag Duration `yaml:"max_lag"`
	// MinReplicas fails a primary with fewer connected replicas.
	MinReplicas int `yaml:"min_replicas"`
}

// ProcessCheck checks for a process by name.
type ProcessCheck struct {
	// Name is the process name as in /proc/PID/comm (15 characters at most).
	Name string `yaml:"name"`
	// Min is the fewest processes of that name (default 1).
	Min int `yaml:"min"`
}

// SystemdCheck checks a unit's state.
type SystemdCheck struct {
	// Unit is the unit name, e.g. nginx.service.
	Unit string `yaml:"unit"`
}

// FileCheck checks a file's modification time.
type FileCheck struct {
	// Path is the absolute path.
	Path string `yaml:"path"`
	// MaxAge fails when the file was last modified longer ago.
	MaxAge Duration `yaml:"max_age"`
}

// NagiosCheck runs a Nagios-compatible plugin: exit 0 OK, 1 WARNING,
// 2 CRITICAL, 3 UNKNOWN; the first line of output is the message and what
// follows '|' performance data.
type NagiosCheck struct {
	// Command is the plugin and its arguments, run without a shell.
	Command []string `yaml:"command"`
	// WarningIsFailure counts WARNING (1) as a failure (default: a pass
	// with a warning).
	WarningIsFailure bool `yaml:"warning_is_failure"`
}

// Alerts configures alert rules and the channels notifications go to
// (internal/monitor, internal/notify). See docs/monitor.md.
type Alerts struct {
	// Channels are where notifications are delivered.
	Channels []Channel `yaml:"channels"`
	// Rules fire alerts on checks and metrics.
	Rules []AlertRule `yaml:"rules"`
	// Watchdog sends a heartbeat so that silence from Bulwark is noticed.
	Watchdog Watchdog `yaml:"watchdog"`
}

// Channel is one notification destination. Exactly one kind is set.
type Channel struct {
	// Name identifies the channel in rules and `bulwark alert test`.
	Name string `yaml:"name"`
	// Email sends mail over SMTP.
	Email EmailChannel `yaml:"email"`
	// Webhook posts JSON signed with HMAC-SHA-256.
	Webhook WebhookChannel `yaml:"webhook"`
	// Slack posts to a Slack or Mattermost incoming webhook.
	Slack SlackChannel `yaml:"slack"`
}

// EmailChannel sends mail through an SMTP server.
type EmailChannel struct {
	// Server is the SMTP server's host:port.
	Server string `yaml:"server"`
	// TLS is starttls (required; the default), tls (implicit, port 465)
	// or none.
	TLS string `yaml:"tls"`
	// Username authenticates when set (PLAIN or LOGIN, over TLS only).
	Username string `yaml:"username"`
	// Password is the SMTP password.
	Password Secret `yaml:"password"`
	// From is the sender address.
	From string `yaml:"from"`
	// To are the recipients.
	To []string `yaml:"to"`
	// InsecureSkipVerify accepts any server certificate.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// WebhookChannel posts JSON to a URL.
type WebhookChannel struct {
	// URL is the http:// or https:// address posted to.
	URL string `yaml:"url"`
	// Secret keys the HMAC-SHA-256 of the body sent in the
	// X-Bulwark-Signature header ("sha256=" and the hex digest).
	Secret Secret `yaml:"secret"`
	// Headers are extra request headers, each "Name: value".
	Headers []string `yaml:"headers"`
}

// SlackChannel posts to a Slack or Mattermost incoming webhook.
type SlackChannel struct {
	// URL is the incoming webhook's address; it carries its credential,
	// so it is a secret.
	URL Secret `yaml:"url"`
}

// AlertRule fires an alert on a check or on a metric. One of Check and
// Metric is set.
type AlertRule struct {
	// Name identifies the rule and the alerts it fires.
	Name string `yaml:"name"`
	// Check is the name of a check, or "*" for every check; the alert is
	// per check.
	Check string `yaml:"check"`
	// Failures is the number of consecutive failed runs before firing
	// (default 1).
	Failures int `yaml:"failures"`
	// Metric is a condition on a host metric, such as
	// `filesystem_used_percent{mountpoint="/"} > 90`; see docs/monitor.md
	// for the names. The alert is per matching series.
	Metric string `yaml:"metric"`
	// For is how long the condition must hold before firing.
	For Duration `yaml:"for"`
	// Severity is critical, error, warning or info.
	Severity string `yaml:"severity"`
	// Channels are notified when the alert fires and resolves.
	Channels []string `yaml:"channels"`
	// Repeat sends the notification again this often while the alert is
	// firing and unacknowledged (0: never).
	Repeat Duration `yaml:"repeat"`
	// Escalate notifies further channels when the alert stays
	// unacknowledged.
	Escalate Escalation `yaml:"escalate"`
}

// Escalation is the second step of an alert left unacknowledged.
type Escalation struct {
	// After is how long an alert may stay unacknowledged.
	After Duration `yaml:"after"`
	// Channels are notified then.
	Channels []string `yaml:"channels"`
}

// Watchdog sends a heartbeat on a schedule, so that the people on call
// learn when Bulwark itself has gone silent (a dead man's switch).
type Watchdog struct {
	// Interval is the time between heartbeats (0: off).
	Interval Duration `yaml:"interval"`
	// URL receives an HTTP GET each heartbeat (a healthchecks.io-style
	// ping address).
	URL string `yaml:"url"`
	// Channels receive each heartbeat as a notification too.
	Channels []string `yaml:"channels"`
}

func defaultMonitor() Monitor {
	return Monitor{Enabled: true, Interval: Duration(15 * time.Second),
		History: MonitorHistory{Raw: Duration(48 * time.Hour), Minute: Duration(30 * day), Hour: Duration(400 * day)}}
}

// Check defaults, applied by Defaults.
const (
	DefaultCheckInterval = 60 * time.Second
	DefaultCheckTimeout  = 10 * time.Second
	DefaultCertExpiry    = 14 * day
)

// Kind names the kind of check set ("" when none).
func (ch Check) Kind() string {
	kinds := ch.kinds()
	if len(kinds) != 1 {
		return ""
	}
	return kinds[0]
}

func (ch Check) kinds() []string {
	var k []string
	add := func(set bool, name string) {
		if set {
			k = append(k, name)
		}
	}
	add(ch.HTTP.URL != "", "http")
	add(ch.TCP.Address != "", "tcp")
	add(ch.Ping.Host != "", "ping")
	add(ch.DNS.Name != "", "dns")
	add(ch.SSH.Address != "", "ssh")
	add(ch.TLS.Address != "", "tls")
	add(ch.Postgres.DSN.IsSet(), "postgres")
	add(ch.MySQL.DSN.IsSet(), "mysql")
	add(ch.Process.Name != "", "process")
	add(ch.Systemd.Unit != "", "systemd")
	add(ch.File.Path != "", "file")
	add(len(ch.Nagios.Command) > 0, "nagios")
	return k
}

// WithDefaults returns the check with its unset interval and timeout
// filled in.
func (ch Check) WithDefaults() Check {
	if ch.Interval == 0 {
		ch.Interval = Duration(DefaultCheckInterval)
	}
	if ch.Timeout == 0 {
		ch.Timeout = Duration(DefaultCheckTimeout)
		if ch.Timeout > ch.Interval {
			ch.Timeout = ch.Interval
		}
	}
	return ch
}

var (
	objectNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	methodRE     = regexp.MustCompile(`^[A-Z]+$`)
	headerNameRE = regexp.MustCompile(`^[A-Za-z0-9!#$%&'*+.^_|~-]+$`)
)

func (m Monitor) validate(c *checker) {
	c.durRange("interval", m.Interval, Duration(time.Second), Duration(time.Hour))
	c.durRange("history.raw", m.History.Raw, Duration(time.Hour), Duration(30*day))
	c.durRange("history.minute", m.History.Minute, m.History.Raw, Duration(400*day))
	c.durRange("history.hour", m.History.Hour, m.History.Minute, Duration(3650*day))
	for i, p := range m.Processes {
		if p == "" || len(p) > 15 || strings.ContainsAny(p, "/\n") {
			c.errorf(fmt.Sprintf("processes[%d]", i), "%q is not a process name as in /proc/PID/comm (1 to 15 characters, no /)", p)
		}
	}
	uniqueNames(c, "checks", "check", len(m.Checks), func(i int) string { return m.Checks[i].Name })
}

// uniqueNames checks the names of a list's items: each well-formed and
// used once. It returns the set of names.
func uniqueNames(c *checker, list, what string, n int, name func(int) string) map[string]bool {
	seen := map[string]bool{}
	for i := range n {
		f, v := fmt.Sprintf("%s[%d].name", list, i), name(i)
		if !objectNameRE.MatchString(v) {
			c.errorf(f, "%q: a %s needs a name of letters, digits, '.', '_' and '-' (at most 64)", v, what)
		} else if seen[v] {
			c.errorf(f, "%q is used by two %ss", v, what)
		}
		seen[v] = true
	}
	return seen
}

// httpURL checks an http:// or https:// address.
func httpURL(c *checker, field, v string) {
	if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		c.errorf(field, "%q is not an http:// or https:// URL", v)
	}
}

func (ch Check) validate(c *checker) {
	switch k := ch.kinds(); len(k) {
	case 0:
		c.errorf("", "says nothing to check: set one of http, tcp, ping, dns, ssh, tls, postgres, mysql, process, systemd, file, nagios")
	case 1:
	default:
		c.errorf("", "sets %s: one check does one thing; split it into %d checks", strings.Join(k, " and "), len(k))
	}
	if ch.Interval != 0 {
		c.durRange("interval", ch.Interval, Duration(time.Second), Duration(day))
	}
	if ch.Timeout != 0 {
		c.durRange("timeout", ch.Timeout, Duration(10*time.Millisecond), Duration(10*time.Minute))
		if in := ch.WithDefaults().Interval; ch.Timeout > in {
			c.errorf("timeout", "%s is longer than the interval %s", ch.Timeout, in)
		}
	}
	c.intRange("retries", ch.Retries, 0, 10)
	switch ch.Kind() {
	case "http":
		h := ch.HTTP
		httpURL(c, "http.url", h.URL)
		if h.Status != 0 {
			c.intRange("http.status", h.Status, 100, 599)
		}
		if h.Method != "" && !methodRE.MatchString(h.Method) {
			c.errorf("http.method", "%q is not an HTTP method such as GET, HEAD or POST", h.Method)
		}
		headers(c, "http.headers", h.Headers)
		if h.Regex != "" {
			if _, err := regexp.Compile(h.Regex); err != nil {
				c.errorf("http.regex", "%v", err)
			}
		}
	case "tcp":
		hostPort(c, "tcp.address", ch.TCP.Address)
	case "ping":
		if ch.Ping.Count != 0 {
			c.intRange("ping.count", ch.Ping.Count, 1, 100)
		}
		c.intRange("ping.max_loss", ch.Ping.MaxLoss, 0, 100)
	case "dns":
		if ch.DNS.Type != "" {
			c.oneOf("dns.type", ch.DNS.Type, "A", "AAAA", "CNAME", "MX", "TXT", "NS")
		}
		if ch.DNS.Server != "" {
			hostPort(c, "dns.server", ch.DNS.Server)
		}
	case "ssh":
		if a := ch.SSH.Address; strings.Contains(a, ":") && net.ParseIP(a) == nil {
			if _, _, err := net.SplitHostPort(a); err != nil {
				c.errorf("ssh.address", "%q: give host:port, or a host alone for port 22", a)
			}
		}
	case "tls":
		hostPort(c, "tls.address", ch.TLS.Address)
	case "postgres", "mysql":
		db := ch.Postgres
		if ch.Kind() == "mysql" {
			db = ch.MySQL
		}
		c.intRange(ch.Kind()+".min_replicas", db.MinReplicas, 0, 100)
	case "process":
		if len(ch.Process.Name) > 15 || strings.Contains(ch.Process.Name, "/") {
			c.errorf("process.name", "%q is not a process name as in /proc/PID/comm (at most 15 characters, no /)", ch.Process.Name)
		}
		c.intRange("process.min", ch.Process.Min, 0, 100000)
	case "file":
		c.absPath("file.path", ch.File.Path)
		if ch.File.MaxAge == 0 {
			c.errorf("file.max_age", "required: how recently the file must have been modified, e.g. 25h")
		}
	case "nagios":
		if !isAbs(ch.Nagios.Command[0]) {
			c.errorf("nagios.command[0]", "%q: give the plugin's absolute path, e.g. /usr/lib/nagios/plugins/check_disk", ch.Nagios.Command[0])
		}
	}
}

// headers checks "Name: value" lines.
func headers(c *checker, field string, hs []string) {
	for i, h := range hs {
		name, _, ok := strings.Cut(h, ":")
		if !ok || !headerNameRE.MatchString(strings.TrimSpace(name)) || strings.ContainsAny(h, "\r\n") {
			c.errorf(fmt.Sprintf("%s[%d]", field, i), "%q is not a header line \"Name: value\"", h)
		}
	}
}

func hostPort(c *checker, field, v string) {
	if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
		c.errorf(field, "%q is not host:port, e.g. 127.0.0.1:5432 or db.example.net:5432", v)
	}
}

func (a Alerts) validate(c *checker) {
	channels := uniqueNames(c, "channels", "channel", len(a.Channels), func(i int) string { return a.Channels[i].Name })
	refs := func(field string, names []string) {
		for i, n := range names {
			if !channels[n] {
				c.errorf(fmt.Sprintf("%s[%d]", field, i), "%q is not a channel in alerts.channels", n)
			}
		}
	}
	uniqueNames(c, "rules", "rule", len(a.Rules), func(i int) string { return a.Rules[i].Name })
	for i, r := range a.Rules {
		f := fmt.Sprintf("rules[%d]", i)
		refs(f+".channels", r.Channels)
		refs(f+".escalate.channels", r.Escalate.Channels)
	}
	refs("watchdog.channels", a.Watchdog.Channels)
}

func (ch Channel) validate(c *checker) {
	var kinds []string
	if ch.Email.Server != "" {
		kinds = append(kinds, "email")
	}
	if ch.Webhook.URL != "" {
		kinds = append(kinds, "webhook")
	}
	if ch.Slack.URL.IsSet() {
		kinds = append(kinds, "slack")
	}
	if len(kinds) != 1 {
		c.errorf("", "must set exactly one of email, webhook and slack; got %d", len(kinds))
	}
	if e := ch.Email; e.Server != "" {
		hostPort(c, "email.server", e.Server)
		if e.TLS != "" {
			c.oneOf("email.tls", e.TLS, "starttls", "tls", "none")
		}
		if e.From == "" {
			c.errorf("email.from", "required: the sender address")
		}
		if len(e.To) == 0 {
			c.errorf("email.to", "required: at least one recipient")
		}
		if e.Username != "" && e.TLS == "none" {
			c.errorf("email.username", "authentication over an unencrypted connection would send the password in clear; set tls to starttls or tls")
		}
	}
	if w := ch.Webhook; w.URL != "" {
		httpURL(c, "webhook.url", w.URL)
		headers(c, "webhook.headers", w.Headers)
	}
}

func (r AlertRule) validate(c *checker) {
	switch {
	case r.Check == "" && r.Metric == "":
		c.errorf("", "watches nothing: set check (a check's name, or \"*\") or metric (a condition such as 'filesystem_used_percent > 90')")
	case r.Check != "" && r.Metric != "":
		c.errorf("", "sets both check and metric; one rule watches one thing")
	}
	if r.Metric != "" && r.Failures != 0 {
		c.errorf("failures", "counts failed check runs; a metric rule uses for")
	}
	c.intRange("failures", r.Failures, 0, 1000)
	if r.Severity != "" {
		c.oneOf("severity", r.Severity, "critical", "error", "warning", "info")
	}
	if len(r.Channels) == 0 {
		c.errorf("channels", "required: where the alert is sent")
	}
	if r.Repeat != 0 {
		c.durRange("repeat", r.Repeat, Duration(time.Minute), Duration(30*day))
	}
	if (r.Escalate.After == 0) != (len(r.Escalate.Channels) == 0) {
		c.errorf("escalate", "needs both after and channels")
	}
}

func (w Watchdog) validate(c *checker) {
	if w.Interval == 0 {
		if w.URL != "" || len(w.Channels) > 0 {
			c.errorf("interval", "required when url or channels are set, e.g. 5m")
		}
		return
	}
	c.durRange("interval", w.Interval, Duration(10*time.Second), Duration(day))
	if w.URL == "" && len(w.Channels) == 0 {
		c.errorf("", "sends its heartbeat nowhere: set url or channels")
	}
	if w.URL != "" {
		httpURL(c, "url", w.URL)
	}
}

// StatusPages configures the public status pages (docs/monitor.md): groups
// of checks shown without login at /status, exported as static files and
// pushed elsewhere so they stay up when Bulwark is down.
type StatusPages struct {
	// Title heads every page.
	Title string `yaml:"title"`
	// Pages are the pages; empty: one page, "main", of every check.
	Pages []StatusPage `yaml:"pages"`
	// Publish lists where the exported pages are pushed on every change.
	Publish []StatusPublish `yaml:"publish"`
}

// StatusPage is one public page.
type StatusPage struct {
	// Name is the page's address: /status/NAME ("main" is /status).
	Name string `yaml:"name"`
	// Title is the page's heading (default: StatusPages.Title).
	Title string `yaml:"title"`
	// Description is a line under the title.
	Description string `yaml:"description"`
	// Checks are the checks shown, by name, in this order.
	Checks []string `yaml:"checks"`
}

// StatusPublish is one destination of the exported pages. Exactly one of
// Dir, S3 and Vault is set.
type StatusPublish struct {
	// Dir is a directory (a mounted share, a web server's root on another
	// disk) the files are written to.
	Dir string `yaml:"dir"`
	// S3 is a bucket served as a static site.
	S3 StatusS3 `yaml:"s3"`
	// Vault is a Bulwark vault, which serves the pages to anyone at
	// https://HOST:PORT/_status/.
	Vault StatusVault `yaml:"vault"`
}

// StatusVault is a vault the pages are pushed to.
type StatusVault struct {
	// URL is the vault's https://HOST:PORT.
	URL string `yaml:"url"`
	// Token is a status token of the vault (bulwark vault token add NAME
	// --status).
	Token Secret `yaml:"token"`
	// CACert is a PEM file of certificates to trust for the vault (its
	// DATA/tls/cert.pem when self-signed); empty: the system's roots.
	CACert string `yaml:"ca_cert"`
}

// StatusS3 is an S3 bucket (or prefix) the pages are uploaded to.
type StatusS3 struct {
	// Endpoint is the server's host:port (s3.amazonaws.com, or another
	// provider's).
	Endpoint string `yaml:"endpoint"`
	// Bucket is the bucket's name.
	Bucket string `yaml:"bucket"`
	// Prefix is prepended to every object's name.
	Prefix string `yaml:"prefix"`
	// Region is the bucket's region, when the provider needs it.
	Region string `yaml:"region"`
	// AccessKey and SecretKey are the credentials.
	AccessKey Secret `yaml:"access_key"`
	SecretKey Secret `yaml:"secret_key"`
	// Insecure speaks plain HTTP (a server on a private network).
	Insecure bool `yaml:"insecure"`
}

func defaultStatus() StatusPages { return StatusPages{Title: "Service status"} }

func (sp StatusPages) validate(c *checker) {
	if strings.TrimSpace(sp.Title) == "" {
		c.errorf("title", "required: the heading of the status pages")
	}
	names := uniqueNames(c, "pages", "page", len(sp.Pages), func(i int) string { return sp.Pages[i].Name })
	for i, p := range sp.Pages {
		if p.Name == "status.css" || p.Name == "status.json" || p.Name == "index.html" {
			c.errorf(fmt.Sprintf("pages[%d].name", i), "%q is the name of a file beside the pages; choose another", p.Name)
		}
	}
	if len(sp.Pages) > 0 && !names["main"] {
		c.errorf("pages", "needs a page named main: it is served at /status and exported as index.html")
	}
	for i, p := range sp.Publish {
		f := fmt.Sprintf("publish[%d]", i)
		set := 0
		for _, b := range []bool{p.Dir != "", p.S3.Bucket != "", p.Vault.URL != ""} {
			if b {
				set++
			}
		}
		switch {
		case set > 1:
			c.errorf(f, "sets more than one of dir, s3 and vault; one destination per entry")
		case p.Vault.URL != "":
			if u, err := url.Parse(p.Vault.URL); err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
				c.errorf(f+".vault.url", "%q: give the vault's https://HOST:PORT", p.Vault.URL)
			}
			if !p.Vault.Token.IsSet() {
				c.errorf(f+".vault.token", "required: a status token of the vault (bulwark vault token add NAME --status)")
			}
			c.absPath(f+".vault.ca_cert", p.Vault.CACert)
		case p.Dir != "":
			c.absPath(f+".dir", p.Dir)
		case p.S3.Bucket != "":
			if p.S3.Endpoint == "" {
				c.errorf(f+".s3.endpoint", "required: the S3 server's host:port, e.g. s3.eu-central-1.amazonaws.com")
			}
			if !p.S3.AccessKey.IsSet() || !p.S3.SecretKey.IsSet() {
				c.errorf(f+".s3", "needs access_key and secret_key")
			}
		default:
			c.errorf(f, "says nowhere to publish: set dir, s3 or vault")
		}
	}
}

// monitorRefs checks the names that alert rules and status pages give of
// checks.
func monitorRefs(c *checker, cfg Config) {
	checks := map[string]bool{}
	for _, ch := range cfg.Monitor.Checks {
		checks[ch.Name] = true
	}
	for i, r := range cfg.Alerts.Rules {
		if r.Check != "" && r.Check != "*" && !checks[r.Check] {
			c.errorf(fmt.Sprintf("alerts.rules[%d].check", i), "%q is not a check in monitor.checks", r.Check)
		}
	}
	for i, p := range cfg.Status.Pages {
		for j, name := range p.Checks {
			if !checks[name] {
				c.errorf(fmt.Sprintf("status.pages[%d].checks[%d]", i, j), "%q is not a check in monitor.checks", name)
			}
		}
	}
}
