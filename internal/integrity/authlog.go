package integrity

// Security events of the authentication log. The lines are read by the
// same follower (detect/tail: rotation by rename or truncation, positions
// kept across restarts) and parsed by the same package (detect/logparse)
// as detection's, and each event of interest is published: logins and
// failed ones, sudo and su and their failures, users and groups added,
// removed or changed, passwords changed. Graded by what it grants: a root
// login by password, a user with UID 0, a user added to sudo or adm
// stand out.

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/detect/logparse"
	"github.com/bulwarkhq/bulwark/internal/detect/tail"
	"github.com/bulwarkhq/bulwark/internal/events"
)

var secTypes = map[string]events.Type{
	logparse.SecLogin: events.TypeAuthLogin, logparse.SecLoginFailed: events.TypeAuthLoginFailed,
	logparse.SecSudo: events.TypeAuthSudo, logparse.SecSudoFailed: events.TypeAuthSudoFailed,
	logparse.SecSu: events.TypeAuthSu, logparse.SecSuFailed: events.TypeAuthSuFailed,
	logparse.SecUserAdded: events.TypeAccountUserAdded, logparse.SecUserDeleted: events.TypeAccountUserDeleted,
	logparse.SecUserChanged: events.TypeAccountUserChanged, logparse.SecGroupAdded: events.TypeAccountGroupAdded,
	logparse.SecGroupDeleted: events.TypeAccountGroupDeleted, logparse.SecGroupChanged: events.TypeAccountGroupChanged,
	logparse.SecPasswordChanged: events.TypeAccountPasswordChanged,
}

// privilegedGroups are the groups whose members may become root or read
// every log.
var privilegedGroups = map[string]bool{"root": true, "sudo": true, "wheel": true, "adm": true, "admin": true, "shadow": true, "disk": true, "docker": true, "lxd": true}

// securityEvent turns a parsed line into an event: its severity and one
// line saying what happened.
func securityEvent(e logparse.SecurityEntry, log string) events.Event {
	sev := events.SeverityNotice
	var msg string
	from := ""
	if e.Source.IsValid() {
		from = " from " + e.Source.String()
	}
	switch e.Kind {
	case logparse.SecLogin:
		msg = fmt.Sprintf("%s logged in by %s%s", e.User, e.Method, from)
		switch {
		case e.User == "root" && e.Method != "publickey":
			sev = events.SeverityError // password, keyboard-interactive/pam, ...
		case e.User == "root":
			sev = events.SeverityWarning
		case e.Method == "publickey":
			sev = events.SeverityInfo
		}
	case logparse.SecLoginFailed:
		msg = fmt.Sprintf("failed login as %s%s", e.User, from)
		if e.User == "root" {
			sev = events.SeverityWarning
		}
	case logparse.SecSudo:
		msg, sev = fmt.Sprintf("%s ran as %s: %s", e.User, e.Target, e.Command), events.SeverityInfo
	case logparse.SecSudoFailed:
		msg, sev = fmt.Sprintf("sudo refused to %s (as %s): %s", e.User, e.Target, e.Message), events.SeverityWarning
	case logparse.SecSu:
		msg = fmt.Sprintf("%s became %s with su", e.User, e.Target)
	case logparse.SecSuFailed:
		msg, sev = fmt.Sprintf("su to %s refused to %s", e.Target, e.User), events.SeverityWarning
	case logparse.SecUserAdded:
		msg, sev = fmt.Sprintf("user %s added (UID %d)", e.User, e.ID), events.SeverityWarning
		if e.ID == 0 {
			msg, sev = fmt.Sprintf("user %s added with UID 0 (a second root)", e.User), events.SeverityCritical
		}
	case logparse.SecUserChanged:
		msg, sev = fmt.Sprintf("user %s changed: %s", e.User, e.Message), events.SeverityWarning
		switch {
		case e.ID == 0:
			msg, sev = fmt.Sprintf("user %s given UID 0 (a second root)", e.User), events.SeverityCritical
		case privilegedGroups[e.Target]:
			msg, sev = fmt.Sprintf("user %s added to the privileged group %s", e.User, e.Target), events.SeverityError
		}
	case logparse.SecPasswordChanged:
		msg = fmt.Sprintf("password of %s changed", e.User)
		if e.User == "root" {
			sev = events.SeverityWarning
		}
	default: // user deleted, groups added, deleted, changed
		msg, sev = fmt.Sprintf("%s %s (%s)", e.Kind, e.User, e.Program), events.SeverityWarning
	}
	if e.Ambiguous {
		// The user chose text that imitates sudo's fields: say so, keep
		// the whole line, and do not let it pass as routine.
		msg = "sudo line with several USER= fields (a crafted command or directory?): " + e.Message
		if sev.Less(events.SeverityWarning) {
			sev = events.SeverityWarning
		}
	}
	data := map[string]any{"kind": e.Kind, "program": e.Program, "user": e.User, "log": log}
	if e.Ambiguous {
		data["ambiguous"] = true
	}
	for k, v := range map[string]string{"target": e.Target, "method": e.Method, "command": e.Command} {
		if v != "" {
			data[k] = v
		}
	}
	if e.Source.IsValid() {
		data["source"] = e.Source.String()
	}
	if e.ID >= 0 && (e.Kind == logparse.SecUserAdded || e.Kind == logparse.SecGroupAdded) {
		data["id"] = strconv.FormatInt(e.ID, 10)
	}
	return events.Event{Type: secTypes[e.Kind], Severity: sev, Time: e.Time, Resource: resource("account/", e.User),
		Message: events.OneLine(msg), Data: data}
}

// failLimit bounds the login_failed events of one source: at most
// failBurst in failWindow, the rest counted into the next one's data
// ("suppressed"). The internet's scanners fail thousands of logins a day,
// each would be a stored event and an audit entry; detection bans them.
type failLimit struct {
	mu      sync.Mutex
	sources map[netip.Addr]*failWindow
}

type failWindow struct {
	start      time.Time
	n          int
	suppressed int
}

const (
	failBurst   = 5
	failWindowD = 10 * time.Minute
	failSources = 10000
)

// allow says whether a failed login from src at now is published, and how
// many before it were not.
func (l *failLimit) allow(src netip.Addr, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sources == nil || len(l.sources) >= failSources {
		l.sources = map[netip.Addr]*failWindow{}
	}
	w := l.sources[src]
	if w == nil || now.Sub(w.start) >= failWindowD {
		if w == nil {
			w = &failWindow{}
			l.sources[src] = w
		}
		w.start, w.n = now, 0
	}
	if w.n >= failBurst {
		w.suppressed++
		return false, 0
	}
	w.n++
	n := w.suppressed
	w.suppressed = 0
	return true, n
}

// prefixed keeps the integrity follower's positions apart from
// detection's, which may follow the same file.
type prefixed struct{ tail.Offsets }

func (p prefixed) Load(ctx context.Context, path string) (tail.Position, bool, error) {
	return p.Offsets.Load(ctx, "integrity:"+path)
}

func (p prefixed) Save(ctx context.Context, path string, pos tail.Position) error {
	return p.Offsets.Save(ctx, "integrity:"+path, pos)
}

// followAuthLog publishes the security events of one log until ctx ends.
// A log never read before is started at its end: its history is not news.
func (s *Service) followAuthLog(ctx context.Context, path string) error {
	opt := tail.Options{Path: path, StartAtEnd: true, Logger: s.Logger}
	if s.Offsets != nil {
		opt.Offsets = prefixed{s.Offsets}
	}
	if _, err := os.Stat(path); err != nil {
		s.publish(ctx, events.Event{Type: events.TypeIntegrityWarning, Severity: events.SeverityWarning, Resource: resource("log", path),
			Message: events.OneLine(fmt.Sprintf("authentication log %s: %v; waiting for it (a system logging to the journal only needs rsyslog, or journalctl -f -o short-iso written to this file)", path, err))})
	}
	return tail.Follow(ctx, opt, func(line []byte) error {
		e, ok := logparse.ParseSecurity(line, time.Now())
		if !ok {
			return nil
		}
		ev := securityEvent(e, path)
		if e.Kind == logparse.SecLoginFailed && e.Source.IsValid() {
			ok, suppressed := s.fails.allow(e.Source, time.Now())
			if !ok {
				return nil
			}
			if suppressed > 0 {
				ev.Data["suppressed"] = suppressed
			}
		}
		s.publish(ctx, ev)
		return nil
	})
}
