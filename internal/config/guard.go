package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"reflect"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/bulwarkhq/bulwark/internal/netindex"
)

// Guard configures the protecting reverse proxy: `bulwark guard` runs it
// alone, `bulwark up` runs it when sites are configured. See docs/guard.md.
type Guard struct {
	// Listen is the host:port of the plain-HTTP listener. Empty: none.
	Listen string `yaml:"listen"`
	// ListenTLS is the host:port of the HTTPS listener, which presents each
	// site's certificate by SNI and speaks HTTP/2. Empty: none.
	ListenTLS string `yaml:"listen_tls"`
	// TrustedProxies are the addresses (CIDRs) of proxies in front of the
	// guard whose X-Forwarded-For and Forwarded headers are believed.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ForwardedHeader is the header the trusted proxies write: "auto" (or
	// empty: X-Forwarded-For when present, else Forwarded),
	// "x-forwarded-for" or "forwarded" (the other is then never read).
	ForwardedHeader string `yaml:"forwarded_header"`
	// AccessLog is where the JSON access log goes: a file (absolute path,
	// appended to), "stdout", or "off".
	AccessLog string `yaml:"access_log"`
	// Limits are the per-source limits every site starts from.
	Limits GuardLimits `yaml:"limits"`
	// Timeouts and sizes against slow and oversized requests.
	Timeouts GuardTimeouts `yaml:"timeouts"`
	// Upstreams sets how upstreams are reached and when one is skipped.
	Upstreams GuardUpstreams `yaml:"upstreams"`
	// Allow lists addresses and CIDRs that bypass limits, bans and the
	// deny list.
	Allow []string `yaml:"allow"`
	// Deny lists addresses and CIDRs whose connections are closed at once.
	Deny []string `yaml:"deny"`
	// Sites are the protected sites, chosen by the request's host name.
	Sites []GuardSite `yaml:"sites"`
}

// GuardLimits are per-source limits. A source is a client address cut to
// a prefix (IPv4 /32 and IPv6 /64 by default, since one IPv6 host usually
// owns a whole /64).
type GuardLimits struct {
	// Rate is requests per second per source; 0: unlimited.
	Rate int `yaml:"rate"`
	// Burst is how many requests above Rate a source may send at once.
	Burst int `yaml:"burst"`
	// Connections caps a source's open connections, counted at accept
	// (before the TLS handshake); 0: unlimited.
	Connections int `yaml:"connections"`
	// MaxConnections caps all open connections together.
	MaxConnections int `yaml:"max_connections"`
	// IPv4Prefix and IPv6Prefix are the prefix lengths that make a source.
	IPv4Prefix int `yaml:"ipv4_prefix"`
	IPv6Prefix int `yaml:"ipv6_prefix"`
	// MaxSources bounds each limit table; idle sources are forgotten first.
	MaxSources int `yaml:"max_sources"`
}

// GuardTimeouts bound slow and oversized requests.
type GuardTimeouts struct {
	// Header is the time a client has to send a request's headers
	// (slowloris).
	Header Duration `yaml:"header"`
	// Idle closes a keep-alive connection with no request for this long.
	Idle Duration `yaml:"idle"`
	// UpgradeIdle closes an upgraded (WebSocket) connection that carried
	// nothing in either direction for this long; 0: never.
	UpgradeIdle Duration `yaml:"upgrade_idle"`
	// MinBodyRate is the slowest rate, in bytes per second, at which a
	// request body must keep arriving, bursts and stalls smoothed over
	// BodyGrace (slow POST). A large upload at any decent rate is never
	// cut off.
	MinBodyRate Size `yaml:"min_body_rate"`
	// BodyGrace is the slack on MinBodyRate: how long a body may stall,
	// and at most how much a burst counts for later (internal/guard/body.go).
	BodyGrace Duration `yaml:"body_grace"`
	// MaxHeaderBytes caps the request line and headers together.
	MaxHeaderBytes Size `yaml:"max_header_bytes"`
	// MaxBodyBytes caps request bodies (a site may set its own).
	MaxBodyBytes Size `yaml:"max_body_bytes"`
}

// GuardUpstreams configures the connections to upstreams.
type GuardUpstreams struct {
	// FailAfter is how many failures in a row mark an upstream down.
	FailAfter int `yaml:"fail_after"`
	// FailTimeout is how long a down upstream is skipped.
	FailTimeout Duration `yaml:"fail_timeout"`
	// DialTimeout bounds connecting to an upstream.
	DialTimeout Duration `yaml:"dial_timeout"`
	// ResponseHeaderTimeout bounds the wait for an upstream's response
	// headers.
	ResponseHeaderTimeout Duration `yaml:"response_header_timeout"`
	// IdleConnections is how many idle connections are kept per upstream.
	IdleConnections int `yaml:"idle_connections"`
}

// GuardSite is one protected site.
type GuardSite struct {
	// Hosts are the host names it answers (exact, or "*.example.com" for
	// any subdomain).
	Hosts []string `yaml:"hosts"`
	// Upstreams are http:// or https:// URLs, used in turn.
	Upstreams []string `yaml:"upstreams"`
	// TLS is the site's certificate on listen_tls.
	TLS TLS `yaml:"tls"`
	// Limits override the guard's per-source limits for this site
	// (fields left 0 inherit them).
	Limits GuardSiteLimits `yaml:"limits"`
	// MaxBodyBytes overrides timeouts.max_body_bytes.
	MaxBodyBytes Size `yaml:"max_body_bytes"`
	// Bandwidth caps the bytes per second the site sends to all clients
	// together; 0: unlimited. A runtime shaping rule naming the site and
	// no client replaces it (docs/guard.md#shaping).
	Bandwidth Size `yaml:"bandwidth"`
	// ClientBandwidth caps the bytes per second the site sends to each
	// source; 0: unlimited. A runtime shaping rule matching the client
	// replaces it.
	ClientBandwidth Size `yaml:"client_bandwidth"`
	// AccountHeader is the response header in which the upstream names
	// the signed-in account, for shaping rules by account and the access
	// log; the guard removes it from the response. Empty:
	// X-Bulwark-Account; "off": none.
	AccountHeader string `yaml:"account_header"`
	// WAF inspects requests with the OWASP Core Rule Set: off (or unset),
	// detect (count and log matches) or block (403).
	WAF string `yaml:"waf"`
	// WAFOptions tune the inspection.
	WAFOptions GuardWAF `yaml:"waf_options"`
	// Logins are the site's login endpoints, each with a limit on tries
	// per account.
	Logins []GuardLogin `yaml:"logins"`
}

// GuardLogin limits the tries per account at one login endpoint: at most
// Tries per Window for an account, and NewAccountTries for an account the
// guard first saw log in successfully less than NewAccountAge ago (or
// never: unknown names get the strict limit).
type GuardLogin struct {
	// Path is the endpoint's exact path, such as /wp-login.php.
	Path string `yaml:"path"`
	// Methods are the methods counted (unset: POST).
	Methods []string `yaml:"methods"`
	// Account says where the account name is: exactly one of form (a
	// field of a urlencoded or multipart form), json (a top-level field,
	// or a dotted path such as user.email) or header.
	Account GuardAccountField `yaml:"account"`
	// Tries is the limit per account per window (0: 10).
	Tries int `yaml:"tries"`
	// Window is the sliding window the tries are counted in (0: 15m).
	Window Duration `yaml:"window"`
	// NewAccountTries is the stricter limit for new accounts (0: 3).
	NewAccountTries int `yaml:"new_account_tries"`
	// NewAccountAge is how long an account counts as new after its first
	// successful login (0: 168h, a week).
	NewAccountAge Duration `yaml:"new_account_age"`
	// SuccessStatus are the upstream statuses that mean the login worked
	// (unset: any 2xx or 3xx). Set [302] for a form that answers a failed
	// login with 200 and a successful one with a redirect.
	SuccessStatus []int `yaml:"success_status"`
}

// GuardAccountField names where a login request carries the account.
type GuardAccountField struct {
	Form   string `yaml:"form"`
	JSON   string `yaml:"json"`
	Header string `yaml:"header"`
}

// Inspects reports whether the site's WAF inspects requests (detect or
// block).
func (s GuardSite) Inspects() bool { return s.WAF == "detect" || s.WAF == "block" }

// GuardWAF tunes a site's request inspection. Zero values are defaults.
type GuardWAF struct {
	// Paranoia is the CRS paranoia level, 1 to 4 (0: 1).
	Paranoia int `yaml:"paranoia"`
	// AnomalyThreshold is the inbound anomaly score that blocks (0: 5).
	AnomalyThreshold int `yaml:"anomaly_threshold"`
	// BodyLimit is how much of a request body is inspected (0: 128KiB);
	// the rest passes uninspected.
	BodyLimit Size `yaml:"body_limit"`
	// SkipExtensions are extensions of static assets whose plain GET and
	// HEAD requests are not inspected; unset: a built-in list, [] none.
	SkipExtensions []string `yaml:"skip_extensions"`
	// Exclusions remove rules by id, everywhere or under a path.
	Exclusions []GuardWAFExclusion `yaml:"exclusions"`
}

// GuardWAFExclusion removes CRS rules for the paths under Path.
type GuardWAFExclusion struct {
	// IDs are CRS rule ids, such as 942100.
	IDs []int `yaml:"ids"`
	// Path limits the exclusion to paths under it ("/api" covers /api/x,
	// not /apix); unset: every path.
	Path string `yaml:"path"`
}

// Name is the site's name in the guard's metrics and logs: its first host,
// lower case, without a final dot.
func (s GuardSite) Name() string {
	if len(s.Hosts) == 0 {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(s.Hosts[0], "."))
}

// GuardSiteLimits are a site's per-source limits.
type GuardSiteLimits struct {
	// Rate is requests per second per source to this site.
	Rate int `yaml:"rate"`
	// Burst is how many requests above Rate a source may send at once.
	Burst int `yaml:"burst"`
	// Connections caps a source's requests in progress at this site.
	Connections int `yaml:"connections"`
}

// Validate checks a guard section built in code, as Config.Validate does
// for a whole configuration.
func (g Guard) Validate() error { return validateValue(reflect.ValueOf(g), "guard") }

// Enabled reports whether the guard has anything to protect.
func (g Guard) Enabled() bool { return len(g.Sites) > 0 }

func defaultGuard() Guard {
	return Guard{
		AccessLog:       "stdout",
		ForwardedHeader: "auto",
		Limits: GuardLimits{
			Rate: 100, Burst: 200, Connections: 100, MaxConnections: 10000,
			IPv4Prefix: 32, IPv6Prefix: 64, MaxSources: 200000,
		},
		Timeouts: GuardTimeouts{
			Header:         Duration(10 * time.Second),
			Idle:           Duration(60 * time.Second),
			UpgradeIdle:    Duration(10 * time.Minute),
			MinBodyRate:    1 * KiB,
			BodyGrace:      Duration(10 * time.Second),
			MaxHeaderBytes: 32 * KiB,
			MaxBodyBytes:   16 * MiB,
		},
		Upstreams: GuardUpstreams{
			FailAfter:             3,
			FailTimeout:           Duration(30 * time.Second),
			DialTimeout:           Duration(5 * time.Second),
			ResponseHeaderTimeout: Duration(60 * time.Second),
			IdleConnections:       256,
		},
	}
}

func (g Guard) validate(c *checker) {
	for _, f := range []struct{ name, v string }{{"listen", g.Listen}, {"listen_tls", g.ListenTLS}} {
		if f.v == "" {
			continue
		}
		if err := checkHostPort(f.v); err != "" && !strings.HasSuffix(f.v, ":0") { // port 0: any free port
			c.errorf(f.name, "must be host:port, e.g. 127.0.0.1:8080 or :443; %s", err)
		}
	}
	if g.Listen != "" && g.Listen == g.ListenTLS {
		c.errorf("listen_tls", "is the same address as listen; give each its own port")
	}
	if !g.Enabled() {
		return
	}
	if g.Listen == "" && g.ListenTLS == "" {
		c.errorf("listen", "required when sites are configured: give listen (HTTP) or listen_tls (HTTPS), or both")
	}
	checkNets(c, "trusted_proxies", g.TrustedProxies)
	if g.ForwardedHeader != "" {
		c.oneOf("forwarded_header", g.ForwardedHeader, "auto", "x-forwarded-for", "forwarded")
	}
	checkNets(c, "allow", g.Allow)
	checkNets(c, "deny", g.Deny)
	switch {
	case g.AccessLog == "stdout", g.AccessLog == "off":
	case isAbs(g.AccessLog):
	default:
		c.errorf("access_log", "must be stdout, off or an absolute file path; got %q", g.AccessLog)
	}
	seen := map[string]int{}
	anyTLS := false
	for i, s := range g.Sites {
		anyTLS = anyTLS || s.TLS.CertFile != ""
		for j, h := range s.Hosts {
			h = strings.ToLower(strings.TrimSuffix(h, "."))
			if prev, ok := seen[h]; ok {
				c.errorf(fmt.Sprintf("sites[%d].hosts[%d]", i, j), "%q is already a host of sites[%d]; a host belongs to one site", h, prev)
			}
			seen[h] = i
		}
		if s.TLS.CertFile != "" && g.ListenTLS == "" {
			c.errorf(fmt.Sprintf("sites[%d].tls", i), "a certificate is only used on listen_tls; set listen_tls too")
		}
	}
	if g.ListenTLS != "" && !anyTLS {
		c.errorf("listen_tls", "needs at least one site with tls.cert_file and tls.key_file")
	}
}

func (l GuardLimits) validate(c *checker) {
	c.intRange("rate", l.Rate, 0, 1000000)
	c.intRange("burst", l.Burst, 0, 1000000)
	c.intRange("connections", l.Connections, 0, 1000000)
	c.intRange("max_connections", l.MaxConnections, 1, 10000000)
	c.intRange("ipv4_prefix", l.IPv4Prefix, 8, 32)
	c.intRange("ipv6_prefix", l.IPv6Prefix, 16, 128)
	c.intRange("max_sources", l.MaxSources, 1000, 100000000)
	if l.Rate > 0 && l.Burst < 1 {
		c.errorf("burst", "must be at least 1 when rate is set (it is how many requests may arrive together)")
	}
}

func (t GuardTimeouts) validate(c *checker) {
	c.durRange("header", t.Header, Duration(time.Second), Duration(10*time.Minute))
	c.durRange("idle", t.Idle, Duration(time.Second), Duration(day))
	if t.UpgradeIdle != 0 {
		c.durRange("upgrade_idle", t.UpgradeIdle, Duration(time.Second), Duration(7*day))
	}
	c.durRange("body_grace", t.BodyGrace, Duration(time.Second), Duration(time.Hour))
	if t.MinBodyRate < 0 || t.MinBodyRate > 100*MiB {
		c.errorf("min_body_rate", "must be between 0 (off) and 100MiB (bytes per second), got %s", t.MinBodyRate)
	}
	if t.MaxHeaderBytes < KiB || t.MaxHeaderBytes > MiB {
		c.errorf("max_header_bytes", "must be between 1KiB and 1MiB, got %s", t.MaxHeaderBytes)
	}
	if t.MaxBodyBytes < KiB {
		c.errorf("max_body_bytes", "must be at least 1KiB, got %s", t.MaxBodyBytes)
	}
}

func (u GuardUpstreams) validate(c *checker) {
	c.intRange("fail_after", u.FailAfter, 1, 1000)
	c.durRange("fail_timeout", u.FailTimeout, Duration(time.Second), Duration(time.Hour))
	c.durRange("dial_timeout", u.DialTimeout, Duration(100*time.Millisecond), Duration(time.Minute))
	c.durRange("response_header_timeout", u.ResponseHeaderTimeout, Duration(time.Second), Duration(time.Hour))
	c.intRange("idle_connections", u.IdleConnections, 0, 100000)
}

func (s GuardSite) validate(c *checker) {
	if len(s.Hosts) == 0 {
		c.errorf("hosts", "required: the host names this site answers, e.g. [shop.example.com]")
	}
	for i, h := range s.Hosts {
		name := strings.TrimPrefix(h, "*.")
		if name == "" || strings.Contains(name, "*") || !hostnameRE.MatchString(name) {
			c.errorf(fmt.Sprintf("hosts[%d]", i), "%q is not a host name (or *.domain for its subdomains)", h)
		}
	}
	if len(s.Upstreams) == 0 {
		c.errorf("upstreams", "required: at least one http:// or https:// URL")
	}
	for i, u := range s.Upstreams {
		if msg := checkUpstream(u); msg != "" {
			c.errorf(fmt.Sprintf("upstreams[%d]", i), "%s", msg)
		}
	}
	if s.MaxBodyBytes != 0 && s.MaxBodyBytes < KiB {
		c.errorf("max_body_bytes", "must be 0 (the guard's default) or at least 1KiB, got %s", s.MaxBodyBytes)
	}
	if s.Bandwidth < 0 {
		c.errorf("bandwidth", "must be 0 (unlimited) or a size per second such as 10MiB")
	}
	if s.ClientBandwidth < 0 {
		c.errorf("client_bandwidth", "must be 0 (unlimited) or a size per second such as 1MiB")
	}
	if s.WAF != "" {
		c.oneOf("waf", s.WAF, "off", "detect", "block")
	}
	if h := s.AccountHeader; h != "" && h != "off" && !httpguts.ValidHeaderFieldName(h) {
		c.errorf("account_header", "%q is not a header name (or off)", h)
	}
}

// HasHost reports whether a site lists host (as written in its hosts,
// without regard to case or a final dot).
func (g Guard) HasHost(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, s := range g.Sites {
		for _, h := range s.Hosts {
			if strings.ToLower(strings.TrimSuffix(h, ".")) == host {
				return true
			}
		}
	}
	return false
}

// DefaultAccountHeader is the response header naming the account when a
// site sets none.
const DefaultAccountHeader = "X-Bulwark-Account"

// AccountHeaderName is the site's account header, "" when off.
func (s GuardSite) AccountHeaderName() string {
	switch s.AccountHeader {
	case "":
		return DefaultAccountHeader
	case "off":
		return ""
	}
	return s.AccountHeader
}

func (w GuardWAF) validate(c *checker) {
	c.intRange("paranoia", w.Paranoia, 0, 4)
	c.intRange("anomaly_threshold", w.AnomalyThreshold, 0, 1000)
	if w.BodyLimit != 0 && (w.BodyLimit < KiB || w.BodyLimit > 64*MiB) {
		c.errorf("body_limit", "must be 0 (128KiB) or between 1KiB and 64MiB, got %s", w.BodyLimit)
	}
	for i, e := range w.SkipExtensions {
		if !strings.HasPrefix(e, ".") || len(e) < 2 || strings.ContainsAny(e, "/ ") {
			c.errorf(fmt.Sprintf("skip_extensions[%d]", i), "%q is not an extension such as .css", e)
		}
	}
}

func (l GuardLogin) validate(c *checker) {
	if !strings.HasPrefix(l.Path, "/") {
		c.errorf("path", "required: the login endpoint's path, starting with /, e.g. /login")
	}
	for i, m := range l.Methods {
		if m == "" || strings.ToUpper(m) != m || strings.ContainsAny(m, " /") {
			c.errorf(fmt.Sprintf("methods[%d]", i), "%q is not an HTTP method such as POST", m)
		}
	}
	n := 0
	for _, f := range []string{l.Account.Form, l.Account.JSON, l.Account.Header} {
		if f != "" {
			n++
		}
	}
	if n != 1 {
		c.errorf("account", "give exactly one of form, json or header: where the request carries the account name")
	}
	c.intRange("tries", l.Tries, 0, 100000)
	c.intRange("new_account_tries", l.NewAccountTries, 0, 100000)
	c.durRange("window", l.Window, 0, Duration(day))
	c.durRange("new_account_age", l.NewAccountAge, 0, Duration(365*day))
	for i, st := range l.SuccessStatus {
		if st < 100 || st > 599 {
			c.errorf(fmt.Sprintf("success_status[%d]", i), "%d is not an HTTP status", st)
		}
	}
	if l.NewAccountTries > 0 && l.Tries > 0 && l.NewAccountTries > l.Tries {
		c.errorf("new_account_tries", "%d is more than tries (%d); new accounts get the stricter limit", l.NewAccountTries, l.Tries)
	}
}

func (e GuardWAFExclusion) validate(c *checker) {
	if len(e.IDs) == 0 {
		c.errorf("ids", "required: the CRS rule ids to exclude, e.g. [942100]")
	}
	for i, id := range e.IDs {
		if id < 1 || id > 9999999 {
			c.errorf(fmt.Sprintf("ids[%d]", i), "%d is not a rule id", id)
		}
	}
	if e.Path != "" && !strings.HasPrefix(e.Path, "/") {
		c.errorf("path", "%q must start with /", e.Path)
	}
}

func (l GuardSiteLimits) validate(c *checker) {
	c.intRange("rate", l.Rate, 0, 1000000)
	c.intRange("burst", l.Burst, 0, 1000000)
	c.intRange("connections", l.Connections, 0, 1000000)
}

// checkUpstream returns what is wrong with an upstream URL, or "".
func checkUpstream(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Sprintf("%q is not an http:// or https:// URL with a host", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Sprintf("%q: give scheme, host, port and at most a path (no user, query or fragment)", s)
	}
	if msg := checkHostPort(u.Host); u.Port() != "" && msg != "" {
		return fmt.Sprintf("%q: %s", s, msg)
	}
	return ""
}

// checkNets reports entries of a list that are neither an address nor a
// CIDR.
func checkNets(c *checker, field string, list []string) {
	for i, p := range list {
		if _, err := ParseNet(p); err != nil {
			c.errorf(fmt.Sprintf("%s[%d]", field, i), "not an address or CIDR such as 10.0.0.0/8 or 2001:db8::/32, got %q", p)
		}
	}
}

// ParseNet parses an address (a /32 or /128) or a CIDR, canonical
// (masked, IPv4-mapped networks unmapped): a network to list, ban or
// shape, from the config, the API or the command line. Its error names s
// and shows the forms accepted.
func ParseNet(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return netindex.Canonical(p), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR (such as 203.0.113.7, 203.0.113.0/24 or 2001:db8::/48)", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Nets parses a validated list of addresses and CIDRs.
func Nets(list []string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if p, err := ParseNet(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}
