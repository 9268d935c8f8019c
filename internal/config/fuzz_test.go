package config

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

// FuzzParse checks that no input makes the decoder panic, and that its
// answers are consistent: a success validates, a failure is a non-empty,
// ordered Errors list that points inside the file. It calls parse, not
// Parse, so that Parse's recover cannot hide a panic.
func FuzzParse(f *testing.F) {
	seeds := []string{
		"",
		"listen: 127.0.0.1:8443\n",
		"log: {level: debug, format: json}\nstore:\n  driver: postgres\n  dsn: {env: BULWARK_DSN}\n",
		"auth:\n  require_2fa_roles: [admin, ops]\n  webauthn:\n    rp_id: example.com\n    origins: [https://example.com]\n",
		"api:\n  max_body_bytes: 64KiB\n  read_timeout: 1d12h\n",
		"bootstrap:\n  admin_password: {file: /run/secrets/admin}\n",
		"lisen: x\nstore: {dirver: sqlite}\n",
		"listen: &a 127.0.0.1:1\nlog: *a\n",
		"a: &a [*a, *a]\nb: &b [*a, *a, *a]\nc: &c [*b, *b, *b]\n",
		"<<: {listen: x}\n",
		"store:\n  max_open_conns: 99999999999999999999999999\naudit: {checkpoint_every: -0x8000000000000001}\n",
		"api: {max_body_bytes: 99999999999999TiB, idle_timeout: 9999999999d}\n",
		"log:\n\tlevel: debug\n",
		"\x00\x01\x02\xff\xfe",
		"- a\n- b\n",
		"? [a]\n: b\n",
		"listen: 1\nlisten: 2\n",
		"---\na: 1\n---\nb: 2\n",
		"auth: {throttle: {base_delay: 1s, max_delay: 1ms, lockout_after: -1}}\n",
		"store: {dsn: {env: A, file: /b}}\n",
		"store: {dsn: {}}\n",
		"\"\\ud800\": 1\n",
		"!!binary listen: x\n",
		"listen: !custom x\n",
		strings.Repeat("[", 200) + strings.Repeat("]", 200),
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	if ex, err := os.ReadFile("../../docs/bulwark.example.yaml"); err == nil {
		f.Add(ex)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parse("f.yaml", data)
		if err == nil {
			if verr := cfg.Validate(); verr != nil {
				t.Fatalf("parse accepted a config that Validate refuses: %v", verr)
			}
			return
		}
		var errs Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("parse error is %T %v, want non-empty Errors", err, err)
		}
		// YAML also breaks lines at \r, NEL, LS and PS; count them all as an
		// upper bound on the line numbers errors may cite.
		lines := 2
		for _, br := range []string{"\n", "\r", "\u0085", "\u2028", "\u2029"} {
			lines += bytes.Count(data, []byte(br))
		}
		for i, e := range errs {
			if e.File != "f.yaml" || e.Msg == "" || e.Line < 0 || e.Line > lines {
				t.Fatalf("malformed error %d: %+v (file has %d lines)", i, e, lines)
			}
			if i > 0 && e.Line != 0 && (errs[i-1].Line == 0 || errs[i-1].Line > e.Line) {
				t.Fatalf("errors out of order: %q before %q", errs[i-1], e)
			}
		}
		if _, again := parse("f.yaml", data); again == nil || again.Error() != err.Error() {
			t.Fatalf("second parse gave %v, first %v", again, err)
		}
	})
}
