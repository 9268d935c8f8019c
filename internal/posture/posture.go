// Package posture audits a host's hardening: each check has an id, a
// severity, the evidence it found and what to do about a failure. The
// checks read files (sshd_config and what it includes, /proc/net/tcp,
// /proc/self/mounts, os-release, passwd and shadow, apt's configuration)
// below a root that tests point at prepared trees, and system calls only
// where there is no file to read (the clock's synchronisation), through
// injectable functions, as are the commands that read the running system
// (nft's ruleset, apt's simulated upgrade).
//
// A check passes, fails, or is skipped with the reason (a file it needs is
// missing, it does not apply). A missing piece of evidence is never a
// pass: a check that cannot tell says "unknown", and the report counts it.
// Audit runs them all; the CLI exits 1 when a high-severity check fails.
package posture

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Severity grades a failed check.
type Severity string

// The severities, highest first.
const (
	High   Severity = "high"
	Medium Severity = "medium"
	Low    Severity = "low"
	Info   Severity = "info"
)

var severityRank = map[Severity]int{High: 0, Medium: 1, Low: 2, Info: 3}

// Status is a check's outcome.
type Status string

// The outcomes.
const (
	Pass    Status = "pass"
	Fail    Status = "fail"
	Unknown Status = "unknown" // the evidence could not be read
	Skipped Status = "skipped" // the check does not apply here
)

// Finding is one check's result.
type Finding struct {
	ID       string   `json:"id"`
	Title    string   `json:"title"`
	Severity Severity `json:"severity"`
	Status   Status   `json:"status"`
	// Evidence is what was found, with where (file and line, socket).
	Evidence []string `json:"evidence"`
	// Remediation says what to do when the check fails.
	Remediation string `json:"remediation"`
}

// Report is an audit's result.
type Report struct {
	Host     string    `json:"host"`
	Root     string    `json:"root"`
	Time     time.Time `json:"time"`
	Findings []Finding `json:"findings"`
	// Counts are findings by status, and Failed by severity.
	Counts map[Status]int   `json:"counts"`
	Failed map[Severity]int `json:"failed"`
}

// HighFailed reports whether a high-severity check failed.
func (r *Report) HighFailed() bool { return r.Failed[High] > 0 }

// Auditor runs the checks against a system mounted at Root.
type Auditor struct {
	// Root is where the audited system's files are ("/" for this host).
	Root string
	// Proc is the proc filesystem to read sockets and mounts from
	// (default Root/proc).
	Proc string
	// Now is the clock (end-of-life dates).
	Now func() time.Time
	// ClockSynced reports whether the kernel's clock is synchronised;
	// nil skips the check (an audit of an image has no clock).
	ClockSynced func() (bool, error)
	// AllowedPorts are the TCP ports that may listen on public addresses
	// (default 22, 80, 443).
	AllowedPorts []int

	// The commands below read the running system. Left nil, they are
	// this host's when Root is "/", and their checks are skipped for
	// another root (an image has no running firewall, and apt cannot be
	// run in it). Tests feed prepared output.

	// NFT returns `nft -j list ruleset`: the running firewall. An error
	// wrapping exec.ErrNotFound says nft is not installed, and the check
	// falls back to IPTablesSave.
	NFT func(ctx context.Context) ([]byte, error)
	// IPTablesSave returns the output of iptables-save, or of
	// ip6tables-save when v6 is set (an error wrapping exec.ErrNotFound
	// when it is not installed).
	IPTablesSave func(ctx context.Context, v6 bool) ([]byte, error)
	// AptSimulation returns `apt-get --just-print dist-upgrade`: the
	// pending upgrades, as the package lists know them.
	AptSimulation func(ctx context.Context) ([]byte, error)

	// scan is the walk of the system trees, shared by the file checks.
	scan *treeScan
}

func (a *Auditor) defaults() {
	if a.Root == "" {
		a.Root = "/"
	}
	if a.Proc == "" {
		a.Proc = filepath.Join(a.Root, "proc")
	}
	if a.Now == nil {
		a.Now = time.Now
	}
	if a.AllowedPorts == nil {
		a.AllowedPorts = []int{22, 80, 443}
	}
	a.scan = &treeScan{}
	if filepath.Clean(a.Root) == "/" {
		if a.NFT == nil {
			a.NFT = hostNFT
		}
		if a.IPTablesSave == nil {
			a.IPTablesSave = hostIPTablesSave
		}
		if a.AptSimulation == nil {
			a.AptSimulation = hostAptSimulation
		}
	}
}

// path is a file of the audited system: p is cleaned as an absolute path
// first, so "/../../x" (an Include of an audited image) stays below Root.
func (a *Auditor) path(p string) string { return filepath.Join(a.Root, filepath.Clean("/"+p)) }

// check is one registered check.
type check struct {
	id, title   string
	severity    Severity
	remediation string
	run         func(a *Auditor) (Status, []string)
}

// Checks lists the ids and titles of every check, in audit order.
func Checks() []Finding {
	out := make([]Finding, len(checks))
	for i, c := range checks {
		out[i] = Finding{ID: c.id, Title: c.title, Severity: c.severity, Remediation: c.remediation}
	}
	return out
}

// Audit runs every check.
func (a Auditor) Audit() *Report {
	a.defaults()
	host, _ := os.Hostname()
	r := &Report{Host: host, Root: a.Root, Time: a.Now().UTC(), Counts: map[Status]int{}, Failed: map[Severity]int{}}
	// The checks only read, and each waits on something different (the
	// tree walks on the disk, apt's simulation on the CPU): they run
	// concurrently, so the audit takes as long as its slowest check.
	r.Findings = make([]Finding, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			st, ev := c.run(&a)
			if ev == nil {
				ev = []string{}
			}
			r.Findings[i] = Finding{ID: c.id, Title: c.title, Severity: c.severity, Status: st, Evidence: ev, Remediation: c.remediation}
		})
	}
	wg.Wait()
	for _, f := range r.Findings {
		r.Counts[f.Status]++
		if f.Status == Fail {
			r.Failed[f.Severity]++
		}
	}
	// Failures first, by severity; then the rest, in check order.
	sort.SliceStable(r.Findings, func(i, j int) bool {
		fi, fj := r.Findings[i].Status == Fail, r.Findings[j].Status == Fail
		if fi != fj {
			return fi
		}
		return fi && severityRank[r.Findings[i].Severity] < severityRank[r.Findings[j].Severity]
	})
	return r
}

// readFile reads a file of the audited system; a missing file is
// errMissing (the check is skipped or unknown, never passed).
func (a *Auditor) readFile(p string) ([]byte, error) {
	b, err := os.ReadFile(a.path(p))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", errMissing, p)
	}
	return b, err
}

var errMissing = errors.New("missing")

// lines splits text into lines, keeping their numbers (from 1).
func lines(b []byte) []string {
	return strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n")
}
