package integrity

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/detect/tail"
	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
)

// TestService runs the service as `bulwark up` does, over a real event
// store: the first start records and signs the baseline, a change to a
// watched authentication file becomes a high-severity event with its
// reasons and changes, the evidence counts it; a later start verifies the
// baseline, and one edited on disk is refused with a critical event.
func TestService(t *testing.T) {
	db := storetest.SQLite(t, events.Migrations)
	bus := events.NewBus(db, events.Options{})
	t.Cleanup(func() { bus.Close(context.Background()) })
	root := sampleTree(t)
	data := t.TempDir()
	cfg := config.Integrity{Enabled: true, DefaultExcludes: true, Hash: "sha256", Root: root,
		Rules: []config.IntegrityRule{{Path: root + "/etc"}, {Path: root + "/usr", Attrs: []string{"p+u+g+s+sha256"}}}}
	svc := &Service{Config: cfg, DataDir: data, Bus: bus}

	run := func() (stop func() error) {
		c, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- svc.Run(c) }()
		return func() error { cancel(); return <-done }
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %s within 20 s; status %+v", what, svc.Status())
			}
		}
	}
	query := func(typ events.Type) []events.Event {
		t.Helper()
		evs, err := bus.Query(ctx, events.Filter{Types: []events.Type{typ}})
		must(t, err)
		return evs
	}

	stop := run()
	waitFor("first scan", func() bool { return svc.Status().LastScan != nil })
	if st := svc.Status(); !st.Watching || st.Entries == 0 || st.Differences != 0 || st.Baseline != filepath.Join(data, "integrity.baseline") {
		t.Fatalf("status after the first scan: %+v", st)
	}
	for _, f := range []string{"integrity.baseline", "integrity.key", "integrity.pub"} {
		if _, err := os.Stat(filepath.Join(data, f)); err != nil {
			t.Fatal(err)
		}
	}
	if evs := query(events.TypeIntegrityBaselineCreated); len(evs) != 1 || evs[0].Module != events.ModuleIntegrity {
		t.Fatalf("baseline_created events: %+v", evs)
	}

	passwd := root + "/etc/passwd"
	writeFile(t, passwd, "root:x:0:0:root:/root:/bin/bash\nevil:x:0:0::/:/bin/sh\n")
	var ev events.Event
	waitFor("the passwd change event", func() bool {
		for _, e := range query(events.TypeIntegrityChanged) {
			if e.Resource == "file"+passwd {
				ev = e
				return true
			}
		}
		return false
	})
	if ev.Severity != events.SeverityError || ev.Data["severity"] != SeverityHigh || !strings.Contains(ev.Message, "high: authentication") ||
		ev.Data["changes"] == nil || ev.Actor != "system:integrity" {
		t.Errorf("passwd event: %+v", ev)
	}
	waitFor("the evidence counting it", func() bool { st := svc.Status(); return st.Differences >= 1 && st.High >= 1 })
	if err := stop(); err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	if svc.Status().Watching {
		t.Error("still watching after stop")
	}

	// A second start verifies the baseline and reports the change again
	// from its first scan.
	stop = run()
	waitFor("the second start's scan", func() bool { st := svc.Status(); return st.LastScan != nil && st.High >= 1 })
	waitFor("the second scan's event", func() bool { return len(query(events.TypeIntegrityScanCompleted)) == 2 })
	if evs := query(events.TypeIntegrityScanCompleted); evs[1].Data["high"] == nil || evs[1].Data["high"].(json.Number) != "1" {
		t.Errorf("scan_completed events: %+v", evs)
	}
	must(t, stop())

	// An edited baseline is refused: no watching, a critical event.
	b, err := os.ReadFile(svc.BaselinePath())
	must(t, err)
	b[len(b)/2] ^= 0x20
	must(t, os.WriteFile(svc.BaselinePath(), b, 0o644))
	if err := svc.Run(ctx); err == nil || svc.Status().Error == "" || svc.Status().Watching {
		t.Fatalf("Run over an edited baseline: %v, status %+v", err, svc.Status())
	}
	if evs := query(events.TypeIntegrityBaselineInvalid); len(evs) != 1 || evs[0].Severity != events.SeverityCritical {
		t.Fatalf("baseline_invalid events: %+v", evs)
	}

	// A deleted baseline is not silently recorded again from the
	// (possibly compromised) system: one was recorded before.
	must(t, os.Remove(svc.BaselinePath()))
	if err := svc.Run(ctx); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("Run without the baseline: %v", err)
	}
	if _, err := os.Stat(svc.BaselinePath()); err == nil {
		t.Fatal("a new baseline was recorded")
	}
	if evs := query(events.TypeIntegrityBaselineInvalid); len(evs) != 2 || evs[1].Severity != events.SeverityCritical {
		t.Fatalf("baseline_invalid events after the deletion: %+v", evs)
	}
	if n := len(query(events.TypeIntegrityBaselineCreated)); n != 1 {
		t.Fatalf("%d baseline_created events", n)
	}
}

// TestServiceAuthLog follows an authentication log through a rotation:
// what was in it before is not news, every security line after becomes one
// event with its grade, the lines of the rotated file included.
func TestServiceAuthLog(t *testing.T) {
	db := storetest.SQLite(t, events.Migrations)
	bus := events.NewBus(db, events.Options{})
	t.Cleanup(func() { bus.Close(context.Background()) })
	root, logs := sampleTree(t), t.TempDir()
	auth := filepath.Join(logs, "auth.log")
	writeFile(t, auth, "Nov 22 09:00:00 web1 useradd[1]: new user: name=old, UID=1005, GID=1005, home=/home/old, shell=/bin/sh\n")
	svc := &Service{Config: config.Integrity{Enabled: true, DefaultExcludes: true, Hash: "sha256", Root: root,
		Rules: []config.IntegrityRule{{Path: root + "/etc"}}, AuthLogs: []string{auth}}, DataDir: t.TempDir(), Bus: bus, Offsets: tail.NewMemOffsets()}
	c, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(c) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	appendLine := func(path, line string) {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o640)
		must(t, err)
		_, err = f.WriteString(line + "\n")
		must(t, err)
		must(t, f.Close())
	}
	byType := func() map[events.Type][]events.Event {
		evs, err := bus.Query(ctx, events.Filter{Types: []events.Type{"auth.", "account."}})
		must(t, err)
		out := map[events.Type][]events.Event{}
		for _, e := range evs {
			out[e.Type] = append(out[e.Type], e)
		}
		return out
	}
	// The follower starts at the end of the file: append until it sees.
	for i := 0; len(byType()[events.TypeAuthSudo]) == 0; i++ {
		if i > 100 {
			t.Fatal("the authentication log is not followed")
		}
		appendLine(auth, fmt.Sprintf("Nov 22 10:00:%02d web1 sudo:    alice : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/true %d", i%60, i))
		time.Sleep(100 * time.Millisecond)
	}
	for _, l := range []string{
		"2026-11-22T10:01:00+00:00 web1 sshd[9]: Accepted password for root from 203.0.113.9 port 4000 ssh2",
		"Nov 22 10:01:01 web1 useradd[10]: new user: name=toor, UID=0, GID=0, home=/root, shell=/bin/bash, from=/dev/pts/0",
		"Nov 22 10:01:02 web1 usermod[11]: add 'eve' to group 'sudo'",
		"Nov 22 10:01:03 web1 sudo:      bob : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/tmp ; USER=root ; COMMAND=/bin/bash",
		"Nov 22 10:01:04 web1 CRON[12]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
	} {
		appendLine(auth, l)
	}
	// Rotation: the file is renamed and a new one begins.
	must(t, os.Rename(auth, auth+".1"))
	appendLine(auth, "Nov 22 10:02:00 web1 su[13]: (to root) alice on pts/0")
	appendLine(auth, "Nov 22 10:02:01 web1 passwd[14]: pam_unix(passwd:chauthtok): password changed for root")
	want := map[events.Type]events.Severity{
		events.TypeAuthLogin: events.SeverityError, events.TypeAccountUserAdded: events.SeverityCritical,
		events.TypeAccountUserChanged: events.SeverityError, events.TypeAuthSudoFailed: events.SeverityWarning,
		events.TypeAuthSu: events.SeverityNotice, events.TypeAccountPasswordChanged: events.SeverityWarning,
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := byType()
		all := true
		for typ := range want {
			all = all && len(got[typ]) > 0
		}
		if all {
			for typ, sev := range want {
				if len(got[typ]) != 1 || got[typ][0].Severity != sev || got[typ][0].Module != events.ModuleIntegrity {
					t.Errorf("%s: %+v, want one of severity %s", typ, got[typ], sev)
				}
			}
			if e := got[events.TypeAccountUserAdded][0]; e.Resource != "account/toor" || !strings.Contains(e.Message, "UID 0") {
				t.Errorf("user added: %+v", e)
			}
			if e := got[events.TypeAuthLogin][0]; e.Data["source"] != "203.0.113.9" || e.Data["method"] != "password" {
				t.Errorf("login: %+v", e)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events after 20 s: %v", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFailLimit: a source's failed logins are published five per ten
// minutes; the next one after that says how many were left out.
func TestFailLimit(t *testing.T) {
	var l failLimit
	src, other := netip.MustParseAddr("198.51.100.4"), netip.MustParseAddr("198.51.100.5")
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for i := range 5 {
		if ok, n := l.allow(src, now.Add(time.Duration(i)*time.Second)); !ok || n != 0 {
			t.Fatalf("failure %d: %v %d", i, ok, n)
		}
	}
	for i := range 7 {
		if ok, _ := l.allow(src, now.Add(time.Minute+time.Duration(i)*time.Second)); ok {
			t.Fatalf("failure %d over the limit published", 5+i)
		}
	}
	if ok, _ := l.allow(other, now.Add(time.Minute)); !ok {
		t.Fatal("another source limited")
	}
	if ok, n := l.allow(src, now.Add(11*time.Minute)); !ok || n != 7 {
		t.Fatalf("after the window: %v, %d suppressed (want 7)", ok, n)
	}
}
