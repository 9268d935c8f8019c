package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "0", want: 0},
		{in: "0s", want: 0},
		{in: "300ms", want: 300 * time.Millisecond},
		{in: "30s", want: 30 * time.Second},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "400d", want: 400 * 24 * time.Hour},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "1d1h1m1s", want: 25*time.Hour + time.Minute + time.Second},
		{in: "0d", want: 0},
		{in: " 15m ", want: 15 * time.Minute},
		{in: "+2d", want: 48 * time.Hour},
		{in: "106751d", want: 106751 * 24 * time.Hour},
		{in: "", wantErr: "empty duration"},
		{in: "30", wantErr: `"30" is not a duration: use a number with a unit (ms, s, m, h, d), e.g. 30s, 15m, 12h, 400d`},
		{in: "-1s", wantErr: `"-1s" is negative; durations must be zero or more`},
		{in: "-1d", wantErr: `"-1d" is negative; durations must be zero or more`},
		{in: "1d-1h", wantErr: `"1d-1h" is negative; durations must be zero or more`},
		{in: "1.5d", wantErr: `"1.5d" is not a duration: days must be a whole number before "d", as in 400d or 1d12h`},
		{in: "d", wantErr: `"d" is not a duration: days must be a whole number before "d", as in 400d or 1d12h`},
		{in: "1h1d", wantErr: `"1h1d" is not a duration: days must be a whole number before "d", as in 400d or 1d12h`},
		{in: "1dd", wantErr: `"1dd" is not a duration: use a number with a unit (ms, s, m, h, d), e.g. 30s, 15m, 12h, 400d`},
		{in: "5y", wantErr: `"5y" is not a duration: use a number with a unit (ms, s, m, h, d), e.g. 30s, 15m, 12h, 400d`},
		{in: "106752d", wantErr: `"106752d" is too long; the largest duration is about 106751d`},
		{in: "99999999999999999999d", wantErr: `"99999999999999999999d" is not a duration: days must be a whole number before "d", as in 400d or 1d12h`},
		{in: "106751d23h59m", wantErr: `"106751d23h59m" is too long; the largest duration is about 106751d`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ParseDuration(%q) = %v, %v; want error %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got.D() != tt.want {
				t.Fatalf("ParseDuration(%q) = %v, %v; want %v", tt.in, got.D(), err, tt.want)
			}
		})
	}
}

func TestDurationString(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{1500 * time.Millisecond, "1.5s"},
		{30 * time.Second, "30s"},
		{90 * time.Second, "1m30s"},
		{15 * time.Minute, "15m"},
		{12 * time.Hour, "12h"},
		{90 * time.Minute, "1h30m"},
		{24 * time.Hour, "1d"},
		{36 * time.Hour, "1d12h"},
		{400 * 24 * time.Hour, "400d"},
		{24*time.Hour + time.Second, "1d1s"},
		{24*time.Hour + time.Millisecond, "24h0m0.001s"},
	}
	for _, tt := range tests {
		got := Duration(tt.in).String()
		if got != tt.want {
			t.Errorf("Duration(%v).String() = %q, want %q", tt.in, got, tt.want)
		}
		back, err := ParseDuration(got)
		if err != nil || back.D() != tt.in {
			t.Errorf("ParseDuration(%q) = %v, %v; want round trip to %v", got, back.D(), err, tt.in)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{in: "0", want: 0},
		{in: "512", want: 512},
		{in: "512B", want: 512},
		{in: "64KiB", want: 64 << 10},
		{in: "1MiB", want: 1 << 20},
		{in: "1GiB", want: 1 << 30},
		{in: "2TiB", want: 2 << 40},
		{in: "10MB", want: 10_000_000},
		{in: "1KB", want: 1000},
		{in: "3GB", want: 3_000_000_000},
		{in: "1TB", want: 1_000_000_000_000},
		{in: "1 MiB", want: 1 << 20},
		{in: "1mib", want: 1 << 20},
		{in: "8388607TiB", want: 8388607 << 40},
		{in: "", wantErr: `"" is not a size: use a whole number with an optional unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 64KiB or 1MiB`},
		{in: "-1", wantErr: `"-1" is not a size: use a whole number with an optional unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 64KiB or 1MiB`},
		{in: "1.5MiB", wantErr: `"1.5MiB" is not a size: use a whole number with an optional unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 64KiB or 1MiB`},
		{in: "MiB", wantErr: `"MiB" is not a size: use a whole number with an optional unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 64KiB or 1MiB`},
		{in: "1  MiB", wantErr: `"1  MiB" is not a size: use a whole number with an optional unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 64KiB or 1MiB`},
		{in: "10PB", wantErr: `"10PB" has an unknown unit "PB": use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB`},
		{in: "8388608TiB", wantErr: `"8388608TiB" is too large`},
		{in: "99999999999999999999", wantErr: `"99999999999999999999" is too large`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ParseSize(%q) = %v, %v; want error %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got.Bytes() != tt.want {
				t.Fatalf("ParseSize(%q) = %d, %v; want %d", tt.in, got.Bytes(), err, tt.want)
			}
		})
	}
}

func TestSizeString(t *testing.T) {
	tests := []struct {
		in   Size
		want string
	}{
		{0, "0"}, {512, "512"}, {1000, "1000"}, {KiB, "1KiB"}, {64 * KiB, "64KiB"},
		{MiB, "1MiB"}, {1536 * KiB, "1536KiB"}, {GiB, "1GiB"}, {3 * TiB, "3TiB"}, {MiB + 1, "1048577"},
	}
	for _, tt := range tests {
		got := tt.in.String()
		if got != tt.want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(tt.in), got, tt.want)
		}
		back, err := ParseSize(got)
		if err != nil || back != tt.in {
			t.Errorf("ParseSize(%q) = %d, %v; want round trip to %d", got, back, err, tt.in)
		}
	}
}

func TestTextUnmarshalers(t *testing.T) {
	var d Duration
	if err := d.UnmarshalText([]byte("2d")); err != nil || d.D() != 48*time.Hour {
		t.Errorf("Duration.UnmarshalText(2d) = %v, %v; want 48h", d.D(), err)
	}
	if err := d.UnmarshalText([]byte("soon")); err == nil {
		t.Error("Duration.UnmarshalText(soon) succeeded, want error")
	}
	var s Size
	if err := s.UnmarshalText([]byte("4KiB")); err != nil || s != 4*KiB {
		t.Errorf("Size.UnmarshalText(4KiB) = %v, %v; want 4096", s, err)
	}
	if err := s.UnmarshalText([]byte("big")); err == nil {
		t.Error("Size.UnmarshalText(big) succeeded, want error")
	}
	b, err := json.Marshal(struct {
		D Duration
		S Size
	}{Duration(400 * day), 2 * MiB})
	if err != nil || string(b) != `{"D":"400d","S":"2MiB"}` {
		t.Errorf("json.Marshal = %s, %v; want {\"D\":\"400d\",\"S\":\"2MiB\"}", b, err)
	}
}

func TestSecretResolve(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	withNL := write("nl", "s3cret\n")
	withCRLF := write("crlf", "s3cret\r\n")
	twoNL := write("twonl", "s3cret\n\n")
	plain := write("plain", "  spaced s3cret")
	empty := write("empty", "\n")
	missing := filepath.Join(dir, "missing")
	env := map[string]string{"BULWARK_DSN": "postgres://db/x", "EMPTY": ""}
	getenv := func(k string) string { return env[k] }

	tests := []struct {
		name    string
		s       Secret
		want    string
		wantErr string
		is      error
	}{
		{name: "literal", s: LiteralSecret("lit"), want: "lit"},
		{name: "env", s: EnvSecret("BULWARK_DSN"), want: "postgres://db/x"},
		{name: "env missing", s: EnvSecret("NOPE"), wantErr: "secret from environment variable NOPE: the variable is empty or not set; export it before starting bulwark"},
		{name: "env empty", s: EnvSecret("EMPTY"), wantErr: "secret from environment variable EMPTY: the variable is empty or not set; export it before starting bulwark"},
		{name: "file trailing newline", s: FileSecret(withNL), want: "s3cret"},
		{name: "file trailing crlf", s: FileSecret(withCRLF), want: "s3cret"},
		{name: "file only one newline trimmed", s: FileSecret(twoNL), want: "s3cret\n"},
		{name: "file spaces kept", s: FileSecret(plain), want: "  spaced s3cret"},
		{name: "file empty", s: FileSecret(empty), wantErr: "secret from file " + empty + ": the file is empty; write the secret into it"},
		{name: "file missing", s: FileSecret(missing), wantErr: "secret from file " + missing + ": open " + missing + ": no such file or directory", is: fs.ErrNotExist},
		{name: "unset", s: Secret{}, wantErr: "secret not set", is: ErrSecretNotSet},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.s.Resolve(getenv, os.ReadFile)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Resolve = %q, %v; want error %q", got, err, tt.wantErr)
				}
				if tt.is != nil && !errors.Is(err, tt.is) {
					t.Errorf("errors.Is(%v, %v) = false, want true", err, tt.is)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Resolve = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestSecretAccessors(t *testing.T) {
	tests := []struct {
		s                 Secret
		set               bool
		source, env, file string
	}{
		{Secret{}, false, "", "", ""},
		{LiteralSecret("x"), true, "yaml", "", ""},
		{EnvSecret("E"), true, "env", "E", ""},
		{FileSecret("/f"), true, "file", "", "/f"},
	}
	for _, tt := range tests {
		if tt.s.IsSet() != tt.set || tt.s.Source() != tt.source || tt.s.Env() != tt.env || tt.s.File() != tt.file {
			t.Errorf("%v: IsSet=%v Source=%q Env=%q File=%q; want %v %q %q %q",
				tt.s, tt.s.IsSet(), tt.s.Source(), tt.s.Env(), tt.s.File(), tt.set, tt.source, tt.env, tt.file)
		}
	}
}

// TestSecretNeverPrinted checks the literal cannot leak through fmt, %#v,
// JSON or an error message from Parse.
func TestSecretNeverPrinted(t *testing.T) {
	const value = "hunter2-very-secret"
	s := LiteralSecret(value)
	cfg := Default()
	cfg.Bootstrap.AdminPassword = s
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, perr := Parse("c.yaml", []byte("bootstrap:\n  admin_password: "+value+"\nstore:\n  dsn: "+value+"\n"))
	if perr == nil {
		t.Fatal("Parse succeeded, want the dsn-with-sqlite error")
	}
	for _, out := range []string{
		fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, s), fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg), string(js), perr.Error(),
	} {
		if strings.Contains(out, value) {
			t.Errorf("secret value leaked in %q", out)
		}
	}
	if got, want := EnvSecret("X").String(), "{env: X}"; got != want {
		t.Errorf("EnvSecret.String() = %q, want %q", got, want)
	}
}
