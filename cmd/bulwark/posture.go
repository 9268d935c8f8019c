package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/posture"
)

func postureCommand() *Command {
	return &Command{
		Name:    "posture",
		Summary: "hardening audit of the host",
		Usage:   "bulwark posture audit [--json] [--root DIR]",
		Long: `Checks the host's hardening: sshd (root login, password authentication, port,
host key types), services listening on public addresses, the firewall's
default policy for incoming traffic, /tmp and /dev/shm mount options, pending
security updates and automatic updates, the operating system's end of life,
set-ID and world-writable files, accounts with UID 0 or an empty password, and
time synchronisation (docs/posture.md).`,
		Subs: []*Command{postureAuditCommand()},
	}
}

func postureAuditCommand() *Command {
	var asJSON bool
	var root, ports string
	return &Command{
		Name:    "audit",
		Summary: "run the hardening checks and print each with its evidence",
		Usage:   "bulwark posture audit [--json] [--root DIR] [--allow-ports 22,80,443]",
		Long: `Runs every hardening check and prints, failures first: the check's id, its
severity (high, medium, low, info), its status (pass, fail, unknown when the
evidence could not be read, skipped when it does not apply), the evidence
found (files with line numbers, sockets) and, for failures, what to do.
--json prints the report as one JSON object. --root audits a system mounted
elsewhere (an image, a container's root); the clock, firewall and pending
updates checks, which read the running host, are then skipped.
Run as root: /etc/shadow is readable by root only (the check says unknown
otherwise). Exit status 1 when a high-severity check fails, 0 otherwise,
2 on errors.`,
		Examples: []string{"bulwark posture audit", "bulwark posture audit --json | jq '.findings[] | select(.status == \"fail\")'", "bulwark posture audit --root /mnt/image"},
		Flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
			fs.StringVar(&root, "root", "/", "audit the system mounted at `DIR`")
			fs.StringVar(&ports, "allow-ports", "22,80,443", "TCP `PORTS` that may listen on public addresses")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("audit takes no arguments, got %q", args)
			}
			a := posture.Auditor{Root: root, AllowedPorts: []int{}}
			for _, p := range strings.Split(ports, ",") {
				if p = strings.TrimSpace(p); p == "" {
					continue
				}
				n, err := strconv.Atoi(p)
				if err != nil || n < 1 || n > 65535 {
					return usageError("--allow-ports: %q is not a port number", p)
				}
				a.AllowedPorts = append(a.AllowedPorts, n)
			}
			if root == "/" {
				a.ClockSynced = posture.ClockSynced
			}
			r := a.Audit()
			if asJSON {
				if err := writeJSON(e.Stdout, r); err != nil {
					return err
				}
			} else {
				for _, f := range r.Findings {
					fmt.Fprintf(e.Stdout, "%-8s %-7s %-24s %s\n", strings.ToUpper(string(f.Status)), f.Severity, f.ID, f.Title)
					for _, ev := range f.Evidence {
						fmt.Fprintf(e.Stdout, "         %s\n", ev)
					}
					if f.Status == posture.Fail {
						fmt.Fprintf(e.Stdout, "         fix: %s\n", f.Remediation)
					}
				}
				fmt.Fprintf(e.Stderr, "%d checks: %d passed, %d failed (%d high), %d unknown, %d skipped\n", len(r.Findings),
					r.Counts[posture.Pass], r.Counts[posture.Fail], r.Failed[posture.High], r.Counts[posture.Unknown], r.Counts[posture.Skipped])
			}
			if r.HighFailed() {
				return &ExitError{Code: 1}
			}
			return nil
		},
	}
}
