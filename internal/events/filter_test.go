package events_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/google/go-cmp/cmp"
)

func TestParseFilter(t *testing.T) {
	since := time.Date(2025, 1, 2, 15, 4, 5, 0, time.UTC)
	until := time.Date(2025, 1, 3, 0, 0, 0, 500, time.FixedZone("", 3600))
	tests := []struct {
		name  string
		query string
		want  events.Filter
	}{
		{"empty", "", events.Filter{}},
		{"everything",
			"type=backup.&type=ban.added,check.failed&module=guard,backups&severity=warning" +
				"&since=2025-01-02T15:04:05Z&until=2025-01-03T00:00:00.0000005%2B01:00" +
				"&resource=policy/web-daily&tag=team=blue&tag=env=prod&after=42&limit=50&order=desc",
			events.Filter{
				Types:       []events.Type{"backup.", "ban.added", "check.failed"},
				Modules:     []string{"guard", "backups"},
				MinSeverity: events.SeverityWarning,
				Since:       since, Until: until,
				Resource: "policy/web-daily",
				Tags:     map[string]string{"team": "blue", "env": "prod"},
				AfterID:  42, Limit: 50, Desc: true,
			}},
		{"ascending order", "order=asc", events.Filter{}},
		{"tags with the whole alphabet", "tag=a.b/c-d_e=V.1/x-y_z&tag=k=0", events.Filter{Tags: map[string]string{"a.b/c-d_e": "V.1/x-y_z", "k": "0"}}},
		{"repeated identical tag", "tag=team=blue&tag=team=blue", events.Filter{Tags: map[string]string{"team": "blue"}}},
		{"severity is case-insensitive", "severity=ERROR", events.Filter{MinSeverity: events.SeverityError}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := events.ParseFilter(q)
			if err != nil {
				t.Fatalf("ParseFilter(%q): %v", tt.query, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseFilter(%q) (-want +got):\n%s", tt.query, diff)
			}
			back, err := events.ParseFilter(got.Values())
			if err != nil {
				t.Fatalf("ParseFilter(Values()) = %v", err)
			}
			if diff := cmp.Diff(got, back); diff != "" {
				t.Errorf("round trip through Values (-first +second):\n%s", diff)
			}
		})
	}
}

func TestParseFilterErrors(t *testing.T) {
	tests := []struct {
		query, wantField string
	}{
		{"tpye=backup.completed", `"tpye"`},
		{"type=Backup", "type"},
		{"type=backup", "type"},
		{"type=backup.,", "type"},
		{"type=backup..", "type"},
		{"type=" + strings.Repeat("a", 70) + ".", "type"},
		{"module=payroll", "module"},
		{"module=", "module"},
		{"severity=fatal", "severity"},
		{"severity=info&severity=error", "severity"},
		{"severity=", "severity"},
		{"since=yesterday", "since"},
		{"since=2025-01-02", "since"},
		{"since=0001-01-01T00:00:00Z", "since"},
		{"since=1960-01-01T00:00:00Z", "since"},
		{"until=2025-01-01T00:00:00Z&since=2025-01-02T00:00:00Z", "until"},
		{"until=2025-01-01T00:00:00Z&since=2025-01-01T00:00:00Z", "until"},
		{"resource=a%0Ab", "resource"},
		{"resource=" + strings.Repeat("r", 513), "resource"},
		{"tag=team", "tag"},
		{"tag==blue", "tag"},
		{"tag=team blue=x", "tag"},
		{"tag=team=blue&tag=team=red", "tag"},
		{"tag=team=a%00b", "tag"},
		{"tag=team=", "tag"},
		{"tag=team=a=b", "tag"},
		{"tag=team=a%22b", "tag"},
		{"after=-1", "after"},
		{"after=x", "after"},
		{"after=99999999999999999999", "after"},
		{"limit=0", "limit"},
		{"limit=1001", "limit"},
		{"limit=ten", "limit"},
		{"order=up", "order"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			_, err = events.ParseFilter(q)
			var ve *events.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("ParseFilter(%q) error = %v, want a *ValidationError", tt.query, err)
			}
			if ve.Field != tt.wantField {
				t.Errorf("field = %q, want %q (error: %v)", ve.Field, tt.wantField, err)
			}
			if !errors.Is(err, events.ErrInvalid) {
				t.Errorf("error %v does not match ErrInvalid", err)
			}
		})
	}
}

func TestFilterMatch(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	e := events.Event{
		ID: 7, Time: t0, Type: events.TypeBackupFailed, Severity: events.SeverityError,
		Module: events.ModuleBackups, Actor: "system:scheduler", Resource: "policy/web",
		Tags: map[string]string{"team": "blue", "env": "prod"}, Message: "m",
	}
	tests := []struct {
		name string
		f    events.Filter
		want bool
	}{
		{"zero filter", events.Filter{}, true},
		{"exact type", events.Filter{Types: []events.Type{"backup.failed"}}, true},
		{"other type", events.Filter{Types: []events.Type{"backup.completed"}}, false},
		{"prefix", events.Filter{Types: []events.Type{"ban.", "backup."}}, true},
		{"prefix is per word", events.Filter{Types: []events.Type{"back."}}, false},
		{"module", events.Filter{Modules: []string{"guard", "backups"}}, true},
		{"other module", events.Filter{Modules: []string{"guard"}}, false},
		{"severity equal", events.Filter{MinSeverity: events.SeverityError}, true},
		{"severity above", events.Filter{MinSeverity: events.SeverityCritical}, false},
		{"since inclusive", events.Filter{Since: t0}, true},
		{"since after", events.Filter{Since: t0.Add(time.Nanosecond)}, false},
		{"until exclusive", events.Filter{Until: t0}, false},
		{"until after", events.Filter{Until: t0.Add(time.Microsecond)}, true},
		{"resource", events.Filter{Resource: "policy/web"}, true},
		{"resource is exact", events.Filter{Resource: "policy/"}, false},
		{"tags subset", events.Filter{Tags: map[string]string{"team": "blue"}}, true},
		{"tags all must match", events.Filter{Tags: map[string]string{"team": "blue", "env": "dev"}}, false},
		{"tag value case matters", events.Filter{Tags: map[string]string{"team": "Blue"}}, false},
		{"missing tag", events.Filter{Tags: map[string]string{"owner": "ann"}}, false},
		{"cursor fields ignored", events.Filter{AfterID: 100, Limit: 1, Desc: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.f.Validate(); err != nil {
				t.Fatalf("filter invalid: %v", err)
			}
			if got := tt.f.Match(e); got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
}

// FuzzParseFilter feeds arbitrary query strings to ParseFilter, the decoder
// behind GET /api/v1/events. It must never panic, must fail only with a
// field-naming *ValidationError, and what it accepts must be valid and
// survive a round trip through Values.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		"",
		"type=backup.&module=guard&severity=warning&since=2025-01-02T15:04:05Z&until=2025-01-03T00:00:00Z&after=10&limit=5&resource=policy/web&tag=team=blue&order=desc",
		"type=a.b,c.d&type=e.",
		"tag=a=b&tag=c=&tag=a=b",
		"since=2025-01-02T15:04:05.123456789-07:00",
		"until=9999-12-31T23:59:59+01:00",
		"limit=1000&after=9223372036854775807",
		"type=%E2%82%AC.x&resource=%FF",
		"x=1",
		"tag=%00=1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		got, err := events.ParseFilter(q)
		if err != nil {
			var ve *events.ValidationError
			if !errors.As(err, &ve) || ve.Field == "" {
				t.Fatalf("ParseFilter(%q) error %v is not a field-naming *ValidationError", raw, err)
			}
			return
		}
		if err := got.Validate(); err != nil {
			t.Fatalf("ParseFilter(%q) accepted an invalid filter: %v", raw, err)
		}
		back, err := events.ParseFilter(got.Values())
		if err != nil {
			t.Fatalf("ParseFilter(%q).Values() = %q does not parse: %v", raw, got.Values().Encode(), err)
		}
		if diff := cmp.Diff(got, back); diff != "" {
			t.Fatalf("round trip of %q (-first +second):\n%s", raw, diff)
		}
	})
}
