package access

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseSelector(t *testing.T) {
	tests := []struct {
		in   string
		want string // canonical form
	}{
		{"", "*"},
		{"*", "*"},
		{"  *  ", "*"},
		{"team=blue", "team=blue"},
		{" team = blue ", "team=blue"},
		{"team=blue,env!=prod", "env!=prod,team=blue"},
		{"env!=prod,team=blue", "env!=prod,team=blue"},
		{"team", "team"},
		{"!team", "!team"},
		{"! team", "!team"},
		{"b,a=1,a", "a=1,a,b"},
		{"team=blue,team=blue", "team=blue"},
		{"k8s.io/app-name=web_1.2", "k8s.io/app-name=web_1.2"},
		{"a=1 , !b , c!=2", "a=1,!b,c!=2"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			s, err := ParseSelector(tt.in)
			if err != nil {
				t.Fatalf("ParseSelector(%q): %v", tt.in, err)
			}
			if got := s.String(); got != tt.want {
				t.Errorf("ParseSelector(%q).String() = %q, want %q", tt.in, got, tt.want)
			}
			again, err := ParseSelector(s.String())
			if err != nil || !again.Equal(s) {
				t.Errorf("canonical form %q does not re-parse to the same selector: %v", s, err)
			}
		})
	}
}

func TestParseSelectorErrors(t *testing.T) {
	tests := []struct {
		in      string
		wantPos string // "position N" expected in the message
		wantMsg string
	}{
		{"team=", "position 6", "expected a tag value, found the end"},
		{"=blue", "position 1", "expected a tag key"},
		{"team=blue,", "position 11", "trailing comma"},
		{"team=blue,,env=x", "position 11", "expected a tag key"},
		{"team==blue", "position 6", "expected a tag value"},
		{"team=blue red", "position 11", "separated by ','"},
		{"team=bl ue", "position 9", "separated by ','"},
		{"team=b;drop", "position 7", "separated by ','"},
		{"tëam=blue", "position 2", "separated by ','"},
		{"team=\"blue\"", "position 6", "allowed: letters"},
		{"!team=blue", "position 6", "key!=value"},
		{"!", "position 2", "found the end"},
		{"*,team=blue", "position 1", "expected a tag key"},
		{"team in (blue,red)", "position 6", "separated by ','"},
		{strings.Repeat("k", 129) + "=v", "position 1", "longer than 128"},
		{"k=" + strings.Repeat("v", 257), "position 3", "longer than 256"},
		{strings.Repeat("a,", 32) + "a", "position", "more than 32 terms"},
		{strings.Repeat("a", 1025), "", "the limit is 1024"},
	}
	for _, tt := range tests {
		name := tt.in
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			_, err := ParseSelector(tt.in)
			if err == nil {
				t.Fatalf("ParseSelector(%q) = nil error, want one", tt.in)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.wantPos) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error = %q, want it to contain %q and %q", err, tt.wantPos, tt.wantMsg)
			}
		})
	}
}

func TestSelectorMatches(t *testing.T) {
	blue := map[string]string{"team": "blue", "env": "prod"}
	red := map[string]string{"team": "red"}
	none := map[string]string{}
	tests := []struct {
		sel  string
		tags map[string]string
		want bool
	}{
		{"*", none, true},
		{"*", nil, true},
		{"team=blue", blue, true},
		{"team=blue", red, false},
		{"team=blue", none, false},
		{"team=blue", nil, false},
		{"team!=blue", red, true},
		{"team!=blue", blue, false},
		{"team!=blue", none, true}, // absent counts as "not blue"
		{"team,team!=blue", none, false},
		{"team,team!=blue", red, true},
		{"team", red, true},
		{"team", none, false},
		{"!team", none, true},
		{"!team", red, false},
		{"team=blue,env=prod", blue, true},
		{"team=blue,env=prod", map[string]string{"team": "blue"}, false},
		{"team=blue,env!=prod", blue, false},
		{"team=Blue", blue, false}, // case-sensitive
		{"team=blue,team=red", blue, false},
	}
	for _, tt := range tests {
		t.Run(tt.sel+"/"+formatTags(tt.tags), func(t *testing.T) {
			s := MustParseSelector(tt.sel)
			if got := s.Matches(tt.tags); got != tt.want {
				t.Errorf("%q.Matches(%v) = %v, want %v", tt.sel, tt.tags, got, tt.want)
			}
		})
	}
}

func TestSelectorJSON(t *testing.T) {
	g := Grant{Effect: EffectDeny, Module: ModuleGuard, Level: LevelOperate, Scope: MustParseSelector("team=blue,!frozen")}
	b, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"effect":"deny","module":"guard","level":"operate","scope":"!frozen,team=blue"}`
	if string(b) != want {
		t.Errorf("json = %s, want %s", b, want)
	}
	var back Grant
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !back.Scope.Equal(g.Scope) || back.Level != g.Level || back.Effect != g.Effect || back.Module != g.Module {
		t.Errorf("round trip = %+v, want %+v", back, g)
	}
	if err := json.Unmarshal([]byte(`{"scope":"team="}`), &back); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad scope in JSON: err = %v, want ErrInvalid", err)
	}
}

// FuzzParseSelector checks that the parser never panics, that whatever it
// accepts has a canonical form that parses back to the same selector, and
// that matching is a pure function of the terms.
func FuzzParseSelector(f *testing.F) {
	for _, s := range []string{"", "*", "team=blue", "team=blue,env!=prod", "!a,b", "a=1,,b", "a!=", "!a=b", " a = b ", "k8s.io/x=y", "\x00", "a=b,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseSelector(in)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		again, err := ParseSelector(s.String())
		if err != nil {
			t.Fatalf("canonical %q of %q does not parse: %v", s, in, err)
		}
		if !again.Equal(s) || again.String() != s.String() {
			t.Fatalf("canonical %q re-parses as %q", s, again)
		}
		tags := map[string]string{}
		for _, term := range s.terms {
			if term.op == opEq {
				tags[term.key] = term.value
			}
		}
		if s.Matches(tags) != again.Matches(tags) {
			t.Fatalf("%q and its canonical form disagree on %v", in, tags)
		}
	})
}
