package config

import (
	"net/netip"
	"testing"
)

// TestGuardAcceptanceShape parses the configuration shape issue 5 names.
func TestGuardAcceptanceShape(t *testing.T) {
	in := `guard:
  listen: 127.0.0.1:8080
  sites:
    - hosts: [shop.example]
      upstreams: [http://127.0.0.1:9000]
      limits: {rate: 20, burst: 40, connections: 50}   # per source address
      waf: block                                       # off | detect | block
`
	cfg, err := Parse("bulwark.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.Guard
	if !g.Enabled() || g.Listen != "127.0.0.1:8080" || len(g.Sites) != 1 {
		t.Fatalf("guard: %+v", g)
	}
	if g.Sites[0].WAF != "block" {
		t.Errorf("waf = %q, want block", g.Sites[0].WAF)
	}
	want := GuardSiteLimits{Rate: 20, Burst: 40, Connections: 50}
	if got := g.Sites[0].Limits; got != want {
		t.Errorf("site limits = %+v, want %+v", got, want)
	}
	if g.Limits != defaultGuard().Limits || g.Timeouts != defaultGuard().Timeouts {
		t.Errorf("unset guard settings lost their defaults: %+v", g)
	}
	if Default().Guard.Enabled() {
		t.Error("the default configuration runs a guard")
	}
}

func TestGuardErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"no listener", "guard:\n  sites:\n    - hosts: [a.example]\n      upstreams: [http://127.0.0.1:9000]\n", []string{
			`bulwark.yaml:1: guard.listen: required when sites are configured: give listen (HTTP) or listen_tls (HTTPS), or both`,
		}},
		{"site rules", "guard:\n  listen: :8080\n  sites:\n    - hosts: [a.example, 'bad host', '*.*.x']\n      upstreams: [ftp://h/, 'http://u:p@h:80', http://h:99999]\n      max_body_bytes: 10\n    - hosts: [A.example.]\n      upstreams: []\n      limits: {rate: -1}\n", []string{
			`bulwark.yaml:4: guard.sites[0].hosts[1]: "bad host" is not a host name (or *.domain for its subdomains)`,
			`bulwark.yaml:4: guard.sites[0].hosts[2]: "*.*.x" is not a host name (or *.domain for its subdomains)`,
			`bulwark.yaml:5: guard.sites[0].upstreams[0]: "ftp://h/" is not an http:// or https:// URL with a host`,
			`bulwark.yaml:5: guard.sites[0].upstreams[1]: "http://u:p@h:80": give scheme, host, port and at most a path (no user, query or fragment)`,
			`bulwark.yaml:5: guard.sites[0].upstreams[2]: "http://h:99999": port "99999" is not a number from 1 to 65535`,
			`bulwark.yaml:6: guard.sites[0].max_body_bytes: must be 0 (the guard's default) or at least 1KiB, got 10`,
			`bulwark.yaml:7: guard.sites[1].hosts[0]: "a.example" is already a host of sites[0]; a host belongs to one site`,
			`bulwark.yaml:8: guard.sites[1].upstreams: required: at least one http:// or https:// URL`,
			`bulwark.yaml:9: guard.sites[1].limits.rate: must be between 0 and 1000000, got -1`,
		}},
		{"lists and tls", "guard:\n  listen: :8080\n  listen_tls: :8443\n  deny: [10.0.0.0/8, 10.1.2.3.4]\n  allow: ['::1', 'fe80::/200']\n  access_log: logs/access.json\n  sites:\n    - hosts: [a.example]\n      upstreams: [https://10.0.0.1]\n", []string{
			`bulwark.yaml:3: guard.listen_tls: needs at least one site with tls.cert_file and tls.key_file`,
			`bulwark.yaml:4: guard.deny[1]: not an address or CIDR such as 10.0.0.0/8 or 2001:db8::/32, got "10.1.2.3.4"`,
			`bulwark.yaml:5: guard.allow[1]: not an address or CIDR such as 10.0.0.0/8 or 2001:db8::/32, got "fe80::/200"`,
			`bulwark.yaml:6: guard.access_log: must be stdout, off or an absolute file path; got "logs/access.json"`,
		}},
		{"limits", "guard:\n  limits: {rate: 5, burst: 0, ipv6_prefix: 8, max_connections: 0}\n  timeouts: {header: 0s, max_header_bytes: 100}\n", []string{
			`bulwark.yaml:2: guard.limits.burst: must be at least 1 when rate is set (it is how many requests may arrive together)`,
			`bulwark.yaml:2: guard.limits.ipv6_prefix: must be between 16 and 128, got 8`,
			`bulwark.yaml:2: guard.limits.max_connections: must be between 1 and 10000000, got 0`,
			`bulwark.yaml:3: guard.timeouts.header: must be between 1s and 10m, got 0s`,
			`bulwark.yaml:3: guard.timeouts.max_header_bytes: must be between 1KiB and 1MiB, got 100`,
		}},
		{"waf", "guard:\n  listen: :8080\n  sites:\n    - hosts: [a.example]\n      upstreams: [http://127.0.0.1:1]\n      waf: on\n      waf_options: {paranoia: 5, body_limit: 10, skip_extensions: [css], exclusions: [{path: api}]}\n", []string{
			`bulwark.yaml:6: guard.sites[0].waf: must be one of off, detect, block; got "on"`,
			`bulwark.yaml:7: guard.sites[0].waf_options.paranoia: must be between 0 and 4, got 5`,
			`bulwark.yaml:7: guard.sites[0].waf_options.body_limit: must be 0 (128KiB) or between 1KiB and 64MiB, got 10`,
			`bulwark.yaml:7: guard.sites[0].waf_options.skip_extensions[0]: "css" is not an extension such as .css`,
			`bulwark.yaml:7: guard.sites[0].waf_options.exclusions[0].ids: required: the CRS rule ids to exclude, e.g. [942100]`,
			`bulwark.yaml:7: guard.sites[0].waf_options.exclusions[0].path: "api" must start with /`,
		}},
		{"certificate without https listener", "guard:\n  listen: :8080\n  sites:\n    - hosts: [a.example]\n      upstreams: [http://127.0.0.1:1]\n      tls: {cert_file: /c.pem, key_file: /k.pem}\n", []string{
			`bulwark.yaml:6: guard.sites[0].tls: a certificate is only used on listen_tls; set listen_tls too`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantParseErrors(t, tt.in, tt.want) })
	}
}

func TestParseNet(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"10.1.2.3", "10.1.2.3/32"},
		{"10.1.2.3/8", "10.0.0.0/8"},
		{"::ffff:10.1.2.3", "10.1.2.3/32"},
		{"2001:db8::1/64", "2001:db8::/64"},
		{"::1", "::1/128"},
	} {
		got, err := ParseNet(tt.in)
		if err != nil || got != netip.MustParsePrefix(tt.want) {
			t.Errorf("ParseNet(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "10.0.0.0/33", "host.example", "10.0.0.1/8/2"} {
		if _, err := ParseNet(bad); err == nil {
			t.Errorf("ParseNet(%q) accepted", bad)
		}
	}
}

func TestIntegrityErrors(t *testing.T) {
	in := "integrity:\n  enabled: true\n  baseline: rel/base\n  hash: md5\n  root: ''\n  rescan: 10s\n  exclude: ['[']\n  rules:\n    - path: etc\n    - attrs: [mode]\n    - path: /etc/\n    - path: /etc\n      exclude: ['']\n"
	wantParseErrors(t, in, []string{
		`bulwark.yaml:3: integrity.baseline: "rel/base" is not an absolute path; give the full path starting with /`,
		`bulwark.yaml:4: integrity.hash: must be one of sha256, blake3; got "md5"`,
		`bulwark.yaml:5: integrity.root: required: where the watched system is mounted, / for this host`,
		`bulwark.yaml:6: integrity.rescan: must be between 1m and 30d, got 10s`,
		`bulwark.yaml:7: integrity.exclude[0]: "[" is not a glob pattern (path.Match syntax)`,
		`bulwark.yaml:9: integrity.rules[0].path: "etc" is not an absolute path; give the full path starting with /`,
		`bulwark.yaml:10: integrity.rules[1].path: required: a directory or file to watch, e.g. /etc`,
		`bulwark.yaml:12: integrity.rules[3].path: "/etc" is listed twice`,
		`bulwark.yaml:13: integrity.rules[3].exclude[0]: "" is not a glob pattern (path.Match syntax)`,
	})
}
