package check

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
)

// MaxPluginOutput bounds what is kept of a plugin's output.
const MaxPluginOutput = 64 << 10

// Perf is one item of a Nagios plugin's performance data:
// 'label'=value[UOM];[warn];[crit];[min];[max].
type Perf struct {
	Label string   `json:"label"`
	Value float64  `json:"value"`
	Unit  string   `json:"unit,omitempty"`
	Warn  string   `json:"warn,omitempty"`
	Crit  string   `json:"crit,omitempty"`
	Min   *float64 `json:"min,omitempty"`
	Max   *float64 `json:"max,omitempty"`
}

// capped is a writer that keeps the first max bytes.
type capped struct {
	buf bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func newNagios(n config.NagiosCheck) func(context.Context) outcome {
	return func(ctx context.Context) outcome {
		cmd := exec.CommandContext(ctx, n.Command[0], n.Command[1:]...)
		out := &capped{max: MaxPluginOutput}
		cmd.Stdout, cmd.Stderr = out, out
		cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
		// The plugin and its children are one process group, killed
		// together at the timeout.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = time.Second
		err := cmd.Run()
		msg, perf := ParsePluginOutput(out.buf.String())
		code := -1
		var ee *exec.ExitError
		switch {
		case err == nil:
			code = 0
		case ctx.Err() != nil:
			return unknown("%s did not finish in time (killed)", n.Command[0])
		case errors.As(err, &ee) && ee.Exited():
			code = ee.ExitCode()
		case errors.As(err, &ee):
			return unknown("%s was killed by %s: %s", n.Command[0], ee.String(), msg)
		default:
			return unknown("run %s: %v", n.Command[0], err)
		}
		if msg == "" {
			msg = "(no output)"
		}
		st := map[int]Status{0: StatusOK, 1: StatusWarning, 2: StatusCritical, 3: StatusUnknown}[code]
		if st == "" {
			st = StatusUnknown
			msg = "exit status " + strconv.Itoa(code) + " is not a Nagios status (0-3): " + msg
		}
		oc := outcome{status: st, msg: msg, perf: perf}
		for _, p := range perf {
			oc = oc.with(p.Label, p.Value)
		}
		return oc.with("exit_status", float64(code))
	}
}

// ParsePluginOutput splits a plugin's output into its message (the text
// of the first line) and its performance data (after '|' on the first
// line and on the long-output lines, as in the Nagios plugin API).
func ParsePluginOutput(out string) (string, []Perf) {
	lines := strings.Split(out, "\n")
	first, perfText, _ := strings.Cut(lines[0], "|")
	var more []string
	inPerf := false
	for _, l := range lines[1:] {
		if !inPerf {
			if _, p, ok := strings.Cut(l, "|"); ok {
				inPerf = true
				more = append(more, p)
			}
			continue
		}
		more = append(more, l)
	}
	perf := ParsePerfData(perfText + " " + strings.Join(more, " "))
	return strings.TrimSpace(first), perf
}

// MaxPerf bounds the items parsed from one output, MaxPerfLabel a label's
// bytes.
const (
	MaxPerf      = 100
	MaxPerfLabel = 128
)

// ParsePerfData parses performance data; malformed items are skipped.
func ParsePerfData(s string) []Perf {
	var out []Perf
	for len(out) < MaxPerf {
		s = strings.TrimLeft(s, " \t\r\n")
		if s == "" {
			break
		}
		var label string
		if s[0] == '\'' {
			// Quoted label; '' is a quote inside it.
			var b strings.Builder
			i := 1
			closed := false
			for i < len(s) {
				if s[i] == '\'' {
					if i+1 < len(s) && s[i+1] == '\'' {
						b.WriteByte('\'')
						i += 2
						continue
					}
					closed = true
					i++
					break
				}
				b.WriteByte(s[i])
				i++
			}
			if !closed {
				break
			}
			label, s = b.String(), s[i:]
		} else {
			i := strings.IndexAny(s, "= \t")
			if i < 0 {
				break
			}
			label, s = s[:i], s[i:]
		}
		if !strings.HasPrefix(s, "=") {
			// Not an item: skip to the next space.
			if i := strings.IndexAny(s, " \t"); i >= 0 {
				s = s[i:]
				continue
			}
			break
		}
		s = s[1:]
		end := strings.IndexAny(s, " \t\r\n")
		if end < 0 {
			end = len(s)
		}
		item := s[:end]
		s = s[end:]
		fields := strings.Split(item, ";")
		num := strings.IndexFunc(fields[0], func(r rune) bool {
			return !(r >= '0' && r <= '9' || r == '.' || r == '-' || r == '+' || r == 'e' || r == 'E')
		})
		valText, unit := fields[0], ""
		if num >= 0 {
			valText, unit = fields[0][:num], fields[0][num:]
		}
		v, err := strconv.ParseFloat(valText, 64)
		if err != nil || label == "" {
			continue
		}
		// A label becomes a metric's label value and a JSON key: valid
		// UTF-8, bounded.
		label = strings.ToValidUTF8(label, "\uFFFD")
		if len(label) > MaxPerfLabel {
			label = strings.ToValidUTF8(label[:MaxPerfLabel], "")
		}
		p := Perf{Label: label, Value: v, Unit: unit}
		get := func(i int) string {
			if i < len(fields) {
				return fields[i]
			}
			return ""
		}
		p.Warn, p.Crit = get(1), get(2)
		if f, err := strconv.ParseFloat(get(3), 64); err == nil {
			p.Min = &f
		}
		if f, err := strconv.ParseFloat(get(4), 64); err == nil {
			p.Max = &f
		}
		out = append(out, p)
	}
	return out
}
