package integrity

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
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
}
