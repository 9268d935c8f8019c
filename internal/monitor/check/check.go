// Package check runs service checks: HTTP(S), TCP, ICMP ping, DNS, SSH
// banner, TLS certificate, PostgreSQL, MariaDB/MySQL, process, systemd
// unit, file freshness and Nagios-compatible plugins.
//
// A check is compiled once from its configuration (New: regular
// expressions and JSON conditions parsed, secrets resolved, an HTTP client
// built) and then run as often as its interval says (Run). One run is up to
// 1+retries attempts, each bounded by the check's timeout; the first
// attempt that passes ends the run. Every run gives one Result: whether it
// passed, a status in Nagios' vocabulary (ok, warning, critical, unknown),
// the time it took, a one-line message saying what was found, and named
// numeric values (latency, status code, days to certificate expiry,
// replication lag...) that the monitor exports as metrics.
//
// Checks never panic on what a server sends: bodies are read to a bound,
// banners to a line, plugin output to 64 KiB.
package check

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
)

// Status is a check's state in Nagios' vocabulary.
type Status string

// The statuses.
const (
	StatusOK       Status = "ok"
	StatusWarning  Status = "warning"
	StatusCritical Status = "critical"
	StatusUnknown  Status = "unknown"
)

// Result is the outcome of one run of a check.
type Result struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// OK is whether the run passed: status ok, or warning unless the
	// check counts warnings as failures.
	OK     bool   `json:"ok"`
	Status Status `json:"status"`
	// DurationSeconds is the time the run took, every attempt included.
	DurationSeconds float64 `json:"duration_seconds"`
	// Message says what was found, in one line.
	Message string `json:"message"`
	// Attempts is how many attempts the run made (1 + retries used).
	Attempts int       `json:"attempts"`
	Time     time.Time `json:"time"`
	// Values are named measurements: latency_seconds, status_code,
	// cert_expiry_seconds, lag_seconds, replicas, loss_percent, ...
	Values map[string]float64 `json:"values,omitempty"`
	// Perf is a Nagios plugin's performance data.
	Perf []Perf `json:"perf,omitempty"`
}

// outcome is what one attempt found.
type outcome struct {
	status Status
	msg    string
	values map[string]float64
	perf   []Perf
}

func pass(format string, args ...any) outcome {
	return outcome{status: StatusOK, msg: fmt.Sprintf(format, args...)}
}

func fail(format string, args ...any) outcome {
	return outcome{status: StatusCritical, msg: fmt.Sprintf(format, args...)}
}

func unknown(format string, args ...any) outcome {
	return outcome{status: StatusUnknown, msg: fmt.Sprintf(format, args...)}
}

func (o outcome) with(name string, v float64) outcome {
	if o.values == nil {
		o.values = map[string]float64{}
	}
	o.values[name] = v
	return o
}

// Options are what checks need from their surroundings.
type Options struct {
	// Getenv and ReadFile resolve secrets (database DSNs); default
	// os.Getenv and os.ReadFile.
	Getenv   func(string) string
	ReadFile func(string) ([]byte, error)
	// Now is the clock (default time.Now).
	Now func() time.Time
	// ProcPath is where /proc is mounted (default /proc).
	ProcPath string
	// Transports shares HTTP connections between HTTP checks; nil gives
	// each check its own (Compile shares one set between the checks it
	// compiles).
	Transports *Transports
}

func (o *Options) defaults() {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.ReadFile == nil {
		o.ReadFile = os.ReadFile
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ProcPath == "" {
		o.ProcPath = "/proc"
	}
	if o.Transports == nil {
		o.Transports = NewTransports()
	}
}

// Check is a compiled check, ready to run. It is safe for concurrent use,
// but the monitor runs each check one run at a time.
type Check struct {
	cfg     config.Check
	kind    string
	now     func() time.Time
	attempt func(ctx context.Context) outcome
}

// Config returns the check's configuration, with defaults applied.
func (c *Check) Config() config.Check { return c.cfg }

// Name returns the check's name.
func (c *Check) Name() string { return c.cfg.Name }

// Kind returns the kind of check: http, tcp, ...
func (c *Check) Kind() string { return c.kind }

// New compiles a check. Errors name the check and the setting.
func New(cfg config.Check, o Options) (*Check, error) {
	o.defaults()
	cfg = cfg.WithDefaults()
	c := &Check{cfg: cfg, kind: cfg.Kind(), now: o.Now}
	var err error
	switch c.kind {
	case "http":
		c.attempt, err = newHTTP(cfg.HTTP, o)
	case "tcp":
		c.attempt = newTCP(cfg.TCP)
	case "ping":
		c.attempt = newPing(cfg.Ping)
	case "dns":
		c.attempt = newDNS(cfg.DNS)
	case "ssh":
		c.attempt = newSSH(cfg.SSH)
	case "tls":
		c.attempt = newTLS(cfg.TLS, o)
	case "postgres":
		c.attempt, err = newPostgres(cfg.Postgres, o)
	case "mysql":
		c.attempt, err = newMySQL(cfg.MySQL, o)
	case "process":
		c.attempt = newProcess(cfg.Process, o)
	case "systemd":
		c.attempt = newSystemd(cfg.Systemd)
	case "file":
		c.attempt = newFile(cfg.File, o)
	case "nagios":
		c.attempt = newNagios(cfg.Nagios)
	default:
		err = errors.New("says nothing to check, or more than one thing")
	}
	if err != nil {
		return nil, fmt.Errorf("check %q: %w", cfg.Name, err)
	}
	return c, nil
}

// Run runs the check once: up to 1+retries attempts, each within the
// timeout, stopping at the first that passes.
func (c *Check) Run(ctx context.Context) Result {
	start := c.now()
	var o outcome
	n := 0
	for n <= c.cfg.Retries {
		n++
		actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout.D())
		o = c.attempt(actx)
		timedOut := actx.Err() == context.DeadlineExceeded
		cancel()
		if timedOut && o.status != StatusOK {
			o.msg = fmt.Sprintf("timed out after %s: %s", c.cfg.Timeout, o.msg)
		}
		if c.passes(o.status) || ctx.Err() != nil {
			break
		}
	}
	return Result{
		Name: c.cfg.Name, Kind: c.kind, OK: c.passes(o.status), Status: o.status,
		DurationSeconds: c.now().Sub(start).Seconds(), Message: oneLine(o.msg), Attempts: n,
		Time: start, Values: o.values, Perf: o.perf,
	}
}

func (c *Check) passes(s Status) bool {
	return s == StatusOK || s == StatusWarning && !c.cfg.Nagios.WarningIsFailure
}

// oneLine keeps a message to one line of at most 512 bytes.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	if len(s) > 512 {
		s = s[:509] + "..."
	}
	return s
}

// ms formats a duration as milliseconds for messages.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	if v < 10 {
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.0f ms", v)
}

// errText shortens the errors of the standard library for messages: a
// dial error is said once, without the Go operation names.
func errText(err error) string {
	s := err.Error()
	for _, p := range []string{"dial tcp ", "read tcp ", "write tcp "} {
		if i := strings.Index(s, p); i >= 0 {
			if j := strings.Index(s[i:], ": "); j >= 0 {
				s = s[:i] + s[i+j+2:]
			}
		}
	}
	return s
}

// Compile compiles every configured check, stopping at the first error.
func Compile(cfgs []config.Check, o Options) ([]*Check, error) {
	if o.Transports == nil {
		o.Transports = NewTransports()
	}
	out := make([]*Check, 0, len(cfgs))
	for _, cfg := range cfgs {
		c, err := New(cfg, o)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// RunAll runs each check once, at most parallel at a time, and returns the
// results in the checks' order.
func RunAll(ctx context.Context, checks []*Check, parallel int) []Result {
	out := make([]Result, len(checks))
	sem := make(chan struct{}, max(1, parallel))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i] = c.Run(ctx)
		}()
	}
	wg.Wait()
	return out
}
