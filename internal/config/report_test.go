package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReportValid(t *testing.T) {
	cfg, err := Parse("bulwark.yaml", []byte("report:\n  publish: [backups.daily_encrypted, audit.trail]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"backups.daily_encrypted", "audit.trail"}, cfg.Report.Publish); diff != "" {
		t.Errorf("publish (-want +got):\n%s", diff)
	}
	if cfg, err := Parse("bulwark.yaml", []byte("listen: 127.0.0.1:8443\n")); err != nil || len(cfg.Report.Publish) != 0 {
		t.Errorf("default: publish %q, %v; want none", cfg.Report.Publish, err)
	}
}

func TestReportErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"unknown id", "report:\n  publish:\n    - backups.daily_encrypted\n    - backups.weekly\n",
			[]string{`bulwark.yaml:4: report.publish[1]: "backups.weekly" is not a practice id (known: backups.daily_encrypted, `}},
		{"duplicate", "report:\n  publish: [audit.trail, audit.trail]\n",
			[]string{`bulwark.yaml:2: report.publish[1]: "audit.trail" is also publish[0]`}},
		{"unknown key", "report:\n  publsh: [audit.trail]\n",
			[]string{`bulwark.yaml:2: report.publsh: unknown key`}},
		{"not a list", "report:\n  publish: audit.trail\n",
			[]string{`bulwark.yaml:2: report.publish`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("bulwark.yaml", []byte(tc.in))
			if err == nil {
				t.Fatalf("Parse accepted:\n%s", tc.in)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}
