package console_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/audit"
	"github.com/bulwarkhq/bulwark/internal/repo/repotest"
)

// With file integrity watching, a changed file is listed on the Integrity
// page with a checkbox for an administrator (none for an operator), and
// accepting it with a comment folds it into the baseline.
func TestIntegrityPageAccept(t *testing.T) {
	watched := t.TempDir()
	conf := filepath.Join(watched, "app.conf")
	if err := os.WriteFile(conf, []byte("port = 80\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, repoDir := repotest.New(t, repotest.Options{})
	s := startStackOn(t, repoDir, watched)
	if err := os.WriteFile(conf, []byte("port = 8080\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 0; s.app.Integrity.Status().Differences == 0; i++ {
		if i == 200 {
			t.Fatalf("no finding after 10 s: %+v", s.app.Integrity.Status())
		}
		time.Sleep(50 * time.Millisecond)
	}
	admin := s.signIn("admin", adminPassword)
	page := s.get(admin, "/integrity", 200)
	box := fmt.Sprintf(`name="path" value="%s"`, conf)
	if !strings.Contains(page, box) || !strings.Contains(page, "Accept the selected changes") {
		t.Fatalf("the finding is not offered for acceptance:\n%.4000s", page)
	}
	s.mkuser("olivia", "operator password 8 long", "operator")
	if op := s.get(s.signIn("olivia", "operator password 8 long"), "/integrity", 200); strings.Contains(op, `name="path"`) || !strings.Contains(op, conf) {
		t.Errorf("operator's integrity page: checkboxes offered or finding hidden:\n%.3000s", op)
	}
	// The form carries the state each change was shown in: a change made
	// after the page was drawn is not accepted unseen.
	state := field(page, "state:"+conf)
	if len(state) != 32 {
		t.Fatalf("no state for %s in the form: %q", conf, state)
	}
	if err := os.WriteFile(conf, []byte("port = 9090\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		fs, _ := s.app.Integrity.Findings("", 10)
		if len(fs) == 1 && fs[0].State != state {
			break
		}
		if i == 200 {
			t.Fatalf("the second change was not reported: %+v", fs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	res := postForm(t, admin, s.url+"/integrity/accept", url.Values{"csrf": {field(page, "csrf")}, "path": {conf}, "state:" + conf: {state}, "comment": {"port moved to 8080"}}, nil)
	if res.StatusCode != 303 {
		t.Fatalf("stale accept: %d", res.StatusCode)
	}
	if stale := s.get(admin, "/integrity", 200); !strings.Contains(stale, "Accepted 0 change") || !strings.Contains(stale, "Not accepted, 1") {
		t.Errorf("a change made after the page was drawn was accepted:\n%.3000s", stale)
	}
	page = s.get(admin, "/integrity", 200)
	res = postForm(t, admin, s.url+"/integrity/accept", url.Values{"csrf": {field(page, "csrf")}, "path": {conf}, "state:" + conf: {field(page, "state:"+conf)}, "comment": {"port moved to 9090"}}, nil)
	if res.StatusCode != 303 {
		t.Fatalf("accept: %d", res.StatusCode)
	}
	after := s.get(admin, "/integrity", 200)
	if !strings.Contains(after, "Accepted 1 change") || strings.Contains(after, box) {
		t.Errorf("after accepting:\n%.4000s", after)
	}
	if st := s.app.Integrity.Status(); st.Differences != 0 {
		t.Errorf("still %d differences after accepting", st.Differences)
	}
	es, err := s.app.Audit.Query(context.Background(), audit.Filter{Action: "integrity.accept", Limit: 10})
	if err != nil || len(es) != 2 || es[1].Actor != "user:admin" || es[1].Result != audit.ResultOK {
		t.Errorf("audit of the accept: %v %+v", err, es)
	}
}

// The audit page's next link keeps the search: page two of a filtered
// search holds only matching entries.
func TestAuditPagingKeepsFilters(t *testing.T) {
	s := startStack(t)
	ctx := context.Background()
	for i := range 230 {
		action := "test.a"
		if i%2 == 1 {
			action = "test.b"
		}
		if _, err := s.app.Audit.Append(ctx, audit.Entry{Actor: "system:test", Action: action, Resource: fmt.Sprintf("r/%d", i), Result: audit.ResultOK}); err != nil {
			t.Fatal(err)
		}
	}
	c := s.signIn("admin", adminPassword)
	page := s.get(c, "/audit?action=test.a", 200)
	i := strings.Index(page, `<a href="/audit?`)
	if i < 0 {
		t.Fatalf("no next link:\n%.3000s", page)
	}
	link := page[i+len(`<a href="`):]
	link = strings.ReplaceAll(link[:strings.IndexByte(link, '"')], "&amp;", "&")
	u, err := url.Parse(link)
	if err != nil || u.Query().Get("action") != "test.a" || u.Query().Get("after") == "" {
		t.Fatalf("next link %q", link)
	}
	next := s.get(c, link, 200)
	if strings.Contains(next, "test.b") || !strings.Contains(next, "test.a") {
		t.Errorf("page two of action=test.a:\n%.3000s", next)
	}
}
