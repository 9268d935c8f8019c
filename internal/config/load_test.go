package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte("listen: 127.0.0.1:9000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(good)
	if err != nil || cfg.Listen != "127.0.0.1:9000" {
		t.Fatalf("Load(good) = %q, %v; want listen 127.0.0.1:9000", cfg.Listen, err)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("\n\nlisten: nowhere\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	want := bad + `:3: listen: must be host:port, e.g. 127.0.0.1:8443, [::1]:8443 or :8443 for all interfaces; got "nowhere"`
	if err == nil || err.Error() != want {
		t.Errorf("Load(bad) error = %v, want %q", err, want)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Line != 3 || fe.Column != 9 || fe.Path != "listen" || fe.File != bad {
		t.Errorf("errors.As FieldError = %+v, want line 3 column 9 path listen file %s", fe, bad)
	}

	_, err = Load(filepath.Join(dir, "missing.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) error = %v, want one wrapping fs.ErrNotExist", err)
	}
}

// TestSizeCap feeds exactly the cap (accepted: comments) and one byte more
// (refused before any parsing), both through Parse and Load.
func TestSizeCap(t *testing.T) {
	atCap := []byte("#" + strings.Repeat("x", MaxFileSize-2) + "\n")
	if _, err := Parse("c.yaml", atCap); err != nil {
		t.Errorf("Parse of exactly %d bytes: %v, want nil", len(atCap), err)
	}
	over := append(atCap, '\n')
	want := "c.yaml: file is larger than 1048576 bytes (1 MiB), the most a configuration file may be; is this the right file?"
	if _, err := Parse("c.yaml", over); err == nil || err.Error() != want {
		t.Errorf("Parse of %d bytes = %v, want %q", len(over), err, want)
	}
	p := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(p, append(over, make([]byte, 3*MaxFileSize)...), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "file is larger than 1048576 bytes") {
		t.Errorf("Load of a 4 MiB file = %v, want the size error", err)
	}
}

func TestDiscover(t *testing.T) {
	empty := t.TempDir()
	cfg, used, err := Discover("", empty)
	if err != nil || used != "" {
		t.Fatalf("Discover with no file = %q, %v; want defaults", used, err)
	}
	if diff := cmp.Diff(Default(), cfg, cmp.AllowUnexported(Secret{})); diff != "" {
		t.Errorf("Discover with no file (-want +got):\n%s", diff)
	}

	withFile := t.TempDir()
	inData := filepath.Join(withFile, DefaultFileName)
	if err := os.WriteFile(inData, []byte("log: {level: debug}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, used, err = Discover("", withFile)
	if err != nil || used != inData || cfg.Log.Level != "debug" {
		t.Errorf("Discover(data dir file) = level %q, %q, %v; want debug from %s", cfg.Log.Level, used, err, inData)
	}

	explicit := filepath.Join(empty, "other.yaml")
	if err := os.WriteFile(explicit, []byte("log: {level: warn}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, used, err = Discover(explicit, withFile)
	if err != nil || used != explicit || cfg.Log.Level != "warn" {
		t.Errorf("Discover(explicit) = level %q, %q, %v; want warn from %s (explicit wins)", cfg.Log.Level, used, err, explicit)
	}

	_, _, err = Discover(filepath.Join(empty, "nope.yaml"), withFile)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Discover(missing explicit) error = %v, want fs.ErrNotExist: an explicit --config must exist", err)
	}

	if err := os.WriteFile(inData, []byte("log: {level: loud}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Discover("", withFile); err == nil || !strings.Contains(err.Error(), inData+":1: log.level") {
		t.Errorf("Discover(bad data dir file) error = %v, want it reported against %s", err, inData)
	}
}

func TestFieldErrorFormat(t *testing.T) {
	tests := []struct {
		e    FieldError
		want string
	}{
		{FieldError{File: "b.yaml", Line: 12, Path: "store.dsn", Msg: "m"}, "b.yaml:12: store.dsn: m"},
		{FieldError{File: "b.yaml", Path: "store.dsn", Msg: "m"}, "b.yaml: store.dsn: m"},
		{FieldError{Line: 3, Path: "listen", Msg: "m"}, "line 3: listen: m"},
		{FieldError{Path: "listen", Msg: "m"}, "listen: m"},
		{FieldError{File: "b.yaml", Line: 2, Msg: "m"}, "b.yaml:2: m"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("%+v.Error() = %q, want %q", tt.e, got, tt.want)
		}
	}
}

// TestErrorsCapped checks that junk with thousands of problems yields a
// bounded report.
func TestErrorsCapped(t *testing.T) {
	var b strings.Builder
	for i := range 2000 {
		b.WriteString("k")
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString(itoa(i))
		b.WriteString(": 1\n")
	}
	_, err := Parse("c.yaml", []byte(b.String()))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse error %T, want Errors", err)
	}
	if len(errs) != maxErrors+1 {
		t.Fatalf("got %d errors, want %d", len(errs), maxErrors+1)
	}
	if got, want := errs[maxErrors].Error(), "c.yaml: 1950 more errors not shown"; got != want {
		t.Errorf("last error = %q, want %q", got, want)
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"password_min_length", "session_idle_timeout", "session_max_age", "token_max_age", "require_2fa", "require_2fa_roles", "throttle", "webauthn"}
	tests := []struct{ key, want string }{
		{"require2fa", "require_2fa"},
		{"REQUIRE_2FA", "require_2fa"},
		{"require-2fa-roles", "require_2fa_roles"},
		{"throtle", "throttle"},
		{"webauth", "webauthn"},
		{"session_max_ag", "session_max_age"},
		{"token_max_agee", "token_max_age"},
		{"password", ""},
		{"x", ""},
		{"", ""},
		{strings.Repeat("a", 10000), ""},
	}
	for _, tt := range tests {
		if got := suggest(tt.key, names); got != tt.want {
			t.Errorf("suggest(%.20q) = %q, want %q", tt.key, got, tt.want)
		}
	}
	if got := suggest("dns", []string{"driver", "dsn", "max_open_conns"}); got != "dsn" {
		t.Errorf(`suggest("dns") = %q, want "dsn"`, got)
	}
}

func TestValidateBuiltInCode(t *testing.T) {
	c := Default()
	c.Store.Driver = "postgres"
	c.Auth.WebAuthn.Origins = nil
	err := c.Validate()
	want := "store.dsn: required when driver is postgres; give {env: NAME} or {file: /path} holding a postgres:// URL\n" +
		"auth.webauthn.origins: must list at least one origin, such as https://bulwark.example.com"
	if err == nil || err.Error() != want {
		t.Errorf("Validate() = %v, want %q", err, want)
	}
}

func TestLiteralSecrets(t *testing.T) {
	c, err := Parse("c.yaml", []byte("store: {driver: postgres, dsn: postgres://x}\nbootstrap: {admin_password: {env: P}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"store.dsn"}, c.LiteralSecrets()); diff != "" {
		t.Errorf("LiteralSecrets (-want +got):\n%s", diff)
	}
	if got := Default().LiteralSecrets(); len(got) != 0 {
		t.Errorf("Default().LiteralSecrets() = %q, want none", got)
	}
}

// TestConfigFieldTypes guards the decoder: every field reachable from
// Config must be a type it knows, and carry a unique yaml tag.
func TestConfigFieldTypes(t *testing.T) {
	var check func(t *testing.T, typ reflect.Type, path string)
	check = func(t *testing.T, typ reflect.Type, path string) {
		if reflect.PointerTo(typ).Implements(nodeDecoderType) {
			return
		}
		switch typ.Kind() {
		case reflect.String, reflect.Bool, reflect.Int, reflect.Int64:
		case reflect.Slice:
			check(t, typ.Elem(), path+"[]")
		case reflect.Struct:
			seen := map[string]bool{}
			for i := range typ.NumField() {
				f := typ.Field(i)
				name, ok := yamlName(f)
				if !ok {
					t.Errorf("%s.%s has no yaml tag", path, f.Name)
					continue
				}
				if seen[name] {
					t.Errorf("%s: yaml key %q used twice", path, name)
				}
				seen[name] = true
				check(t, f.Type, joinPath(path, name))
			}
		default:
			t.Errorf("%s: type %s is not supported by the decoder", path, typ)
		}
	}
	check(t, reflect.TypeFor[Config](), "")
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "abc", 3}, {"dsn", "dsn", 0}, {"dns", "dsn", 1},
		{"kitten", "sitting", 3}, {"listen", "lisen", 1}, {"ca", "abc", 3}, {"abcdef", "badcfe", 3},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
