package config

import "testing"

func TestMonitorErrors(t *testing.T) {
	in := `monitor:
  interval: 0s
  processes: [nginx, "a/b"]
  checks:
    - name: web
      http: {url: "ftp://x/", status: 700, headers: ["no colon"], regex: "("}
    - name: web
      tcp: {address: "127.0.0.1"}
    - name: two
      tcp: {address: "127.0.0.1:1"}
      ping: {host: 127.0.0.1}
    - name: none
    - name: slow
      interval: 5s
      timeout: 10s
      file: {path: rel}
    - name: plug
      nagios: {command: [check_disk]}
alerts:
  channels:
    - name: m
      email: {server: "smtp:25", tls: none, username: u, to: [a@b]}
    - name: m
      webhook: {url: "http://h/"}
  rules:
    - name: r
      channels: [nope]
    - name: r2
      check: web
      metric: "load1 > 4"
      channels: [m]
      escalate: {after: 5m}
  watchdog:
    url: "http://h/"
`
	wantParseErrors(t, in, []string{
		`bulwark.yaml:2: monitor.interval: must be between 1s and 1h, got 0s`,
		`bulwark.yaml:3: monitor.processes[1]: "a/b" is not a process name as in /proc/PID/comm (1 to 15 characters, no /)`,
		`bulwark.yaml:6: monitor.checks[0].http.url: "ftp://x/" is not an http:// or https:// URL`,
		`bulwark.yaml:6: monitor.checks[0].http.status: must be between 100 and 599, got 700`,
		`bulwark.yaml:6: monitor.checks[0].http.headers[0]: "no colon" is not a header line "Name: value"`,
		"bulwark.yaml:6: monitor.checks[0].http.regex: error parsing regexp: missing closing ): `(`",
		`bulwark.yaml:7: monitor.checks[1].name: "web" is used by two checks`,
		`bulwark.yaml:8: monitor.checks[1].tcp.address: "127.0.0.1" is not host:port, e.g. 127.0.0.1:5432 or db.example.net:5432`,
		`bulwark.yaml:9: monitor.checks[2]: sets tcp and ping: one check does one thing; split it into 2 checks`,
		`bulwark.yaml:12: monitor.checks[3]: says nothing to check: set one of http, tcp, ping, dns, ssh, tls, postgres, mysql, process, systemd, file, nagios`,
		`bulwark.yaml:15: monitor.checks[4].timeout: 10s is longer than the interval 5s`,
		`bulwark.yaml:16: monitor.checks[4].file.max_age: required: how recently the file must have been modified, e.g. 25h`,
		`bulwark.yaml:16: monitor.checks[4].file.path: "rel" is not an absolute path; give the full path starting with /`,
		`bulwark.yaml:18: monitor.checks[5].nagios.command[0]: "check_disk": give the plugin's absolute path, e.g. /usr/lib/nagios/plugins/check_disk`,
		`bulwark.yaml:22: alerts.channels[0].email.from: required: the sender address`,
		`bulwark.yaml:22: alerts.channels[0].email.username: authentication over an unencrypted connection would send the password in clear; set tls to starttls or tls`,
		`bulwark.yaml:23: alerts.channels[1].name: "m" is used by two channels`,
		`bulwark.yaml:26: alerts.rules[0]: watches nothing: set check (a check's name, or "*") or metric (a condition such as 'filesystem_used_percent > 90')`,
		`bulwark.yaml:27: alerts.rules[0].channels[0]: "nope" is not a channel in alerts.channels`,
		`bulwark.yaml:28: alerts.rules[1]: sets both check and metric; one rule watches one thing`,
		`bulwark.yaml:32: alerts.rules[1].escalate: needs both after and channels`,
		`bulwark.yaml:33: alerts.watchdog.interval: required when url or channels are set, e.g. 5m`,
	})
}

func TestMonitorReferences(t *testing.T) {
	in := `monitor:
  checks:
    - name: web
      tcp: {address: "127.0.0.1:80"}
alerts:
  channels:
    - name: hook
      webhook: {url: "http://127.0.0.1:9/"}
  rules:
    - name: a
      check: nope
      channels: [hook]
    - name: b
      check: "*"
      channels: [hook]
status:
  title: ""
  pages:
    - name: main
      checks: [web, gone]
  publish:
    - dir: rel
    - {}
`
	wantParseErrors(t, in, []string{
		`bulwark.yaml:11: alerts.rules[0].check: "nope" is not a check in monitor.checks`,
		`bulwark.yaml:17: status.title: required: the heading of the status pages`,
		`bulwark.yaml:20: status.pages[0].checks[1]: "gone" is not a check in monitor.checks`,
		`bulwark.yaml:22: status.publish[0].dir: "rel" is not an absolute path; give the full path starting with /`,
		`bulwark.yaml:23: status.publish[1]: says nowhere to publish: set dir, s3 or vault`,
	})
}

func TestStatusPageNames(t *testing.T) {
	wantParseErrors(t, "status:\n  pages:\n    - name: status.css\n    - name: ops\n", []string{
		`bulwark.yaml:2: status.pages: needs a page named main: it is served at /status and exported as index.html`,
		`bulwark.yaml:3: status.pages[0].name: "status.css" is the name of a file beside the pages; choose another`,
	})
}
