package api_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/api"
	"github.com/bulwarkhq/bulwark/internal/audit"
	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/integrity"
	"github.com/bulwarkhq/bulwark/internal/signkey"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
	"golang.org/x/sys/unix"
)

// TestIntegrityStatusAPI: a reader of module integrity gets the control's
// evidence from a running service (watching, baseline, last scan, the
// differences); someone without the grant is refused; a server without
// integrity answers 503.
func TestIntegrityStatusAPI(t *testing.T) {
	db := storetest.SQLite(t, migrations()...)
	tree := t.TempDir()
	if err := os.WriteFile(filepath.Join(tree, "passwd"), []byte("root:x:0:0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var svc *integrity.Service
	e := newEnvWith(t, db, func(e *env, d *api.Deps) {
		svc = &integrity.Service{Config: config.Integrity{Enabled: true, DefaultExcludes: true, Hash: "sha256", Root: "/",
			Rules: []config.IntegrityRule{{Path: tree}}}, DataDir: t.TempDir(), Bus: e.events}
		d.Integrity = svc
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(20 * time.Second); svc.Status().LastScan == nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no scan: %+v", svc.Status())
		}
	}

	admin := e.login("admin", adminPassword)
	e.want(e.do("POST", "/api/v1/roles", admin, map[string]any{"name": "hids-view", "grants": []map[string]any{{"module": "integrity", "level": "read"}}}), 201)
	e.want(e.do("POST", "/api/v1/roles", admin, map[string]any{"name": "backup-view", "grants": []map[string]any{{"module": "backups", "level": "read"}}}), 201)
	viewer := e.mkuser(admin, "hids1", "hids-view")
	other := e.mkuser(admin, "other1", "backup-view")

	var st integrity.Status
	e.want(e.do("GET", "/api/v1/integrity/status", viewer, nil), 200).json(t, &st)
	if !st.Watching || st.Entries != 2 || st.LastScan == nil || st.LastScan.Reason != "start" || st.Differences != 0 || st.Digest == "" {
		t.Fatalf("status: %+v", st)
	}
	e.want(e.do("GET", "/api/v1/integrity/status", other, nil), 403)

	none := newEnv(t, storetest.SQLite(t, migrations()...))
	e.want(none.do("GET", "/api/v1/integrity/status", none.login("admin", adminPassword), nil), 503)
}

// integrityEnv is an API server over a running integrity service that
// watches a temporary tree (tree/passwd and tree/conf/app.conf exist);
// cfg may change the service's configuration first.
func integrityEnv(t *testing.T, data string, cfg func(*config.Integrity)) (*env, *integrity.Service, string) {
	t.Helper()
	db := storetest.SQLite(t, migrations()...)
	tree := t.TempDir()
	for name, content := range map[string]string{"passwd": "root:x:0:0\n", "conf/app.conf": "port 80\n"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(tree, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tree, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := config.Integrity{Enabled: true, DefaultExcludes: true, Hash: "sha256", Root: "/", Rules: []config.IntegrityRule{{Path: tree}}}
	if cfg != nil {
		cfg(&c)
	}
	var svc *integrity.Service
	e := newEnvWith(t, db, func(e *env, d *api.Deps) {
		svc = &integrity.Service{Config: c, DataDir: data, Bus: e.events}
		d.Integrity = svc
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "the first scan", func() bool { return svc.Status().LastScan != nil })
	return e, svc, tree
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 20 s", what)
		}
	}
}

// findingsBody is GET /api/v1/integrity/findings's answer.
type findingsBody struct {
	Items []struct {
		Path       string    `json:"path"`
		Kind       string    `json:"kind"`
		Severity   string    `json:"severity"`
		Type       string    `json:"type"`
		Attributes []string  `json:"attributes"`
		Reasons    []string  `json:"reasons"`
		Package    *string   `json:"package"`
		Time       time.Time `json:"time"`
		State      string    `json:"state"`
	} `json:"items"`
	Total int `json:"total"`
}

func (b findingsBody) has(path string) bool { return b.state(path) != "" }

// state is the state of path's finding ("" when there is none).
func (b findingsBody) state(path string) string {
	for _, f := range b.Items {
		if f.Path == path {
			return f.State
		}
	}
	return ""
}

// TestIntegrityFindingsAndAcceptAPI: the paths that differ now, with what
// is known of each, high first; an accept of a subtree through the API
// folds it into a new signed baseline that the findings and the status
// reflect at once, audited with the paths, the number of changes, the
// comment and both digests; accepting everything leaves nothing. An
// operator or a reader cannot accept, and malformed requests are refused
// naming the field, before anything is scanned or signed.
func TestIntegrityFindingsAndAcceptAPI(t *testing.T) {
	e, svc, tree := integrityEnv(t, t.TempDir(), nil)
	admin := e.login("admin", adminPassword)
	e.want(e.do("POST", "/api/v1/roles", admin, map[string]any{"name": "hids-view", "grants": []map[string]any{{"module": "integrity", "level": "read"}}}), 201)
	e.want(e.do("POST", "/api/v1/roles", admin, map[string]any{"name": "hids-admin", "grants": []map[string]any{{"module": "integrity", "level": "write"}}}), 201)
	e.want(e.do("POST", "/api/v1/roles", admin, map[string]any{"name": "hids-scoped", "grants": []map[string]any{{"module": "integrity", "level": "write", "scope": "env=prod"}}}), 201)
	viewer := e.mkuser(admin, "hids1", "hids-view")
	hadmin := e.mkuser(admin, "hids2", "hids-admin")
	scoped := e.mkuser(admin, "hids3", "hids-scoped")
	operator := e.mkuser(admin, "op1", "operator")

	var fb findingsBody
	e.want(e.do("GET", "/api/v1/integrity/findings", viewer, nil), 200).json(t, &fb)
	if len(fb.Items) != 0 || fb.Total != 0 || !strings.Contains(string(e.do("GET", "/api/v1/integrity/findings", viewer, nil).Body), `"items": []`) {
		t.Fatalf("findings of an unchanged tree: %+v", fb)
	}

	// A new authorized_keys (high), an edited passwd and a new file
	// below conf (medium), and the directories whose entries changed.
	keys := filepath.Join(tree, ".ssh", "authorized_keys")
	if err := os.MkdirAll(filepath.Dir(keys), 0o700); err != nil {
		t.Fatal(err)
	}
	for p, content := range map[string]string{keys: "ssh-ed25519 AAAA mallory\n", filepath.Join(tree, "passwd"): "root:x:0:0\nevil:x:0:0\n", filepath.Join(tree, "conf", "extra.conf"): "x\n"} {
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the findings", func() bool {
		var b findingsBody
		e.want(e.do("GET", "/api/v1/integrity/findings", viewer, nil), 200).json(t, &b)
		return b.has(keys) && b.has(filepath.Join(tree, "passwd")) && b.has(filepath.Join(tree, "conf", "extra.conf"))
	})
	r := e.want(e.do("GET", "/api/v1/integrity/findings", viewer, nil), 200)
	fb = findingsBody{}
	r.json(t, &fb)
	if fb.Total != len(fb.Items) || fb.Total != svc.Status().Differences {
		t.Errorf("total %d, items %d, status %+v", fb.Total, len(fb.Items), svc.Status())
	}
	top := fb.Items[0]
	if top.Path != keys || top.Severity != "high" || top.Kind != "added" || top.Type != "file" || len(top.Reasons) == 0 ||
		top.Attributes == nil || top.Package == nil || top.Time.IsZero() {
		t.Errorf("first finding: %+v in %s", top, r.Body)
	}
	for _, f := range fb.Items[1:] {
		if f.Severity == "high" {
			t.Errorf("high finding after the first: %+v", f)
		}
		if f.Path == filepath.Join(tree, "passwd") && (f.Kind != "changed" || f.Severity != "medium" || !slices.Contains(f.Attributes, "hash")) {
			t.Errorf("passwd finding: %+v", f)
		}
	}
	var high findingsBody
	e.want(e.do("GET", "/api/v1/integrity/findings?severity=high", viewer, nil), 200).json(t, &high)
	if len(high.Items) != 1 || high.Items[0].Path != keys || high.Total != 1 {
		t.Errorf("?severity=high: %+v", high)
	}
	var one findingsBody
	e.want(e.do("GET", "/api/v1/integrity/findings?limit=1", viewer, nil), 200).json(t, &one)
	if len(one.Items) != 1 || one.Total != fb.Total {
		t.Errorf("?limit=1: %+v", one)
	}
	for _, q := range []string{"severity=critical", "limit=0", "limit=501", "limit=x"} {
		r := e.want(e.do("GET", "/api/v1/integrity/findings?"+q, viewer, nil), 400)
		if f := strings.Split(q, "=")[0]; r.errField() != f {
			t.Errorf("?%s: field %q, want %q", q, r.errField(), f)
		}
	}

	// Who may accept: write on the whole module only.
	good := map[string]any{"paths": []string{filepath.Join(tree, "conf")}, "recursive": true, "comment": "new config reviewed"}
	e.want(e.do("POST", "/api/v1/integrity/accept", operator, good), 403)
	e.want(e.do("POST", "/api/v1/integrity/accept", viewer, good), 403)
	e.want(e.do("POST", "/api/v1/integrity/accept", scoped, good), 403)
	e.want(e.do("GET", "/api/v1/integrity/findings", scoped, nil), 403)

	// Malformed requests name their field and change nothing.
	digest := svc.Status().Digest
	for _, c := range []struct {
		body  any
		field string
	}{
		{map[string]any{"paths": []string{"conf"}, "comment": "x"}, "paths"},
		{map[string]any{"paths": []string{tree + "/conf/../passwd"}, "comment": "x"}, "paths"},
		{map[string]any{"paths": []string{tree + "/conf/"}, "comment": "x"}, "paths"},
		{map[string]any{"paths": []string{""}, "comment": "x"}, "paths"},
		{map[string]any{"paths": slices.Repeat([]string{tree}, 101), "comment": "x"}, "paths"},
		{map[string]any{"paths": "/etc", "comment": "x"}, "paths"},
		{map[string]any{"paths": []string{tree}}, "comment"},
		{map[string]any{"paths": []string{tree}, "comment": " "}, "comment"},
		{map[string]any{"paths": []string{tree}, "comment": strings.Repeat("é", 501)}, "comment"},
		{map[string]any{"paths": []string{tree}, "comment": "x\x1b[2J"}, "comment"},
		{map[string]any{"comment": "x", "by": "someone else"}, "by"},
	} {
		if r := e.do("POST", "/api/v1/integrity/accept", hadmin, c.body); r.Status != 400 || r.errField() != c.field {
			t.Errorf("accept %v: %d %s, want 400 naming %s", c.body, r.Status, r.Body, c.field)
		}
	}
	if r := e.do("POST", "/api/v1/integrity/accept", hadmin, `{"comment":"`+strings.Repeat("x", 70<<10)+`"}`); r.Status != 413 {
		t.Errorf("a body over the server's limit: %d %s", r.Status, r.Body)
	}
	if svc.Status().Digest != digest || e.auditCount("integrity.accept", "ok") != 0 {
		t.Fatal("a refused accept changed the baseline")
	}

	// Accept conf: its findings go at once, the others stay.
	var res struct {
		Accepted       int    `json:"accepted"`
		Entries        int    `json:"entries"`
		Digest         string `json:"digest"`
		PreviousDigest string `json:"previous_digest"`
	}
	r = e.want(e.do("POST", "/api/v1/integrity/accept", hadmin, good), 200)
	r.json(t, &res)
	if res.Accepted < 1 || res.Entries < 1 || res.Digest == "" || res.Digest == digest || res.PreviousDigest != digest {
		t.Fatalf("accept: %s", r.Body)
	}
	var st integrity.Status
	e.want(e.do("GET", "/api/v1/integrity/status", viewer, nil), 200).json(t, &st)
	fb = findingsBody{}
	e.want(e.do("GET", "/api/v1/integrity/findings", viewer, nil), 200).json(t, &fb)
	if fb.has(filepath.Join(tree, "conf", "extra.conf")) || fb.has(filepath.Join(tree, "conf")) || !fb.has(keys) || !fb.has(filepath.Join(tree, "passwd")) {
		t.Errorf("findings after accepting conf: %+v", fb.Items)
	}
	if st.Digest != res.Digest || st.Entries != res.Entries || st.Differences != fb.Total || st.High != 1 {
		t.Errorf("status after accepting conf: %+v (findings %d)", st, fb.Total)
	}
	// The new baseline verifies, says who and why; the audit log has it.
	pub, err := os.ReadFile(svc.PublicKeyPath())
	if err != nil {
		t.Fatal(err)
	}
	pk, err := signkey.ReadPublic(pub)
	if err != nil {
		t.Fatal(err)
	}
	b, err := integrity.ReadFile(svc.BaselinePath(), pk)
	if err != nil {
		t.Fatal(err)
	}
	if a := b.Header.Accepted; b.Digest != res.Digest || a == nil || a.By != "user:hids2" || a.Comment != "new config reviewed" || a.Changes != res.Accepted ||
		!slices.Equal(a.Paths, []string{filepath.Join(tree, "conf")}) {
		t.Errorf("the new baseline's header: %+v", b.Header.Accepted)
	}
	es, err := e.audit.Query(context.Background(), audit.Filter{Action: "integrity.accept", Result: "ok"})
	if err != nil || len(es) != 1 {
		t.Fatalf("audited accepts: %+v %v", es, err)
	}
	d := es[0].Details
	if es[0].Actor != "user:hids2" || es[0].Resource != "integrity" || d["comment"] != "new config reviewed" || d["digest"] != res.Digest ||
		d["previous_digest"] != digest || fmt.Sprint(d["changes"]) != fmt.Sprint(res.Accepted) || fmt.Sprint(d["paths"]) != fmt.Sprint([]any{filepath.Join(tree, "conf")}) ||
		d["recursive"] != true || fmt.Sprint(d["skipped_total"]) != "0" || fmt.Sprint(d["scan_errors_total"]) != "0" {
		t.Errorf("audit entry: %+v", es[0])
	}
	if n := e.auditCount("integrity.accept", "denied"); n != 3 {
		t.Errorf("audited refusals by grant: %d, want 3", n)
	}
	if n := e.auditCount("integrity.accept", "failed"); n != 12 {
		t.Errorf("audited malformed accepts: %d, want 12", n)
	}

	// Accept every change: nothing differs.
	e.want(e.do("POST", "/api/v1/integrity/accept", admin, map[string]any{"comment": "all reviewed"}), 200)
	fb = findingsBody{}
	e.want(e.do("GET", "/api/v1/integrity/findings", viewer, nil), 200).json(t, &fb)
	e.want(e.do("GET", "/api/v1/integrity/status", viewer, nil), 200).json(t, &st)
	if len(fb.Items) != 0 || st.Differences != 0 || st.High != 0 {
		t.Errorf("after accepting every change: %+v, %+v", fb.Items, st)
	}

	// Without integrity: 503.
	none := newEnv(t, storetest.SQLite(t, migrations()...))
	tok := none.login("admin", adminPassword)
	none.want(none.do("GET", "/api/v1/integrity/findings", tok, nil), 503)
	none.want(none.do("POST", "/api/v1/integrity/accept", tok, map[string]any{"comment": "x"}), 503)
}

// TestIntegrityAcceptOtherKeyAPI: a baseline the server verifies with a
// public key kept apart, but that the data directory's integrity.key did
// not sign, is not re-signed through the API: 409, nothing written.
func TestIntegrityAcceptOtherKeyAPI(t *testing.T) {
	data, other := t.TempDir(), t.TempDir()
	otherKey, err := signkey.LoadOrCreate(other, "integrity")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signkey.LoadOrCreate(data, "integrity"); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(other, "integrity.baseline")
	e, svc, tree := integrityEnv(t, data, func(c *config.Integrity) {
		c.Baseline, c.PublicKey = base, filepath.Join(other, "integrity.pub")
		p, err := integrity.PolicyFromConfig(*c)
		if err != nil {
			t.Fatal(err)
		}
		res, err := integrity.Scan(context.Background(), p, integrity.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := integrity.WriteFile(base, integrity.NewHeader(p), res.Entries, otherKey); err != nil {
			t.Fatal(err)
		}
	})
	before, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "passwd"), []byte("evil::0:0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the change", func() bool { return svc.Status().Differences > 0 })
	admin := e.login("admin", adminPassword)
	r := e.want(e.do("POST", "/api/v1/integrity/accept", admin, map[string]any{"comment": "trust me"}), 409)
	if r.errCode() != "baseline_refused" || !strings.Contains(string(r.Body), "another key") {
		t.Errorf("accept of another key's baseline: %s", r.Body)
	}
	after, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) || svc.Status().Differences == 0 || e.auditCount("integrity.accept", "failed") != 1 {
		t.Error("a refused accept changed the baseline or the findings, or was not audited")
	}
}

// acceptBody is POST /api/v1/integrity/accept's answer.
type acceptBody struct {
	Accepted       int    `json:"accepted"`
	Entries        int    `json:"entries"`
	Digest         string `json:"digest"`
	PreviousDigest string `json:"previous_digest"`
	Recursive      *bool  `json:"recursive"`
	Skipped        []struct {
		Path   string `json:"path"`
		Reason string `json:"reason"`
	} `json:"skipped"`
	SkippedTotal *int `json:"skipped_total"`
	ScanErrors   []struct {
		Path  string `json:"path"`
		Error string `json:"error"`
	} `json:"scan_errors"`
	ScanErrorsTotal *int `json:"scan_errors_total"`
}

// settled waits until each of paths has a finding whose state holds
// still, and returns their states.
func settled(t *testing.T, e *env, token string, paths ...string) map[string]string {
	t.Helper()
	var last map[string]string
	waitFor(t, "settled findings", func() bool {
		var b findingsBody
		e.want(e.do("GET", "/api/v1/integrity/findings", token, nil), 200).json(t, &b)
		cur := map[string]string{}
		for _, p := range paths {
			if cur[p] = b.state(p); cur[p] == "" {
				return false
			}
		}
		same := fmt.Sprint(cur) == fmt.Sprint(last)
		last = cur
		if !same {
			time.Sleep(150 * time.Millisecond)
		}
		return same
	})
	return last
}

// lastAccept is the details of the last successful integrity.accept.
func lastAccept(t *testing.T, e *env) map[string]any {
	t.Helper()
	es, err := e.audit.Query(context.Background(), audit.Filter{Action: "integrity.accept", Result: "ok", Limit: 1, Desc: true})
	if err != nil || len(es) != 1 {
		t.Fatalf("audited accepts: %+v %v", es, err)
	}
	return es[0].Details
}

// TestIntegrityAcceptExactAPI, with an attacker's eye: a reviewer ticks
// the harmless finding of a directory (its mode) and an edit of passwd.
// Before the accept, an attacker adds a file below the directory (it is
// reported) and rewrites passwd through a hard link from outside the
// watched tree (inotify does not see it: it is never reported). An accept
// of the two paths pinned to the states reviewed folds neither; without
// states the directory is folded as its current finding reports it, the
// file below it is not, and passwd is skipped as changed since its
// finding. recursive: true folds the subtree as before. Bad states are
// refused naming the field.
func TestIntegrityAcceptExactAPI(t *testing.T) {
	e, _, tree := integrityEnv(t, t.TempDir(), nil)
	admin := e.login("admin", adminPassword)
	conf, passwd, evil := filepath.Join(tree, "conf"), filepath.Join(tree, "passwd"), filepath.Join(tree, "conf", "evil.conf")

	if err := os.Chmod(conf, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(passwd, []byte("root:x:0:0\nops:x:1000:1000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	reviewed := settled(t, e, admin, conf, passwd)

	// The attacker, after the review.
	outside := filepath.Join(t.TempDir(), "passwd")
	if err := os.Link(passwd, outside); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(outside, []byte("root::0:0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(evil, []byte("include /tmp/x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	now := settled(t, e, admin, conf, evil, passwd)
	if now[conf] == reviewed[conf] || now[passwd] != reviewed[passwd] {
		t.Fatalf("states reviewed %v, now %v: the test does not test", reviewed, now)
	}
	ok := e.auditCount("integrity.accept", "ok")

	// Bad requests name their field and change nothing.
	for _, c := range []struct {
		body  any
		field string
	}{
		{map[string]any{"paths": []string{conf}, "recursive": true, "states": map[string]string{conf: reviewed[conf]}, "comment": "x"}, "states"},
		{map[string]any{"paths": []string{conf}, "states": map[string]string{passwd: reviewed[passwd]}, "comment": "x"}, "states"},
		{map[string]any{"states": map[string]string{conf: reviewed[conf]}, "comment": "x"}, "states"},
		{map[string]any{"paths": []string{conf}, "states": map[string]string{conf: "not a state"}, "comment": "x"}, "states"},
		{map[string]any{"paths": []string{conf}, "states": []string{conf}, "comment": "x"}, "states"},
		{map[string]any{"paths": []string{conf}, "recursive": "yes", "comment": "x"}, "recursive"},
	} {
		if r := e.do("POST", "/api/v1/integrity/accept", admin, c.body); r.Status != 400 || r.errField() != c.field {
			t.Errorf("accept %v: %d %s, want 400 naming %s", c.body, r.Status, r.Body, c.field)
		}
	}
	if e.auditCount("integrity.accept", "ok") != ok {
		t.Fatal("a refused accept was made")
	}

	// Pinned to the states reviewed: nothing is folded.
	var res acceptBody
	r := e.want(e.do("POST", "/api/v1/integrity/accept", admin, map[string]any{"paths": []string{conf, passwd}, "states": reviewed, "comment": "mode and ops account"}), 200)
	r.json(t, &res)
	why := map[string]string{}
	for _, s := range res.Skipped {
		why[s.Path] = s.Reason
	}
	if res.Accepted != 0 || res.Recursive == nil || *res.Recursive || res.SkippedTotal == nil || *res.SkippedTotal != 2 || len(why) != 2 ||
		why[passwd] != "changed again since the finding was reported" || !strings.HasPrefix(why[conf], "changed again since it was reviewed") ||
		res.ScanErrorsTotal == nil || *res.ScanErrorsTotal != 0 || !strings.Contains(string(r.Body), `"scan_errors": []`) {
		t.Errorf("pinned accept: %s", r.Body)
	}

	// As reported now: the directory only.
	res = acceptBody{}
	r = e.want(e.do("POST", "/api/v1/integrity/accept", admin, map[string]any{"paths": []string{conf, passwd}, "comment": "mode and ops account"}), 200)
	r.json(t, &res)
	if res.Accepted != 1 || *res.Recursive || len(res.Skipped) != 1 || res.Skipped[0].Path != passwd {
		t.Errorf("exact accept: %s", r.Body)
	}
	var fb findingsBody
	e.want(e.do("GET", "/api/v1/integrity/findings", admin, nil), 200).json(t, &fb)
	if fb.has(conf) || !fb.has(evil) || fb.state(passwd) != reviewed[passwd] {
		t.Errorf("findings after the exact accept: %+v", fb.Items)
	}
	d := lastAccept(t, e)
	if d["recursive"] != false || fmt.Sprint(d["changes"]) != "1" || fmt.Sprint(d["skipped_total"]) != "1" ||
		fmt.Sprint(d["skipped"]) != fmt.Sprint([]any{map[string]any{"path": passwd, "reason": "changed again since the finding was reported"}}) {
		t.Errorf("audit details: %+v", d)
	}

	// Recursive: the subtree as it is now.
	res = acceptBody{}
	r = e.want(e.do("POST", "/api/v1/integrity/accept", admin, map[string]any{"paths": []string{conf}, "recursive": true, "comment": "evil.conf is ours"}), 200)
	r.json(t, &res)
	if res.Accepted < 1 || !*res.Recursive || len(res.Skipped) != 0 {
		t.Errorf("recursive accept: %s", r.Body)
	}
	fb = findingsBody{}
	e.want(e.do("GET", "/api/v1/integrity/findings", admin, nil), 200).json(t, &fb)
	if fb.has(evil) || !fb.has(passwd) {
		t.Errorf("findings after the recursive accept: %+v", fb.Items)
	}
	if d := lastAccept(t, e); d["recursive"] != true {
		t.Errorf("audit details: %+v", d)
	}
}

// deepDirs makes below dir a chain of directories down to one whose
// children's paths are PATH_MAX (4096 bytes) long, and n such children:
// the scanner lists the chain but cannot read those by their path
// (ENAMETOOLONG), a real error that needs no privilege dropped. The chain
// is made aside and moved in at once, so that a watch finds it whole.
func deepDirs(t *testing.T, dir string, n int) (parent string, unreadable []string) {
	t.Helper()
	aside := t.TempDir()
	if len(aside) != len(dir) {
		t.Fatalf("%s and %s differ in length", aside, dir)
	}
	fd, err := unix.Open(aside, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { unix.Close(fd) }()
	path, top := dir, ""
	for 4096-len(path)-1 > 255 {
		name := strings.Repeat("d", min(200, 4096-len(path)-1-100))
		if err := unix.Mkdirat(fd, name, 0o755); err != nil {
			t.Fatal(err)
		}
		next, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(fd)
		fd, path = next, path+"/"+name
		if top == "" {
			top = name
		}
	}
	for i := range n {
		name := fmt.Sprintf("%02d", i) + strings.Repeat("x", 4096-len(path)-1-2)
		if err := unix.Mkdirat(fd, name, 0o755); err != nil {
			t.Fatal(err)
		}
		unreadable = append(unreadable, path+"/"+name)
	}
	if err := os.Rename(filepath.Join(aside, top), filepath.Join(dir, top)); err != nil {
		t.Fatal(err)
	}
	return path, unreadable
}

// TestIntegrityAcceptScanErrorsAPI: what the accept's scan could not read
// is said in the answer (the first 20, and how many) and in the audit
// entry (how many, and the first 5), and is not folded: a recursive
// accept leaves those paths differing, an exact one skips them.
func TestIntegrityAcceptScanErrorsAPI(t *testing.T) {
	e, _, tree := integrityEnv(t, t.TempDir(), nil)
	admin := e.login("admin", adminPassword)
	parent, unreadable := deepDirs(t, tree, 25)
	settled(t, e, admin, unreadable...)

	var res acceptBody
	r := e.want(e.do("POST", "/api/v1/integrity/accept", admin, map[string]any{"paths": []string{tree}, "recursive": true, "comment": "deep tree"}), 200)
	r.json(t, &res)
	if res.ScanErrorsTotal == nil || *res.ScanErrorsTotal < 25 || len(res.ScanErrors) != 20 || res.Accepted < 1 {
		t.Fatalf("accept: %.2000s", r.Body)
	}
	for _, se := range res.ScanErrors {
		if !strings.HasPrefix(se.Path, parent+"/") || !strings.Contains(se.Error, "file name too long") {
			t.Errorf("scan error %.60s...: %s", se.Path[len(parent):], se.Error)
		}
	}
	var fb findingsBody
	e.want(e.do("GET", "/api/v1/integrity/findings", admin, nil), 200).json(t, &fb)
	if fb.Total != 25 {
		t.Errorf("%d findings after the recursive accept, want the 25 unreadable directories", fb.Total)
	}
	for _, p := range unreadable {
		if !fb.has(p) {
			t.Errorf("an unreadable directory was folded: ...%s", p[len(parent):])
		}
	}
	d := lastAccept(t, e)
	if first, _ := d["scan_errors"].([]any); fmt.Sprint(d["scan_errors_total"]) != fmt.Sprint(*res.ScanErrorsTotal) || len(first) != 5 {
		t.Errorf("audit details: total %v, %d listed", d["scan_errors_total"], len(first))
	}

	// Every finding exactly: the unreadable ones are skipped.
	res = acceptBody{}
	r = e.want(e.do("POST", "/api/v1/integrity/accept", admin, map[string]any{"comment": "everything"}), 200)
	r.json(t, &res)
	if res.Accepted != 0 || res.SkippedTotal == nil || *res.SkippedTotal != 25 || len(res.Skipped) != 25 {
		t.Fatalf("exact accept: %d accepted, %d skipped", res.Accepted, len(res.Skipped))
	}
	for _, s := range res.Skipped {
		if !strings.HasPrefix(s.Reason, "could not be read: ") || !strings.Contains(s.Reason, "file name too long") {
			t.Errorf("skipped: %s", s.Reason)
		}
	}
}
