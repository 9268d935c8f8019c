package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Detect configures detection (internal/detect): leaky-bucket scenarios
// over the guard's requests and over tailed log files, each overflow a
// ban. See docs/detect.md.
type Detect struct {
	// Logs are the log files to tail, each read by a parser.
	Logs []DetectLog `yaml:"logs"`
	// Parsers are parsers of your own: regular expressions with named
	// groups.
	Parsers []DetectParser `yaml:"parsers"`
	// Scenarios are added to the built-in ones; one with a built-in's
	// name replaces it.
	Scenarios []DetectScenario `yaml:"scenarios"`
	// Disable names built-in scenarios to switch off.
	Disable []string `yaml:"disable"`
	// BanIPv4Prefix and BanIPv6Prefix are the networks a scenario bans
	// around an offending address (IPv4 /32, IPv6 /64 by default).
	BanIPv4Prefix int `yaml:"ban_ipv4_prefix"`
	BanIPv6Prefix int `yaml:"ban_ipv6_prefix"`
	// RepeatWindow is how far back earlier bans of a network count: each
	// one doubles the next ban, up to the scenario's ban_max.
	RepeatWindow Duration `yaml:"repeat_window"`
	// MaxBuckets bounds each scenario's table of buckets; idle ones are
	// forgotten first.
	MaxBuckets int `yaml:"max_buckets"`
}

// DetectLog is one tailed log file.
type DetectLog struct {
	// Path is the file (absolute). Rotation by rename or truncation is
	// followed.
	Path string `yaml:"path"`
	// Parser reads its lines: a built-in (sshd, nginx-access, nginx-error,
	// apache-access, apache-error, postfix, dovecot) or one of parsers.
	Parser string `yaml:"parser"`
	// StartAt is where a file never read before is started: end (only new
	// lines; the default) or start (its whole history).
	StartAt string `yaml:"start_at"`
}

// DetectParser is a user-defined log parser.
type DetectParser struct {
	// Name is how logs and scenarios refer to it.
	Name string `yaml:"name"`
	// Pattern is a Go regular expression with named groups: source (the
	// client address) is required; user, time and status are read when
	// present.
	Pattern string `yaml:"pattern"`
	// Kind is what a matching line is: auth_failure, invalid_user, probe,
	// http_error, ... (scenarios filter on it).
	Kind string `yaml:"kind"`
}

// DetectScenario is a leaky bucket per grouping key: each matching event
// adds one, one leaks out every Leak, and an event that finds the bucket
// holding Capacity overflows it and bans the source.
type DetectScenario struct {
	// Name identifies the scenario in bans, events and metrics.
	Name string `yaml:"name"`
	// From are the event sources counted: guard (the proxy) and parser
	// names (sshd, nginx-access, ...); unset: all.
	From []string `yaml:"from"`
	// Kinds are the event kinds counted (auth_failure, invalid_user,
	// probe, http, http_error, waf, limit, login_limit); unset: all.
	Kinds []string `yaml:"kinds"`
	// Status are HTTP statuses counted: codes such as 401 or classes such
	// as 4xx; unset: any.
	Status []string `yaml:"status"`
	// Sites limits guard events to these sites (their first host name).
	Sites []string `yaml:"sites"`
	// Paths limits HTTP events to paths under these prefixes.
	Paths []string `yaml:"paths"`
	// GroupBy is the bucket key: source (the default) or source_user
	// (one bucket per source and account).
	GroupBy string `yaml:"group_by"`
	// Capacity is how many events the bucket holds; the next one
	// overflows it.
	Capacity int `yaml:"capacity"`
	// Leak is how often one event leaks out of the bucket.
	Leak Duration `yaml:"leak"`
	// Ban is the first ban's length; repeat offenders get it doubled per
	// earlier ban, up to BanMax.
	Ban Duration `yaml:"ban"`
	// BanMax caps the doubling (0: a week, or Ban when that is longer).
	BanMax Duration `yaml:"ban_max"`
}

// Firewall configures kernel enforcement of bans with nftables
// (internal/firewall).
type Firewall struct {
	// Enabled loads the active bans into nftables sets (needs root or
	// CAP_NET_ADMIN).
	Enabled bool `yaml:"enabled"`
	// Table is the inet table Bulwark owns; no other table is touched.
	Table string `yaml:"table"`
	// Forward drops banned sources in the forward hook too (a router or
	// a host of containers), not only traffic to this host.
	Forward bool `yaml:"forward"`
	// Reconcile is how often the whole set is re-asserted.
	Reconcile Duration `yaml:"reconcile"`
}

func defaultDetect() Detect {
	return Detect{
		BanIPv4Prefix: 32, BanIPv6Prefix: 64,
		RepeatWindow: Duration(30 * day),
		MaxBuckets:   100000,
	}
}

func defaultFirewall() Firewall {
	return Firewall{Table: "bulwark", Reconcile: Duration(30 * time.Second)}
}

// Event sources and kinds a scenario may name besides parser names.
var (
	detectKinds = []string{"auth_failure", "invalid_user", "probe", "auth_success", "http", "http_error", "waf", "limit", "login_limit"}
	// BuiltinParsers are the parsers internal/detect/logparse provides.
	BuiltinParsers = []string{"sshd", "nginx-access", "nginx-error", "apache-access", "apache-error", "postfix", "dovecot"}
	nameRE         = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)
	statusRE       = regexp.MustCompile(`^[1-5]([0-9][0-9]|xx)$`)
)

func (d Detect) validate(c *checker) {
	c.intRange("ban_ipv4_prefix", d.BanIPv4Prefix, 8, 32)
	c.intRange("ban_ipv6_prefix", d.BanIPv6Prefix, 16, 128)
	c.durRange("repeat_window", d.RepeatWindow, Duration(time.Hour), Duration(3650*day))
	c.intRange("max_buckets", d.MaxBuckets, 1000, 100000000)
	parsers := map[string]bool{"guard": true}
	for _, p := range BuiltinParsers {
		parsers[p] = true
	}
	for i, p := range d.Parsers {
		if parsers[p.Name] {
			c.errorf(fmt.Sprintf("parsers[%d].name", i), "%q is already a parser (built-in or earlier in the list); give another name", p.Name)
		}
		parsers[p.Name] = true
	}
	seen := map[string]int{}
	for i, l := range d.Logs {
		if l.Parser != "" && !parsers[l.Parser] || l.Parser == "guard" {
			c.errorf(fmt.Sprintf("logs[%d].parser", i), "%q is not a parser: use one of %s or a name from detect.parsers", l.Parser, strings.Join(BuiltinParsers, ", "))
		}
		if j, ok := seen[l.Path]; ok {
			c.errorf(fmt.Sprintf("logs[%d].path", i), "%s is already tailed by logs[%d]", l.Path, j)
		}
		seen[l.Path] = i
	}
	names := map[string]bool{}
	for i, s := range d.Scenarios {
		if names[s.Name] {
			c.errorf(fmt.Sprintf("scenarios[%d].name", i), "%q names two scenarios", s.Name)
		}
		names[s.Name] = true
		for j, f := range s.From {
			if !parsers[f] {
				c.errorf(fmt.Sprintf("scenarios[%d].from[%d]", i, j), "%q is neither guard nor a parser (%s, or one of detect.parsers)", f, strings.Join(BuiltinParsers, ", "))
			}
		}
	}
}

func (l DetectLog) validate(c *checker) {
	if l.Path == "" {
		c.errorf("path", "required: the log file to tail, e.g. /var/log/auth.log")
	}
	c.absPath("path", l.Path)
	if l.Parser == "" {
		c.errorf("parser", "required: %s or a name from detect.parsers", strings.Join(BuiltinParsers, ", "))
	}
	if l.StartAt != "" {
		c.oneOf("start_at", l.StartAt, "end", "start")
	}
}

func (p DetectParser) validate(c *checker) {
	if !nameRE.MatchString(p.Name) {
		c.errorf("name", "%q must be lower-case letters, digits, '.', '_' or '-' (at most 63)", p.Name)
	}
	re, err := regexp.Compile(p.Pattern)
	switch {
	case p.Pattern == "":
		c.errorf("pattern", "required: a regular expression with a named group (?P<source>...) for the client address")
	case err != nil:
		c.errorf("pattern", "is not a valid regular expression: %v", err)
	case re.SubexpIndex("source") < 0:
		c.errorf("pattern", "has no named group source: write (?P<source>...) around the client address")
	}
	if p.Kind == "" {
		c.errorf("kind", "required: what a matching line is, such as auth_failure")
	} else if !nameRE.MatchString(p.Kind) {
		c.errorf("kind", "%q must be lower-case letters, digits, '.', '_' or '-'", p.Kind)
	}
}

func (s DetectScenario) validate(c *checker) {
	if !nameRE.MatchString(s.Name) {
		c.errorf("name", "%q must be lower-case letters, digits, '.', '_' or '-' (at most 63)", s.Name)
	}
	for i, k := range s.Kinds {
		if !nameRE.MatchString(k) {
			c.errorf(fmt.Sprintf("kinds[%d]", i), "%q is not a kind such as %s", k, strings.Join(detectKinds, ", "))
		}
	}
	for i, st := range s.Status {
		if !statusRE.MatchString(st) {
			c.errorf(fmt.Sprintf("status[%d]", i), "%q is not an HTTP status (401) or class (4xx)", st)
		}
	}
	for i, p := range s.Paths {
		if !strings.HasPrefix(p, "/") {
			c.errorf(fmt.Sprintf("paths[%d]", i), "%q must start with /", p)
		}
	}
	if s.GroupBy != "" {
		c.oneOf("group_by", s.GroupBy, "source", "source_user")
	}
	c.intRange("capacity", s.Capacity, 1, 1000000)
	c.durRange("leak", s.Leak, Duration(time.Millisecond), Duration(day))
	c.durRange("ban", s.Ban, Duration(time.Second), Duration(365*day))
	if s.BanMax != 0 && s.BanMax < s.Ban {
		c.errorf("ban_max", "%s is shorter than ban (%s)", s.BanMax, s.Ban)
	}
	c.durRange("ban_max", s.BanMax, 0, Duration(3650*day))
}

// StatusMatches reports whether an HTTP status matches a validated status
// filter entry ("401" or "4xx").
func StatusMatches(filter string, status int) bool {
	if strings.HasSuffix(filter, "xx") {
		return status/100 == int(filter[0]-'0')
	}
	n, err := strconv.Atoi(filter)
	return err == nil && n == status
}

func (f Firewall) validate(c *checker) {
	if !f.Enabled {
		return
	}
	if !nameRE.MatchString(f.Table) {
		c.errorf("table", "%q is not a table name (lower-case letters, digits, '.', '_', '-')", f.Table)
	}
	c.durRange("reconcile", f.Reconcile, Duration(time.Second), Duration(day))
}
