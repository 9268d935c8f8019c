package config

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestParseErrors is the golden table of bad files: each case lists every
// message Parse must report, in order, exactly as `bulwark config check`
// prints them.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{
			name: "unknown top-level key with suggestion",
			in:   "lisen: 127.0.0.1:9000\n",
			want: []string{`bulwark.yaml:1: lisen: unknown key (did you mean "listen"?)`},
		},
		{
			name: "unknown key without suggestion lists allowed keys",
			in:   "log:\n  colour: true\n",
			want: []string{`bulwark.yaml:2: log.colour: unknown key (allowed: level, format)`},
		},
		{
			name: "suggestion ignores case and underscores",
			in:   "auth:\n  Require2FA: true\n  maxopenconns: 3\n",
			want: []string{
				`bulwark.yaml:2: auth.Require2FA: unknown key (did you mean "require_2fa"?)`,
				`bulwark.yaml:3: auth.maxopenconns: unknown key (allowed: password_min_length, session_idle_timeout, session_max_age, token_max_age, require_2fa, require_2fa_roles, throttle, webauthn)`,
			},
		},
		{
			name: "duplicate key",
			in:   "listen: 127.0.0.1:1\nlog: {level: info}\nlisten: 127.0.0.1:2\n",
			want: []string{`bulwark.yaml:3: listen: duplicate key (first set at line 1); keep only one`},
		},
		{
			name: "section must be a mapping",
			in:   "store: sqlite\napi:\n  - 1\n",
			want: []string{
				`bulwark.yaml:1: store: expected a mapping (key: value lines), got "sqlite"`,
				`bulwark.yaml:2: api: expected a mapping (key: value lines), got a list`,
			},
		},
		{
			name: "list must be a list",
			in:   "auth:\n  require_2fa_roles: admin\n  webauthn:\n    origins: {a: b}\n",
			want: []string{
				`bulwark.yaml:2: auth.require_2fa_roles: expected a list ([a, b] or one "- item" per line), got "admin"`,
				`bulwark.yaml:4: auth.webauthn.origins: expected a list ([a, b] or one "- item" per line), got a mapping`,
			},
		},
		{
			name: "scalar kinds",
			in: "listen: [a]\napi:\n  metrics_public: yes\n  page_size_max: ten\n" +
				"store:\n  max_open_conns: 1.5\nauth:\n  require_2fa: 1\n",
			want: []string{
				`bulwark.yaml:1: listen: expected a string, got a list`,
				`bulwark.yaml:3: api.metrics_public: expected true or false, got "yes"`,
				`bulwark.yaml:4: api.page_size_max: expected a whole number, got "ten"`,
				`bulwark.yaml:6: store.max_open_conns: expected a whole number, got 1.5`,
				`bulwark.yaml:8: auth.require_2fa: expected true or false, got 1`,
			},
		},
		{
			name: "huge numbers",
			in:   "store:\n  max_open_conns: 99999999999999999999999\naudit:\n  checkpoint_every: -9223372036854775809\n",
			want: []string{
				`bulwark.yaml:2: store.max_open_conns: 99999999999999999999999 is out of range for a whole number`,
				`bulwark.yaml:4: audit.checkpoint_every: -9223372036854775809 is out of range for a whole number`,
			},
		},
		{
			name: "durations and sizes",
			in: "api:\n  read_timeout: -1s\n  write_timeout: 30\n  idle_timeout: {a: 1}\n  max_body_bytes: 1.5MiB\n" +
				"audit:\n  retention: 5y\n",
			want: []string{
				`bulwark.yaml:2: api.read_timeout: "-1s" is negative; durations must be zero or more`,
				`bulwark.yaml:3: api.write_timeout: "30" is not a duration: use a number with a unit (ms, s, m, h, d), e.g. 30s, 15m, 12h, 400d`,
				`bulwark.yaml:4: api.idle_timeout: expected a duration such as 30s, 15m, 12h or 400d, got a mapping`,
				`bulwark.yaml:5: api.max_body_bytes: "1.5MiB" is not a size: use a whole number with an optional unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 64KiB or 1MiB`,
				`bulwark.yaml:7: audit.retention: "5y" is not a duration: use a number with a unit (ms, s, m, h, d), e.g. 30s, 15m, 12h, 400d`,
			},
		},
		{
			name: "enumerations",
			in:   "log:\n  level: verbose\n  format: xml\nstore:\n  driver: mysql\n",
			want: []string{
				`bulwark.yaml:2: log.level: must be one of debug, info, warn, error; got "verbose"`,
				`bulwark.yaml:3: log.format: must be one of text, json; got "xml"`,
				`bulwark.yaml:5: store.driver: must be one of sqlite, postgres; got "mysql"`,
			},
		},
		{
			name: "listen",
			in:   "listen: localhost\n",
			want: []string{`bulwark.yaml:1: listen: must be host:port, e.g. 127.0.0.1:8443, [::1]:8443 or :8443 for all interfaces; got "localhost"`},
		},
		{
			name: "listen port",
			in:   "listen: 127.0.0.1:70000\n",
			want: []string{`bulwark.yaml:1: listen: must be host:port, e.g. 127.0.0.1:8443, [::1]:8443 or :8443 for all interfaces; port "70000" is not a number from 1 to 65535`},
		},
		{
			name: "listen host",
			in:   "listen: bad_host!:80\n",
			want: []string{`bulwark.yaml:1: listen: must be host:port, e.g. 127.0.0.1:8443, [::1]:8443 or :8443 for all interfaces; host "bad_host!" is neither an IP address nor a host name`},
		},
		{
			name: "relative paths",
			in:   "data_dir: data\ntls:\n  cert_file: cert.pem\n  key_file: /etc/key.pem\n",
			want: []string{
				`bulwark.yaml:1: data_dir: "data" is not an absolute path; give the full path starting with /`,
				`bulwark.yaml:3: tls.cert_file: "cert.pem" is not an absolute path; give the full path starting with /`,
			},
		},
		{
			name: "tls needs both",
			in:   "tls:\n  cert_file: /etc/cert.pem\n",
			want: []string{`bulwark.yaml:1: tls.key_file: required when cert_file is set (give both, or neither for a self-signed certificate)`},
		},
		{
			name: "tls key without cert",
			in:   "tls:\n  key_file: /etc/key.pem\n",
			want: []string{`bulwark.yaml:1: tls.cert_file: required when key_file is set (give both, or neither for a self-signed certificate)`},
		},
		{
			name: "postgres needs dsn",
			in:   "store:\n  driver: postgres\n",
			want: []string{`bulwark.yaml:1: store.dsn: required when driver is postgres; give {env: NAME} or {file: /path} holding a postgres:// URL`},
		},
		{
			name: "dsn with sqlite",
			in:   "store:\n  dsn: {env: BULWARK_DSN}\n",
			want: []string{`bulwark.yaml:2: store.dsn: dsn is only used with driver postgres; remove it (sqlite lives in the data directory)`},
		},
		{
			name: "secret forms",
			in: "store:\n  driver: postgres\n  dsn: {env: 1BAD}\n" +
				"bootstrap:\n  admin_password:\n    file: relative/path\n",
			want: []string{
				`bulwark.yaml:3: store.dsn.env: "1BAD" is not an environment variable name (letters, digits and _, not starting with a digit)`,
				`bulwark.yaml:6: bootstrap.admin_password.file: "relative/path" is not an absolute path; secret files must be given as /absolute/path`,
			},
		},
		{
			name: "secret mapping shape",
			in: "store:\n  driver: postgres\n  dsn: {env: A, file: /b}\n" +
				"bootstrap:\n  admin_password: {envv: X}\n",
			want: []string{
				`bulwark.yaml:3: store.dsn: a secret mapping must have exactly one key, env or file; got 2 keys`,
				`bulwark.yaml:5: bootstrap.admin_password.envv: unknown key (did you mean "env"?)`,
			},
		},
		{
			name: "secret values",
			in: "store:\n  driver: postgres\n  dsn: ''\n" +
				"bootstrap:\n  admin_password: {env: [X]}\n",
			want: []string{
				`bulwark.yaml:3: store.dsn: empty secret; remove the key, or give a string, {env: NAME} or {file: /path}`,
				`bulwark.yaml:5: bootstrap.admin_password.env: expected a non-empty string, got a list`,
			},
		},
		{
			name: "secret as list",
			in:   "bootstrap:\n  admin_password: [a]\n",
			want: []string{`bulwark.yaml:2: bootstrap.admin_password: expected a string, {env: NAME} or {file: /path}, got a list`},
		},
		{
			name: "literal admin password below policy",
			in:   "bootstrap:\n  admin_password: hunter2\n",
			want: []string{`bulwark.yaml:2: bootstrap.admin_password: is 7 characters, shorter than auth.password_min_length (12)`},
		},
		{
			name: "ranges",
			in: "store:\n  max_open_conns: 0\napi:\n  max_body_bytes: 512\n  read_timeout: 0s\n  page_size_max: 100000\n" +
				"auth:\n  password_min_length: 6\n  token_max_age: 20y\n",
			want: []string{
				`bulwark.yaml:2: store.max_open_conns: must be between 1 and 1000, got 0`,
				`bulwark.yaml:4: api.max_body_bytes: must be between 1KiB and 64MiB, got 512`,
				`bulwark.yaml:5: api.read_timeout: must be between 1s and 1d, got 0s`,
				`bulwark.yaml:6: api.page_size_max: must be between 1 and 10000, got 100000`,
				`bulwark.yaml:8: auth.password_min_length: must be between 8 and 128, got 6`,
				`bulwark.yaml:9: auth.token_max_age: "20y" is not a duration: use a number with a unit (ms, s, m, h, d), e.g. 30s, 15m, 12h, 400d`,
			},
		},
		{
			name: "session ages",
			in:   "auth:\n  session_idle_timeout: 2h\n  session_max_age: 1h\n",
			want: []string{`bulwark.yaml:3: auth.session_max_age: must be at least session_idle_timeout (2h), got 1h`},
		},
		{
			name: "session max age default below idle points at the section",
			in:   "auth:\n  session_idle_timeout: 1d\n",
			want: []string{`bulwark.yaml:1: auth.session_max_age: must be at least session_idle_timeout (1d), got 12h`},
		},
		{
			name: "roles",
			in:   "auth:\n  require_2fa_roles:\n    - admin\n    - Admin\n    - admin\n    - 7up\n",
			want: []string{
				`bulwark.yaml:4: auth.require_2fa_roles[1]: "Admin" is not a role name (lower-case letter, then up to 62 of a-z, 0-9, _ and -)`,
				`bulwark.yaml:5: auth.require_2fa_roles[2]: "admin" is listed twice`,
				`bulwark.yaml:6: auth.require_2fa_roles[3]: "7up" is not a role name (lower-case letter, then up to 62 of a-z, 0-9, _ and -)`,
			},
		},
		{
			name: "throttle",
			in:   "auth:\n  throttle:\n    base_delay: 1m\n    max_delay: 10s\n    free_attempts: 5\n    lockout_after: 5\n",
			want: []string{
				`bulwark.yaml:4: auth.throttle.max_delay: must be at least base_delay (1m), got 10s`,
				`bulwark.yaml:6: auth.throttle.lockout_after: must be 0 (never lock) or more than free_attempts (5) and at most 1000000, got 5`,
			},
		},
		{
			name: "webauthn",
			in: "auth:\n  webauthn:\n    rp_id: https://Example.com\n    rp_name: ''\n    origins:\n" +
				"      - http://example.com\n      - https://example.com/login\n      - ftp://example.com\n      - not a url\n",
			want: []string{
				`bulwark.yaml:3: auth.webauthn.rp_id: must be the lower-case domain name the console is served on, such as bulwark.example.com or localhost (no scheme, port, path or IP address); got "https://Example.com"`,
				`bulwark.yaml:4: auth.webauthn.rp_name: must be a name of 1 to 64 characters, got ""`,
				`bulwark.yaml:6: auth.webauthn.origins[0]: "http://example.com" must use https (plain http is allowed only for localhost, 127.0.0.1 and [::1])`,
				`bulwark.yaml:7: auth.webauthn.origins[1]: "https://example.com/login" is not an origin: an origin is only scheme://host[:port], without user, path, query or fragment`,
				`bulwark.yaml:8: auth.webauthn.origins[2]: "ftp://example.com" must be an https:// origin`,
				`bulwark.yaml:9: auth.webauthn.origins[3]: "not a url" is not an origin; write scheme://host[:port], e.g. https://bulwark.example.com`,
			},
		},
		{
			name: "webauthn origin outside rp_id",
			in:   "auth:\n  webauthn:\n    rp_id: example.com\n    origins: [https://console.example.com, https://example.org, https://console.example.com]\n",
			want: []string{
				`bulwark.yaml:4: auth.webauthn.origins[1]: host "example.org" is not rp_id "example.com" or a subdomain of it; browsers would refuse security keys`,
				`bulwark.yaml:4: auth.webauthn.origins[2]: "https://console.example.com" is listed twice`,
			},
		},
		{
			name: "webauthn loopback IP origins pass the scheme rule but not WebAuthn's",
			in:   "auth:\n  webauthn:\n    origins: ['http://127.0.0.1:8443', 'http://[::1]:8443', 'http://10.0.0.1']\n",
			want: []string{
				`bulwark.yaml:3: auth.webauthn.origins[0]: host "127.0.0.1" is an IP address, which WebAuthn does not accept; use a domain name (http://localhost:PORT for local use)`,
				`bulwark.yaml:3: auth.webauthn.origins[1]: host "::1" is an IP address, which WebAuthn does not accept; use a domain name (http://localhost:PORT for local use)`,
				`bulwark.yaml:3: auth.webauthn.origins[2]: "http://10.0.0.1" must use https (plain http is allowed only for localhost, 127.0.0.1 and [::1])`,
			},
		},
		{
			name: "webauthn needs an origin",
			in:   "auth:\n  webauthn:\n    origins: []\n",
			want: []string{`bulwark.yaml:3: auth.webauthn.origins: must list at least one origin, such as https://bulwark.example.com`},
		},
		{
			name: "audit",
			in:   "audit:\n  retention: 12h\n  checkpoint_every: 0\n  anchor: http://example.com/anchor\n",
			want: []string{
				`bulwark.yaml:2: audit.retention: must be at least 1d, got 12h`,
				`bulwark.yaml:3: audit.checkpoint_every: must be between 1 and 1000000, got 0`,
				`bulwark.yaml:4: audit.anchor: must be an https:// URL or an absolute file path, got "http://example.com/anchor"`,
			},
		},
		{
			name: "audit anchor relative",
			in:   "audit:\n  anchor: anchors.log\n",
			want: []string{`bulwark.yaml:2: audit.anchor: must be an https:// URL or an absolute file path, got "anchors.log"`},
		},
		{
			name: "anchors and aliases",
			in:   "listen: &l 127.0.0.1:1\nlog: *l\n",
			want: []string{
				`bulwark.yaml:1: listen: anchors (&l) are not supported; write the value out in full`,
				`bulwark.yaml:2: log: aliases (*l) are not supported; write the value out in full`,
			},
		},
		{
			name: "merge key",
			in:   "<<: {listen: 127.0.0.1:1}\n",
			want: []string{`bulwark.yaml:1: <<: merge keys (<<) are not supported; write the settings out in full`},
		},
		{
			name: "undefined alias",
			in:   "log: *nope\n",
			want: []string{`bulwark.yaml: invalid YAML: unknown anchor 'nope' referenced; anchors and aliases are not supported, write the value out in full`},
		},
		{
			name: "tab indentation",
			in:   "log:\n\tlevel: debug\n",
			want: []string{`bulwark.yaml:2: invalid YAML: found character that cannot start any token (a tab is used for indentation; YAML allows only spaces)`},
		},
		{
			name: "unterminated flow",
			in:   "auth:\n  require_2fa_roles: [admin\n",
			want: []string{`bulwark.yaml:1: invalid YAML: did not find expected ',' or ']'`},
		},
		{
			name: "two documents",
			in:   "listen: 127.0.0.1:1\n---\nlisten: 127.0.0.1:2\n",
			want: []string{`bulwark.yaml:2: a second YAML document (after ---) is not allowed; put all settings in one document`},
		},
		{
			name: "top level list",
			in:   "- listen: 127.0.0.1:1\n",
			want: []string{`bulwark.yaml:1: expected a mapping of settings (key: value lines) at the top level, got a list`},
		},
		{
			name: "top level scalar",
			in:   "hello\n",
			want: []string{`bulwark.yaml:1: expected a mapping of settings (key: value lines) at the top level, got "hello"`},
		},
		{
			name: "non-scalar key",
			in:   "? [a]\n: b\n",
			want: []string{`bulwark.yaml:1: keys must be plain names, got a list`},
		},
		{
			name: "binary junk",
			in:   "\x00\x01\xfe\xff",
			want: []string{`bulwark.yaml: invalid YAML: control characters are not allowed`},
		},
		{
			name: "errors in several sections are all reported, in file order",
			in: "audit:\n  retention: 1h\nlisten: nope\nlog:\n  level: loud\n  formatt: json\n" +
				"store:\n  driver: postgres\n",
			want: []string{
				`bulwark.yaml:2: audit.retention: must be at least 1d, got 1h`,
				`bulwark.yaml:3: listen: must be host:port, e.g. 127.0.0.1:8443, [::1]:8443 or :8443 for all interfaces; got "nope"`,
				`bulwark.yaml:5: log.level: must be one of debug, info, warn, error; got "loud"`,
				`bulwark.yaml:6: log.formatt: unknown key (did you mean "format"?)`,
				`bulwark.yaml:7: store.dsn: required when driver is postgres; give {env: NAME} or {file: /path} holding a postgres:// URL`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("bulwark.yaml", []byte(tt.in))
			if err == nil {
				t.Fatalf("Parse succeeded, want errors %q", tt.want)
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Parse error is %T, want Errors", err)
			}
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(Config{}, cfg, cmp.AllowUnexported(Secret{})); diff != "" {
				t.Errorf("Parse returned a non-zero Config with errors:\n%s", diff)
			}
		})
	}
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		edit func(*Config) // applied to Default() to get the wanted result
	}{
		{name: "empty file", in: "", edit: func(*Config) {}},
		{name: "comments only", in: "# nothing here\n\n   # at all\n", edit: func(*Config) {}},
		{name: "explicit null document", in: "~\n", edit: func(*Config) {}},
		{name: "document marker only", in: "---\n", edit: func(*Config) {}},
		{name: "empty sections keep defaults", in: "log:\nauth:\n  throttle:\n", edit: func(*Config) {}},
		{name: "null scalar keeps default", in: "listen: ~\n", edit: func(*Config) {}},
		{
			name: "scalars",
			in: "data_dir: /var/lib/bulwark\nlisten: '[::1]:9443'\nlog: {level: debug, format: json}\n" +
				"api:\n  metrics_public: false\n  page_size_max: 0x100\n  max_body_bytes: 2 MiB\n  idle_timeout: 1h30m\nauth:\n  session_max_age: 1d12h\n",
			edit: func(c *Config) {
				c.DataDir = "/var/lib/bulwark"
				c.Listen = "[::1]:9443"
				c.Log = Log{Level: "debug", Format: "json"}
				c.API.MetricsPublic = false
				c.API.PageSizeMax = 256
				c.API.MaxBodyBytes = 2 * MiB
				c.API.IdleTimeout = Duration(90 * time.Minute)
				c.Auth.SessionMaxAge = Duration(36 * time.Hour)
			},
		},
		{
			name: "lists replace defaults",
			in: "auth:\n  require_2fa_roles: [admin, ops-team]\n  webauthn:\n    rp_id: example.com\n" +
				"    origins:\n      - https://bulwark.example.com\n      - https://example.com:8443\n",
			edit: func(c *Config) {
				c.Auth.Require2FARoles = []string{"admin", "ops-team"}
				c.Auth.WebAuthn.RPID = "example.com"
				c.Auth.WebAuthn.Origins = []string{"https://bulwark.example.com", "https://example.com:8443"}
			},
		},
		{
			name: "loopback http origin",
			in:   "auth:\n  webauthn:\n    origins: ['http://localhost:8080', 'https://localhost']\n    rp_id: localhost\n",
			edit: func(c *Config) {
				c.Auth.WebAuthn.Origins = []string{"http://localhost:8080", "https://localhost"}
			},
		},
		{
			name: "postgres with env dsn",
			in:   "store:\n  driver: postgres\n  dsn:\n    env: BULWARK_DSN\n  max_open_conns: 50\n",
			edit: func(c *Config) {
				c.Store = Store{Driver: "postgres", DSN: EnvSecret("BULWARK_DSN"), MaxOpenConns: 50}
			},
		},
		{
			name: "secrets as file and literal",
			in:   "store: {driver: postgres, dsn: 'postgres://u:p@db/bulwark'}\nbootstrap: {admin_password: {file: /run/secrets/admin}}\n",
			edit: func(c *Config) {
				c.Store.Driver = "postgres"
				c.Store.DSN = LiteralSecret("postgres://u:p@db/bulwark")
				c.Bootstrap.AdminPassword = FileSecret("/run/secrets/admin")
			},
		},
		{
			name: "throttle lockout disabled and audit https anchor",
			in:   "auth:\n  throttle: {lockout_after: 0, free_attempts: 0, base_delay: 500ms, max_delay: 500ms}\naudit:\n  anchor: https://anchor.example.com/bulwark\n  retention: 730d\n",
			edit: func(c *Config) {
				c.Auth.Throttle = Throttle{BaseDelay: Duration(500 * time.Millisecond), MaxDelay: Duration(500 * time.Millisecond)}
				c.Audit.Anchor = "https://anchor.example.com/bulwark"
				c.Audit.Retention = Duration(730 * day)
			},
		},
		{
			name: "tls pair and long literal password",
			in:   "tls:\n  cert_file: /etc/bulwark/cert.pem\n  key_file: /etc/bulwark/key.pem\nbootstrap:\n  admin_password: correct horse battery\n",
			edit: func(c *Config) {
				c.TLS = TLS{CertFile: "/etc/bulwark/cert.pem", KeyFile: "/etc/bulwark/key.pem"}
				c.Bootstrap.AdminPassword = LiteralSecret("correct horse battery")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("bulwark.yaml", []byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := Default()
			tt.edit(&want)
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(Secret{})); diff != "" {
				t.Errorf("config mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v, want nil", err)
	}
	// Default must hand out fresh slices: a caller changing one Config must
	// not change the next Default().
	a := Default()
	a.Auth.WebAuthn.Origins[0] = "https://changed.example"
	if got := Default().Auth.WebAuthn.Origins[0]; got != "https://localhost:8443" {
		t.Errorf("Default().Auth.WebAuthn.Origins[0] = %q after editing a copy, want https://localhost:8443", got)
	}
}

func TestDefaultValues(t *testing.T) {
	d := Default()
	got := map[string]string{
		"listen":                    d.Listen,
		"log.level":                 d.Log.Level,
		"log.format":                d.Log.Format,
		"store.driver":              d.Store.Driver,
		"store.max_open_conns":      itoa(d.Store.MaxOpenConns),
		"api.max_body_bytes":        d.API.MaxBodyBytes.String(),
		"api.read_timeout":          d.API.ReadTimeout.String(),
		"api.write_timeout":         d.API.WriteTimeout.String(),
		"api.idle_timeout":          d.API.IdleTimeout.String(),
		"api.page_size_max":         itoa(d.API.PageSizeMax),
		"auth.password_min_length":  itoa(d.Auth.PasswordMinLength),
		"auth.session_idle_timeout": d.Auth.SessionIdleTimeout.String(),
		"auth.session_max_age":      d.Auth.SessionMaxAge.String(),
		"auth.token_max_age":        d.Auth.TokenMaxAge.String(),
		"auth.throttle.base_delay":  d.Auth.Throttle.BaseDelay.String(),
		"auth.throttle.max_delay":   d.Auth.Throttle.MaxDelay.String(),
		"auth.throttle.lockout":     itoa(d.Auth.Throttle.LockoutAfter),
		"auth.throttle.free":        itoa(d.Auth.Throttle.FreeAttempts),
		"auth.webauthn.rp_id":       d.Auth.WebAuthn.RPID,
		"auth.webauthn.rp_name":     d.Auth.WebAuthn.RPName,
		"auth.webauthn.origins":     strings.Join(d.Auth.WebAuthn.Origins, ","),
		"audit.retention":           d.Audit.Retention.String(),
		"audit.checkpoint_every":    itoa(d.Audit.CheckpointEvery),
	}
	want := map[string]string{
		"listen":                    "127.0.0.1:8443",
		"log.level":                 "info",
		"log.format":                "text",
		"store.driver":              "sqlite",
		"store.max_open_conns":      "10",
		"api.max_body_bytes":        "1MiB",
		"api.read_timeout":          "30s",
		"api.write_timeout":         "1m",
		"api.idle_timeout":          "2m",
		"api.page_size_max":         "500",
		"auth.password_min_length":  "12",
		"auth.session_idle_timeout": "30m",
		"auth.session_max_age":      "12h",
		"auth.token_max_age":        "365d",
		"auth.throttle.base_delay":  "1s",
		"auth.throttle.max_delay":   "15m",
		"auth.throttle.lockout":     "20",
		"auth.throttle.free":        "3",
		"auth.webauthn.rp_id":       "localhost",
		"auth.webauthn.rp_name":     "Bulwark",
		"auth.webauthn.origins":     "https://localhost:8443",
		"audit.retention":           "400d",
		"audit.checkpoint_every":    "1000",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults mismatch (-want +got):\n%s", diff)
	}
	if !d.API.MetricsPublic || d.Auth.Require2FA || d.Store.DSN.IsSet() || d.Bootstrap.AdminPassword.IsSet() ||
		d.TLS != (TLS{}) || d.DataDir != "" || d.Audit.Anchor != "" || len(d.Auth.Require2FARoles) != 0 {
		t.Errorf("Default() zero-value fields wrong: %+v", d)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
