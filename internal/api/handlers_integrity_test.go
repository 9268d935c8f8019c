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
	} `json:"items"`
	Total int `json:"total"`
}

func (b findingsBody) has(path string) bool {
	for _, f := range b.Items {
		if f.Path == path {
			return true
		}
	}
	return false
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
	good := map[string]any{"paths": []string{filepath.Join(tree, "conf")}, "comment": "new config reviewed"}
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
		d["previous_digest"] != digest || fmt.Sprint(d["changes"]) != fmt.Sprint(res.Accepted) || fmt.Sprint(d["paths"]) != fmt.Sprint([]any{filepath.Join(tree, "conf")}) {
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
