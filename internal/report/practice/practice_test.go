package practice

import (
	"regexp"
	"testing"
)

// TestPractices: ids are unique and well-formed, and every practice says
// what it promises, what to do, and has a public sentence per status.
func TestPractices(t *testing.T) {
	idRE := regexp.MustCompile(`^[a-z]+\.[a-z_]+$`)
	seen := map[string]bool{}
	for _, p := range All() {
		if !idRE.MatchString(p.ID) || seen[p.ID] {
			t.Errorf("id %q: malformed or repeated", p.ID)
		}
		seen[p.ID] = true
		if p.Title == "" || p.Promise == "" || p.Remediation == "" {
			t.Errorf("%s: title %q, promise %q, remediation %q; want all three", p.ID, p.Title, p.Promise, p.Remediation)
		}
		for _, st := range []string{"met", "at_risk", "failed"} {
			if p.Public[st] == "" {
				t.Errorf("%s: no public summary for %s", p.ID, st)
			}
		}
		if !Known(p.ID) {
			t.Errorf("Known(%q) = false", p.ID)
		}
	}
	if len(IDs()) != 10 || Known("backups.weekly") || Known("") {
		t.Errorf("IDs() = %v; Known accepts unknown ids", IDs())
	}
}
