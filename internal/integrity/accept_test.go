package integrity

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/signkey"
)

// runService runs svc until the test ends and waits for its first scan.
func runService(t *testing.T, svc *Service) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { stop() })
	waitUntil(t, "the first scan", func() bool { return svc.Status().LastScan != nil || svc.Status().Error != "" })
	return stop
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 20 s", what)
		}
	}
}

func findingOf(fs []CurrentFinding, path string) *CurrentFinding {
	for i := range fs {
		if fs[i].Path == path {
			return &fs[i]
		}
	}
	return nil
}

// TestServiceFindingsAndAccept: the service keeps each differing path's
// last finding (sorted high first, filtered by severity, limited); an
// accept of a subtree writes a new signed baseline whose header says who,
// why and how many, drops those paths from the findings and the counts at
// once, keeps the others, and the watch compares with the new baseline
// from then on (a rescan does not report the accepted change again, a
// later change is reported against it). Bad requests, a baseline file
// replaced on disk and a stopped service are refused.
func TestServiceFindingsAndAccept(t *testing.T) {
	root := sampleTree(t)
	data := t.TempDir()
	cfg := config.Integrity{Enabled: true, DefaultExcludes: true, Hash: "sha256", Root: root,
		Rescan: config.Duration(200 * time.Millisecond),
		Rules:  []config.IntegrityRule{{Path: root + "/etc"}, {Path: root + "/usr"}}}
	svc := &Service{Config: cfg, DataDir: data}
	stop := runService(t, svc)
	ctx := context.Background()

	for _, c := range []struct {
		req   AcceptRequest
		field string
	}{
		{AcceptRequest{Paths: []string{"etc"}, Comment: "ok"}, "paths"},
		{AcceptRequest{Paths: []string{root + "/etc/../usr"}, Comment: "ok"}, "paths"},
		{AcceptRequest{Paths: []string{root + "/etc/"}, Comment: "ok"}, "paths"},
		{AcceptRequest{Paths: []string{""}, Comment: "ok"}, "paths"},
		{AcceptRequest{Paths: make([]string, MaxAcceptPaths+1), Comment: "ok"}, "paths"},
		{AcceptRequest{Paths: make([]string, MaxAcceptPaths+1), Recursive: true, Comment: "ok"}, "paths"},
		{AcceptRequest{}, "comment"},
		{AcceptRequest{Comment: "  \n"}, "comment"},
		{AcceptRequest{Comment: strings.Repeat("x", MaxAcceptComment+1)}, "comment"},
		{AcceptRequest{Comment: "bell\a"}, "comment"},
		{AcceptRequest{Paths: []string{root + "/etc"}, States: map[string]string{root + "/etc": strings.Repeat("a", 32)}, Recursive: true, Comment: "ok"}, "states"},
		{AcceptRequest{Paths: []string{root + "/etc"}, States: map[string]string{root + "/usr": strings.Repeat("a", 32)}, Comment: "ok"}, "states"},
		{AcceptRequest{States: map[string]string{root + "/usr": strings.Repeat("a", 32)}, Comment: "ok"}, "states"},
		{AcceptRequest{Paths: []string{root + "/etc"}, States: map[string]string{root + "/etc": "abc"}, Comment: "ok"}, "states"},
		{AcceptRequest{Paths: []string{root + "/etc"}, States: map[string]string{root + "/etc": strings.Repeat("A", 32)}, Comment: "ok"}, "states"},
	} {
		var ia *InvalidAcceptError
		if _, err := svc.Accept(ctx, c.req); !errors.As(err, &ia) || ia.Field != c.field {
			t.Errorf("Accept(%+v): %v, want an error naming %s", c.req, err, c.field)
		}
	}
	first := svc.Status().Digest

	passwd := root + "/etc/passwd"
	writeFile(t, passwd, "root:x:0:0:root:/root:/bin/bash\nevil:x:0:0::/:/bin/sh\n")
	writeFile(t, root+"/usr/bin/new", "#!/bin/sh\n")
	waitUntil(t, "both findings", func() bool {
		fs, _ := svc.Findings("", 0)
		return findingOf(fs, passwd) != nil && findingOf(fs, root+"/usr/bin/new") != nil
	})
	fs, total := svc.Findings("", 0)
	if total != len(fs) || total != svc.Status().Differences {
		t.Errorf("findings %d, total %d, status %d", len(fs), total, svc.Status().Differences)
	}
	for i := 1; i < len(fs); i++ {
		a, b := fs[i-1], fs[i]
		if ra, rb := severityRank(a.Severity), severityRank(b.Severity); ra > rb || ra == rb && a.Path >= b.Path {
			t.Errorf("not sorted high first then by path: %s %s, then %s %s", a.Severity, a.Path, b.Severity, b.Path)
		}
	}
	f := findingOf(fs, passwd)
	if f.Kind != KindChanged || f.Severity != SeverityHigh || f.Type != "file" || !slices.Contains(f.Attributes, "hash") ||
		len(f.Reasons) == 0 || f.Time.IsZero() || f.Partial || f.Source == "" || len(f.State) != 32 {
		t.Errorf("passwd finding: %+v", f)
	}
	if n := findingOf(fs, root+"/usr/bin/new"); n.Kind != KindAdded || n.Severity != SeverityHigh || n.Attributes == nil {
		t.Errorf("new program finding: %+v", n)
	}
	high, nh := svc.Findings(SeverityHigh, 0)
	if nh != svc.Status().High || len(high) != nh {
		t.Errorf("high findings %d of %d, status %d", len(high), nh, svc.Status().High)
	}
	for _, f := range high {
		if f.Severity != SeverityHigh {
			t.Errorf("?severity=high lists %+v", f)
		}
	}
	if one, n := svc.Findings("", 1); len(one) != 1 || n != total || one[0].Path != fs[0].Path {
		t.Errorf("limit 1: %+v of %d", one, n)
	}

	// Accept /etc: the passwd change goes, the new program stays.
	res, err := svc.Accept(ctx, AcceptRequest{Paths: []string{root + "/etc"}, Recursive: true, By: "user:alice", Comment: "passwd reviewed: ticket 7"})
	if err != nil {
		t.Fatal(err)
	}
	fs, _ = svc.Findings("", 0)
	if findingOf(fs, passwd) != nil || findingOf(fs, root+"/usr/bin/new") == nil {
		t.Fatalf("findings right after accepting /etc: %+v", fs)
	}
	st := svc.Status()
	if res.Accepted < 1 || res.PreviousDigest != first || res.Digest == first || st.Digest != res.Digest || st.Entries != res.Entries || st.Differences != len(fs) {
		t.Fatalf("accept %+v, status %+v", res, st)
	}
	pub, err := svc.publicKey()
	must(t, err)
	b, err := ReadFile(svc.BaselinePath(), pub)
	must(t, err)
	if a := b.Header.Accepted; b.Digest != res.Digest || a == nil || a.By != "user:alice" || a.Comment != "passwd reviewed: ticket 7" ||
		!slices.Equal(a.Paths, []string{root + "/etc"}) || a.Exact || a.Changes != res.Accepted || len(b.Entries) != res.Entries ||
		!res.Recursive || res.Skipped == nil || res.SkippedTotal != 0 || res.ScanErrors == nil || res.ScanErrorsTotal != 0 {
		t.Fatalf("new baseline: %+v %+v", b.Header, b.Header.Accepted)
	}
	// Scheduled rescans compare with the new baseline.
	at := time.Now()
	waitUntil(t, "a rescan after the accept", func() bool { return svc.Status().LastScanAt.After(at.Add(50 * time.Millisecond)) })
	if fs, _ = svc.Findings("", 0); findingOf(fs, passwd) != nil {
		t.Errorf("the accepted passwd is reported again after a rescan: %+v", findingOf(fs, passwd))
	}
	// Going back to what the old baseline held is now a change.
	writeFile(t, passwd, "root:x:0:0:root:/root:/bin/bash\n")
	waitUntil(t, "the passwd change against the new baseline", func() bool {
		fs, _ := svc.Findings("", 0)
		f := findingOf(fs, passwd)
		return f != nil && f.Kind == KindChanged
	})

	// Accept everything: nothing differs.
	res, err = svc.Accept(ctx, AcceptRequest{Recursive: true, By: "user:alice", Comment: "all reviewed"})
	if err != nil {
		t.Fatal(err)
	}
	if fs, n := svc.Findings("", 0); len(fs) != 0 || n != 0 || svc.Status().Differences != 0 || svc.Status().High != 0 {
		t.Fatalf("after accepting every change: %+v, status %+v", fs, svc.Status())
	}
	b, err = ReadFile(svc.BaselinePath(), pub)
	must(t, err)
	if b.Header.Accepted.Paths != nil || b.Digest != res.Digest {
		t.Errorf("baseline after accepting all: %+v", b.Header.Accepted)
	}

	// A baseline file replaced behind the service's back (another
	// baseline, even one signed by the same key; an edited one) is not
	// signed over.
	raw, err := os.ReadFile(svc.BaselinePath())
	must(t, err)
	key, err := signkey.Load(data, "integrity")
	must(t, err)
	_, err = WriteFile(svc.BaselinePath(), b.Header, b.Entries[1:], key)
	must(t, err)
	if _, err := svc.Accept(ctx, AcceptRequest{By: "user:alice", Comment: "x"}); !errors.Is(err, ErrBaselineChanged) {
		t.Errorf("accept over a replaced baseline file: %v", err)
	}
	edited := append([]byte{}, raw...)
	edited[len(edited)/2] ^= 1
	must(t, os.WriteFile(svc.BaselinePath(), edited, 0o600))
	if _, err := svc.Accept(ctx, AcceptRequest{By: "user:alice", Comment: "x"}); !errors.Is(err, ErrBaselineChanged) {
		t.Errorf("accept over an edited baseline file: %v", err)
	}
	must(t, os.WriteFile(svc.BaselinePath(), raw, 0o600))

	must(t, stop())
	if _, err := svc.Accept(ctx, AcceptRequest{By: "user:alice", Comment: "x"}); !errors.Is(err, ErrNotWatching) {
		t.Errorf("accept with the service stopped: %v", err)
	}
}

// TestServiceAcceptOtherKey: a baseline verified with a public key kept
// apart, but signed by another key than the data directory's
// integrity.key, is not re-signed by an accept; nor is one when the data
// directory has no key.
func TestServiceAcceptOtherKey(t *testing.T) {
	root := sampleTree(t)
	data, other := t.TempDir(), t.TempDir()
	cfg := config.Integrity{Enabled: true, DefaultExcludes: true, Hash: "sha256", Root: root,
		Baseline: filepath.Join(other, "integrity.baseline"), PublicKey: filepath.Join(other, "integrity.pub"),
		Rules: []config.IntegrityRule{{Path: root + "/etc"}}}
	p, err := PolicyFromConfig(cfg)
	must(t, err)
	otherKey, err := signkey.LoadOrCreate(other, "integrity")
	must(t, err)
	res, err := Scan(context.Background(), p, Options{})
	must(t, err)
	_, err = WriteFile(cfg.Baseline, NewHeader(p), res.Entries, otherKey)
	must(t, err)
	before, err := os.ReadFile(cfg.Baseline)
	must(t, err)

	// No key in the data directory at all.
	svc := &Service{Config: cfg, DataDir: data}
	stop := runService(t, svc)
	if !svc.Status().Watching {
		t.Fatalf("not watching: %+v", svc.Status())
	}
	if _, err := svc.Accept(context.Background(), AcceptRequest{By: "user:mallory", Comment: "looks fine"}); !errors.Is(err, ErrNoKey) {
		t.Errorf("accept without a key: %v", err)
	}
	must(t, stop())

	// A key, but not the baseline's.
	_, err = signkey.LoadOrCreate(data, "integrity")
	must(t, err)
	svc = &Service{Config: cfg, DataDir: data}
	runService(t, svc)
	writeFile(t, root+"/etc/passwd", "evil::0:0::/:/bin/sh\n")
	waitUntil(t, "the change", func() bool { return svc.Status().Differences > 0 })
	if _, err := svc.Accept(context.Background(), AcceptRequest{By: "user:mallory", Comment: "looks fine"}); !errors.Is(err, ErrOtherKey) {
		t.Errorf("accept of another key's baseline: %v", err)
	}
	after, err := os.ReadFile(cfg.Baseline)
	must(t, err)
	if string(after) != string(before) || svc.Status().Differences == 0 {
		t.Error("a refused accept changed the baseline or the findings")
	}
}

// TestFindingDetailsBounded: beyond MaxFindingDetails differing paths,
// the others are kept with kind, severity and time only (partial), and
// every one is still counted and listed; a detail is kept again once
// there is room.
func TestFindingDetailsBounded(t *testing.T) {
	svc := &Service{differ: map[string]*differing{}}
	ctx := context.Background()
	at := time.Now()
	add := func(p, sev string) {
		svc.handle(ctx, WatchEvent{Time: at, Kind: KindAdded, Source: "scan",
			Finding: &Finding{Path: p, Type: "file", Severity: sev, Reasons: []string{"r"}, Changes: []Change{{Attribute: "xattrs", New: strings.Repeat("v", 1<<10)}}}})
	}
	n := MaxFindingDetails + 5
	for i := range n {
		add(filepath.Join("/d", strings.Repeat("x", 3), time.Duration(i).String()), SeverityMedium)
	}
	fs, total := svc.Findings("", 0)
	partial := 0
	for _, f := range fs {
		if f.Partial {
			partial++
			if f.Kind != KindAdded || f.Severity != SeverityMedium || f.Time.IsZero() || f.Type != "" || f.Reasons == nil {
				t.Fatalf("partial finding: %+v", f)
			}
		}
	}
	if total != n || len(fs) != n || partial != 5 || svc.detailed != MaxFindingDetails || svc.Status().Differences != n {
		t.Fatalf("%d findings of %d, %d partial, %d detailed", len(fs), total, partial, svc.detailed)
	}
	// A detailed path restored makes room; the next report keeps its detail.
	svc.handle(ctx, WatchEvent{Kind: KindRestored, Finding: &Finding{Path: fs[0].Path}})
	add("/a/high", SeverityHigh)
	if fs, _ = svc.Findings("", 1); fs[0].Path != "/a/high" || fs[0].Partial || fs[0].Reasons[0] != "r" || svc.detailed != MaxFindingDetails {
		t.Fatalf("after a restore: %+v, %d detailed", fs[0], svc.detailed)
	}
	svc.handle(ctx, WatchEvent{Kind: KindAccepted, Finding: &Finding{Path: "/a/high"}})
	if svc.Status().Differences != n-1 || svc.Status().High != 0 || svc.detailed != MaxFindingDetails-1 {
		t.Fatalf("after an accepted path: %+v, %d detailed", svc.Status(), svc.detailed)
	}
}
