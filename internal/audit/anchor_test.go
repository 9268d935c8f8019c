package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/store/storetest"
	"github.com/google/go-cmp/cmp"
)

func testAnchor(t testing.TB) Anchor {
	t.Helper()
	db := storetest.SQLite(t, Migrations)
	l, _ := newTestLog(db, 5)
	fill(t, l, 3)
	a, err := l.Anchor(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAnchorFileRoundTrip(t *testing.T) {
	a := testAnchor(t)
	path := filepath.Join(t.TempDir(), "anchor.json")
	if err := WriteAnchor(context.Background(), a, path, nil); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("anchor file mode = %04o, want 0600", st.Mode().Perm())
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := ReadAnchor(f)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, got); diff != "" {
		t.Errorf("anchor (-written +read):\n%s", diff)
	}
	if err := verifyAnchor(got, testKey(1).Public().(ed25519.PublicKey)); err != nil {
		t.Errorf("read-back anchor does not verify: %v", err)
	}
}

func TestWriteAnchorHTTP(t *testing.T) {
	a := testAnchor(t)
	var got []byte
	var method, ctype string
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method, ctype = r.Method, r.Header.Get("Content-Type")
		got, _ = io.ReadAll(r.Body)
	})
	tls := httptest.NewTLSServer(ok)
	defer tls.Close()
	plain := httptest.NewServer(ok)
	defer plain.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "disk full", http.StatusInsufficientStorage)
	}))
	defer failing.Close()

	tests := []struct {
		name    string
		dest    string
		client  *http.Client
		wantErr string
	}{
		{"https", tls.URL + "/anchor", tls.Client(), ""},
		{"plain http to loopback", plain.URL + "/anchor", nil, ""},
		{"plain http elsewhere", "http://192.0.2.1/anchor", nil, "plain http"},
		{"other scheme", "ftp://example.com/anchor", nil, "scheme"},
		{"server error", failing.URL + "/anchor", nil, "507"},
		{"untrusted certificate", tls.URL + "/anchor", &http.Client{}, "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, method, ctype = nil, "", ""
			err := WriteAnchor(context.Background(), a, tt.dest, tt.client)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("WriteAnchor = %v, want an error mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if method != http.MethodPut || ctype != "application/json" {
				t.Errorf("request %s %s, want PUT application/json", method, ctype)
			}
			back, err := ReadAnchor(bytes.NewReader(got))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(a, back); diff != "" {
				t.Errorf("anchor (-sent +received):\n%s", diff)
			}
		})
	}
}

func TestReadAnchorRejects(t *testing.T) {
	a := testAnchor(t)
	good, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(m map[string]any)) string {
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	tests := []struct {
		name, in, wantErr string
	}{
		{"empty", "", "JSON"},
		{"not an object", "[]", "JSON"},
		{"unknown field", edit(func(m map[string]any) { m["extra"] = 1 }), "unknown field"},
		{"trailing data", string(good) + "{}", "after"},
		{"oversized", string(good) + strings.Repeat(" ", MaxAnchorBytes), "larger"},
		{"wrong format", edit(func(m map[string]any) { m["format"] = "other/1" }), "format"},
		{"negative seq", edit(func(m map[string]any) { m["seq"] = -1 }), "negative"},
		{"short hash", edit(func(m map[string]any) { m["hash"] = "abcd" }), "hash"},
		{"uppercase hash", edit(func(m map[string]any) { m["hash"] = strings.ToUpper(m["hash"].(string)) }), "lowercase"},
		{"bad signature hex", edit(func(m map[string]any) { m["signature"] = strings.Repeat("zz", 64) }), "signature"},
		{"bad key id", edit(func(m map[string]any) { m["key_id"] = "12" }), "key_id"},
		{"bad time", edit(func(m map[string]any) { m["time"] = "yesterday" }), "time"},
		{"sub-microsecond time", edit(func(m map[string]any) { m["time"] = "2025-01-01T00:00:00.0000001Z" }), "microseconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadAnchor(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ReadAnchor = %v, want an error mentioning %q", err, tt.wantErr)
			}
		})
	}
}

// FuzzReadAnchor checks ReadAnchor never panics and that whatever it
// accepts survives a write/read round trip unchanged.
func FuzzReadAnchor(f *testing.F) {
	a := testAnchor(f)
	good, err := json.Marshal(a)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"format":"bulwark-audit-anchor/1","seq":0}`))
	f.Add(append(good, good...))
	f.Add([]byte(strings.Repeat("[", 5000)))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ReadAnchor(bytes.NewReader(data))
		if err != nil {
			return
		}
		b, err := json.Marshal(got)
		if err != nil {
			t.Fatalf("accepted anchor does not encode: %v", err)
		}
		back, err := ReadAnchor(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("re-encoded anchor %s is rejected: %v", b, err)
		}
		if diff := cmp.Diff(got, back); diff != "" {
			t.Errorf("round trip (-first +second):\n%s", diff)
		}
	})
}
