// Validation of decoded values: the rules of each section and the rules
// between settings, reported with the line the offending value came from.

package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// validator is implemented by sections whose values need checking. The
// checker's walk calls validate on every struct (and on the elements of
// every slice of structs) reachable from Config, scoped to that section's
// path, so a new section only has to define this method.
type validator interface {
	validate(c *checker)
}

var validatorType = reflect.TypeFor[validator]()

// checker collects validation errors. path is the section being checked;
// field names given to errorf are relative to it.
type checker struct {
	file      string
	pos       map[string]*yaml.Node // from the decoder; nil for Config.Validate
	skip      map[string]bool       // paths that already failed to decode
	skipBelow map[string]bool       // ancestors of those paths
	errs      Errors
	path      string
}

// Validate checks a Config built in code (for example Default() with
// changes). It returns Errors, without file positions, or nil.
func (c Config) Validate() error { return validateValue(reflect.ValueOf(c), "") }

// validateValue checks a section built in code, at its dotted path.
func validateValue(v reflect.Value, path string) error {
	ch := &checker{}
	ch.walk(v, path)
	if len(ch.errs) > 0 {
		return ch.errs
	}
	return nil
}

// LiteralSecrets lists the paths of secrets written directly in the file
// (Source "yaml"), for `bulwark config check` to warn about.
func (c Config) LiteralSecrets() []string {
	var out []string
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		if s, ok := v.Interface().(Secret); ok {
			if s.Source() == "yaml" {
				out = append(out, path)
			}
			return
		}
		switch v.Kind() {
		case reflect.Struct:
			for i := range v.NumField() {
				if name, ok := yamlName(v.Type().Field(i)); ok {
					walk(v.Field(i), joinPath(path, name))
				}
			}
		case reflect.Slice:
			for i := range v.Len() {
				walk(v.Index(i), fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	walk(reflect.ValueOf(c), "")
	return out
}

func (c *checker) walk(v reflect.Value, path string) {
	if v.Type().Implements(validatorType) {
		saved := c.path
		c.path = path
		v.Interface().(validator).validate(c)
		c.path = saved
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if name, ok := yamlName(v.Type().Field(i)); ok {
				c.walk(v.Field(i), joinPath(path, name))
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Struct {
			for i := range v.Len() {
				c.walk(v.Index(i), fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
}

// errorf reports a problem with field (relative to the current section),
// at the line the value came from, or the nearest enclosing key that is in
// the file. Fields that already failed to decode are not reported twice.
func (c *checker) errorf(field, format string, args ...any) {
	full := joinPath(c.path, field)
	if field == "" {
		full = c.path
	}
	if strings.HasPrefix(field, "[") {
		full = c.path + field
	}
	// A value that failed to decode kept its default, so rules about it
	// (or about its parts) would only repeat or confuse the first error.
	for p := full; p != ""; p = parentPath(p) {
		if c.skip[p] {
			return
		}
	}
	if c.skipBelow[full] {
		return
	}
	e := &FieldError{File: c.file, Path: full, Msg: fmt.Sprintf(format, args...)}
	for p := full; p != ""; p = parentPath(p) {
		if n, ok := c.pos[p]; ok {
			e.Line, e.Column = n.Line, n.Column
			break
		}
	}
	c.errs = append(c.errs, e)
}

// parentPath strips the last ".key" or "[i]" from a dotted path.
func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i >= 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}

func (c *checker) oneOf(field, got string, allowed ...string) {
	for _, a := range allowed {
		if got == a {
			return
		}
	}
	c.errorf(field, "must be one of %s; got %q", strings.Join(allowed, ", "), got)
}

func (c *checker) intRange(field string, got, lo, hi int) {
	if got < lo || got > hi {
		c.errorf(field, "must be between %d and %d, got %d", lo, hi, got)
	}
}

func (c *checker) durRange(field string, got, lo, hi Duration) {
	if got < lo || got > hi {
		c.errorf(field, "must be between %s and %s, got %s", lo, hi, got)
	}
}

func (c *checker) absPath(field, got string) {
	if got != "" && !isAbs(got) {
		c.errorf(field, "%q is not an absolute path; give the full path starting with /", got)
	}
}

var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$`)

func (c Config) validate(ch *checker) {
	ch.absPath("data_dir", c.DataDir)
	monitorRefs(ch, c)
	if err := checkHostPort(c.Listen); err != "" {
		ch.errorf("listen", "must be host:port, e.g. 127.0.0.1:8443, [::1]:8443 or :8443 for all interfaces; %s", err)
	}
	// A password given in the file must itself pass the policy, or the
	// first administrator could never be created.
	if p := c.Bootstrap.AdminPassword; p.Source() == "yaml" {
		if n := utf8.RuneCountInString(p.literal); n < c.Auth.PasswordMinLength {
			ch.errorf("bootstrap.admin_password", "is %d characters, shorter than auth.password_min_length (%d)", n, c.Auth.PasswordMinLength)
		}
	}
}

// checkHostPort returns what is wrong with a listen address, or "".
func checkHostPort(s string) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Sprintf("got %q", s)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return fmt.Sprintf("port %q is not a number from 1 to 65535", port)
	}
	if host != "" && net.ParseIP(host) == nil && !hostnameRE.MatchString(host) {
		return fmt.Sprintf("host %q is neither an IP address nor a host name", host)
	}
	return ""
}

func (l Log) validate(c *checker) {
	c.oneOf("level", l.Level, "debug", "info", "warn", "error")
	c.oneOf("format", l.Format, "text", "json")
}

func (t TLS) validate(c *checker) {
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		c.errorf("key_file", "required when cert_file is set (give both, or neither for a self-signed certificate)")
	case t.CertFile == "" && t.KeyFile != "":
		c.errorf("cert_file", "required when key_file is set (give both, or neither for a self-signed certificate)")
	}
	c.absPath("cert_file", t.CertFile)
	c.absPath("key_file", t.KeyFile)
}

func (s Store) validate(c *checker) {
	c.oneOf("driver", s.Driver, "sqlite", "postgres")
	switch {
	case s.Driver == "postgres" && !s.DSN.IsSet():
		c.errorf("dsn", "required when driver is postgres; give {env: NAME} or {file: /path} holding a postgres:// URL")
	case s.Driver == "sqlite" && s.DSN.IsSet():
		c.errorf("dsn", "dsn is only used with driver postgres; remove it (sqlite lives in the data directory)")
	}
	c.intRange("max_open_conns", s.MaxOpenConns, 1, 1000)
}

func (a API) validate(c *checker) {
	if a.MaxBodyBytes < KiB || a.MaxBodyBytes > 64*MiB {
		c.errorf("max_body_bytes", "must be between 1KiB and 64MiB, got %s", a.MaxBodyBytes)
	}
	lo, hi := Duration(time.Second), Duration(day)
	c.durRange("read_timeout", a.ReadTimeout, lo, hi)
	c.durRange("write_timeout", a.WriteTimeout, lo, hi)
	c.durRange("idle_timeout", a.IdleTimeout, lo, hi)
	c.intRange("page_size_max", a.PageSizeMax, 1, 10000)
	checkNets(c, "trusted_proxies", a.TrustedProxies)
}

// TrustedProxyNets returns TrustedProxies as networks (a bare address is a
// /32 or /128). Call after validation.
func (a API) TrustedProxyNets() []netip.Prefix { return Nets(a.TrustedProxies) }

var roleRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

func (a Auth) validate(c *checker) {
	c.intRange("password_min_length", a.PasswordMinLength, 8, 128)
	c.durRange("session_idle_timeout", a.SessionIdleTimeout, Duration(time.Minute), Duration(day))
	c.durRange("session_max_age", a.SessionMaxAge, Duration(time.Minute), Duration(90*day))
	if a.SessionMaxAge < a.SessionIdleTimeout {
		c.errorf("session_max_age", "must be at least session_idle_timeout (%s), got %s", a.SessionIdleTimeout, a.SessionMaxAge)
	}
	c.durRange("token_max_age", a.TokenMaxAge, Duration(time.Hour), Duration(3650*day))
	seen := map[string]bool{}
	for i, r := range a.Require2FARoles {
		field := fmt.Sprintf("require_2fa_roles[%d]", i)
		switch {
		case !roleRE.MatchString(r):
			c.errorf(field, "%q is not a role name (lower-case letter, then up to 62 of a-z, 0-9, _ and -)", r)
		case seen[r]:
			c.errorf(field, "%q is listed twice", r)
		}
		seen[r] = true
	}
}

func (t Throttle) validate(c *checker) {
	c.durRange("base_delay", t.BaseDelay, Duration(10*time.Millisecond), Duration(time.Minute))
	c.durRange("max_delay", t.MaxDelay, Duration(10*time.Millisecond), Duration(day))
	if t.MaxDelay < t.BaseDelay {
		c.errorf("max_delay", "must be at least base_delay (%s), got %s", t.BaseDelay, t.MaxDelay)
	}
	c.intRange("free_attempts", t.FreeAttempts, 0, 100)
	if t.LockoutAfter != 0 && (t.LockoutAfter <= t.FreeAttempts || t.LockoutAfter > 1_000_000) {
		c.errorf("lockout_after", "must be 0 (never lock) or more than free_attempts (%d) and at most 1000000, got %d", t.FreeAttempts, t.LockoutAfter)
	}
}

func (w WebAuthn) validate(c *checker) {
	rpOK := w.RPID != "" && net.ParseIP(w.RPID) == nil && hostnameRE.MatchString(w.RPID) &&
		w.RPID == strings.ToLower(w.RPID) && !strings.HasSuffix(w.RPID, ".")
	if !rpOK {
		c.errorf("rp_id", "must be the lower-case domain name the console is served on, such as bulwark.example.com or localhost (no scheme, port, path or IP address); got %q", w.RPID)
	}
	if strings.TrimSpace(w.RPName) == "" || utf8.RuneCountInString(w.RPName) > 64 {
		c.errorf("rp_name", "must be a name of 1 to 64 characters, got %q", w.RPName)
	}
	if len(w.Origins) == 0 {
		c.errorf("origins", "must list at least one origin, such as https://bulwark.example.com")
	}
	seen := map[string]bool{}
	for i, o := range w.Origins {
		field := fmt.Sprintf("origins[%d]", i)
		host, msg := checkOrigin(o)
		switch {
		case msg != "":
			c.errorf(field, "%s", msg)
		case rpOK && net.ParseIP(host) != nil:
			c.errorf(field, "host %q is an IP address, which WebAuthn does not accept; use a domain name (http://localhost:PORT for local use)", host)
		case rpOK && host != w.RPID && !strings.HasSuffix(host, "."+w.RPID):
			c.errorf(field, "host %q is not rp_id %q or a subdomain of it; browsers would refuse security keys", host, w.RPID)
		case seen[o]:
			c.errorf(field, "%q is listed twice", o)
		}
		seen[o] = true
	}
}

// checkOrigin returns an origin's host, or a message saying what is wrong.
// Plain http is accepted only for loopback, where browsers treat it as a
// secure context.
func checkOrigin(o string) (host, msg string) {
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "", fmt.Sprintf("%q is not an origin; write scheme://host[:port], e.g. https://bulwark.example.com", o)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Sprintf("%q is not an origin: an origin is only scheme://host[:port], without user, path, query or fragment", o)
	}
	host = u.Hostname()
	switch u.Scheme {
	case "https":
	case "http":
		if host != "localhost" && host != "127.0.0.1" && host != "::1" {
			return "", fmt.Sprintf("%q must use https (plain http is allowed only for localhost, 127.0.0.1 and [::1])", o)
		}
	default:
		return "", fmt.Sprintf("%q must be an https:// origin", o)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", fmt.Sprintf("%q has an invalid port", o)
		}
	}
	return host, ""
}

func (a Audit) validate(c *checker) {
	if a.Retention < Duration(day) {
		c.errorf("retention", "must be at least 1d, got %s", a.Retention)
	}
	c.intRange("checkpoint_every", a.CheckpointEvery, 1, 1_000_000)
	switch {
	case a.Anchor == "":
	case strings.Contains(a.Anchor, "://"):
		u, err := url.Parse(a.Anchor)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			c.errorf("anchor", "must be an https:// URL or an absolute file path, got %q", a.Anchor)
		}
	case !isAbs(a.Anchor):
		c.errorf("anchor", "must be an https:// URL or an absolute file path, got %q", a.Anchor)
	}
}
