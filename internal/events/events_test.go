package events_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/bulwarkhq/bulwark/internal/events"
)

func TestTypeValidate(t *testing.T) {
	tests := []struct {
		typ    events.Type
		wantOK bool
	}{
		{"backup.completed", true},
		{"audit.verify_failed", true},
		{"a.b.c", true},
		{"x1.y2", true},
		{events.Type("a." + strings.Repeat("b", 62)), true}, // 64 bytes
		{events.Type("a." + strings.Repeat("b", 63)), false},
		{"", false},
		{"backup", false},
		{"Backup.completed", false},
		{"backup.", false},
		{".backup", false},
		{"backup..completed", false},
		{"1backup.completed", false},
		{"backup.completed\n", false},
		{"backup-completed.x", false},
		{"backup.completé", false},
	}
	for _, tt := range tests {
		t.Run(string(tt.typ), func(t *testing.T) {
			err := tt.typ.Validate()
			if got := err == nil; got != tt.wantOK {
				t.Fatalf("Validate(%q) = %v, want ok=%v", tt.typ, err, tt.wantOK)
			}
			if err != nil && !errors.Is(err, events.ErrInvalid) {
				t.Errorf("error %v does not match ErrInvalid", err)
			}
		})
	}
}

func TestKnownTypesAreValid(t *testing.T) {
	seen := map[events.Type]bool{}
	for _, typ := range events.KnownTypes() {
		if err := typ.Validate(); err != nil {
			t.Errorf("known type %q: %v", typ, err)
		}
		if seen[typ] {
			t.Errorf("known type %q listed twice", typ)
		}
		seen[typ] = true
	}
	if len(seen) == 0 {
		t.Fatal("KnownTypes is empty")
	}
}

func TestSeverity(t *testing.T) {
	t.Run("parse", func(t *testing.T) {
		tests := []struct {
			in      string
			want    events.Severity
			wantErr bool
		}{
			{"info", events.SeverityInfo, false},
			{"NOTICE", events.SeverityNotice, false},
			{" warning ", events.SeverityWarning, false},
			{"error", events.SeverityError, false},
			{"critical", events.SeverityCritical, false},
			{"", "", true},
			{"fatal", "", true},
			{"warn", "", true},
		}
		for _, tt := range tests {
			got, err := events.ParseSeverity(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseSeverity(%q) = %q, %v; want %q, err=%v", tt.in, got, err, tt.want, tt.wantErr)
			}
			if err != nil && !errors.Is(err, events.ErrInvalid) {
				t.Errorf("ParseSeverity(%q) error %v does not match ErrInvalid", tt.in, err)
			}
		}
	})
	t.Run("order", func(t *testing.T) {
		order := []events.Severity{events.SeverityInfo, events.SeverityNotice, events.SeverityWarning, events.SeverityError, events.SeverityCritical}
		for i, a := range order {
			for j, b := range order {
				if got, want := a.Less(b), i < j; got != want {
					t.Errorf("%s.Less(%s) = %v, want %v", a, b, got, want)
				}
				if got, want := a.AtLeast(b), i >= j; got != want {
					t.Errorf("%s.AtLeast(%s) = %v, want %v", a, b, got, want)
				}
			}
		}
		if events.Severity("bogus").Valid() {
			t.Error(`Severity("bogus").Valid() = true, want false`)
		}
	})
}

func TestOneLine(t *testing.T) {
	long := strings.Repeat("é", events.MaxMessageBytes) // 2 bytes each
	tests := []struct {
		name, in, want string
	}{
		{"plain", "backup of web finished", "backup of web finished"},
		{"newlines and tabs", "exit status 1:\n\tdisk full\r\n", "exit status 1: disk full"},
		{"control chars", "a\x00\x1b[31mb", "a [31mb"},
		{"invalid utf8", "a\xffb", "a\uFFFDb"},
		{"leading space", "  x  ", "x"},
		{"long", long, strings.Repeat("é", (events.MaxMessageBytes-len("…"))/2) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := events.OneLine(tt.in)
			if got != tt.want {
				t.Errorf("OneLine(%.40q) = %.60q, want %.60q", tt.in, got, tt.want)
			}
			if len(got) > events.MaxMessageBytes || !utf8.ValidString(got) {
				t.Errorf("OneLine result is %d bytes, valid UTF-8 %v; want <= %d and valid", len(got), utf8.ValidString(got), events.MaxMessageBytes)
			}
		})
	}
}
