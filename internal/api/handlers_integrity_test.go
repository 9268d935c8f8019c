package api_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/api"
	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/integrity"
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
