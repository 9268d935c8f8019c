package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExtractPasswords(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		want    []string
		wantErr bool
	}{
		{"plain", "var x;\nx = {\n  passwords: \"123456,password,qwerty\".split(\",\"),\n  surnames: \"smith\".split(\",\")\n};\n", []string{"123456", "password", "qwerty"}, false},
		{"escapes", `  passwords: "pic\'s,a\\b,\x41\u00e9".split(","),`, []string{"pic's", `a\b`, "Aé"}, false},
		{"no passwords", `  surnames: "smith".split(","),`, nil, true},
		{"unterminated", `  passwords: "a,b`, nil, true},
		{"truncated escape", `  passwords: "a\u00".split(","),`, nil, true},
		{"bad escape", `  passwords: "a\q".split(","),`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := extractPasswords([]byte(tt.src))
			if (err != nil) != tt.wantErr {
				t.Fatalf("extractPasswords err = %v, wantErr %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("extractPasswords (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTopUniqueLower(t *testing.T) {
	got, err := topUniqueLower([]string{"Password", "password", "", "#hash", "ABC", "x"}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"password", "abc", "x"}, got); diff != "" {
		t.Errorf("topUniqueLower (-want +got):\n%s", diff)
	}
	if _, err := topUniqueLower([]string{"a", "A"}, 2); err == nil {
		t.Error("topUniqueLower with too few distinct entries: got nil error, want one")
	}
}
