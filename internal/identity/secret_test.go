package identity

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNewOpaqueTokenKnownAnswer(t *testing.T) {
	// Expected values computed independently with Python from bytes 0..39:
	//   id  = base64.b32encode(r[:8]).decode().lower()[:12]
	//   sec = base64.urlsafe_b64encode(r[8:40]).decode().rstrip("=")
	//   hashlib.sha256(r[8:40]).hexdigest()
	token, id, hash, err := NewOpaqueToken(OpaqueSessionPrefix, &countingReader{})
	if err != nil {
		t.Fatal(err)
	}
	got := []string{token, id, hash}
	want := []string{
		"bws_aaaqeayeauda_CAkKCwwNDg8QERITFBUWFxgZGhscHR4fICEiIyQlJic",
		"aaaqeayeauda",
		"3ab0a4091d2c4eb63042ffca5a2ae450932bfa8a3820ba0bef3013585ee84fd0",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("NewOpaqueToken (-want +got):\n%s", diff)
	}
}

func TestOpaqueTokenRoundTrip(t *testing.T) {
	for _, prefix := range []string{OpaqueSessionPrefix, OpaqueAPITokenPrefix} {
		t.Run(prefix, func(t *testing.T) {
			token, id, hash, err := NewOpaqueToken(prefix, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(token) != len(prefix)+1+12+1+43 || !strings.HasPrefix(token, prefix+"_"+id+"_") {
				t.Fatalf("token %q does not look like %s_<12>_<43>", token, prefix)
			}
			gotID, gotHash, err := ParseOpaqueToken(token, prefix)
			if err != nil {
				t.Fatal(err)
			}
			if gotID != id || gotHash != hash || !OpaqueSecretMatches(hash, gotHash) {
				t.Errorf("ParseOpaqueToken = %q, %q; want %q, %q", gotID, gotHash, id, hash)
			}
			if strings.Contains(hash, token[len(prefix)+14:]) {
				t.Error("stored hash contains the secret in clear")
			}
		})
	}
	a, _, _, _ := NewOpaqueToken("bws", nil)
	b, _, _, _ := NewOpaqueToken("bws", nil)
	if a == b {
		t.Error("two fresh tokens are equal")
	}
}

func TestParseOpaqueTokenAttacks(t *testing.T) {
	const good = "bws_aaaqeayeauda_CAkKCwwNDg8QERITFBUWFxgZGhscHR4fICEiIyQlJic"
	_, goodHash, err := ParseOpaqueToken(good, "bws")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, token, prefix string
	}{
		{"wrong prefix (session used as API token)", good, "bwt"},
		{"prefix swapped in token", "bwt" + good[3:], "bws"},
		{"empty", "", "bws"},
		{"truncated by one", good[:len(good)-1], "bws"},
		{"truncated to id", good[:16], "bws"},
		{"extended by one", good + "A", "bws"},
		{"padded", good + "=", "bws"},
		{"upper-case id", "bws_AAAQEAYEAUDA" + good[16:], "bws"},
		{"id with 0", "bws_0aaqeayeauda" + good[16:], "bws"},
		{"missing separator", "bws-aaaqeayeauda" + good[16:], "bws"},
		{"separator moved", good[:15] + "_a" + good[17:], "bws"},
		{"standard base64 alphabet", good[:len(good)-3] + "+/A", "bws"},
		{"non-canonical final character", good[:len(good)-1] + "d", "bws"},
		{"space inside", good[:30] + " " + good[31:], "bws"},
		{"huge", good + strings.Repeat("A", 1<<20), "bws"},
		{"prefix argument invalid", good, "BWS"},
		{"prefix argument empty", good[4:], ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, hash, err := ParseOpaqueToken(tt.token, tt.prefix)
			if err == nil || id != "" || hash != "" {
				t.Fatalf("ParseOpaqueToken = %q, %q, %v; want an error", id, hash, err)
			}
			if tt.prefix != "BWS" && tt.prefix != "" && !errors.Is(err, ErrMalformedOpaqueToken) {
				t.Errorf("error %v does not wrap ErrMalformedOpaqueToken", err)
			}
			if len(tt.token) > 10 && strings.Contains(err.Error(), tt.token[len(tt.token)-10:]) {
				t.Errorf("error %q echoes the token", err)
			}
		})
	}
	// A token whose secret was altered but is still well formed parses, and
	// its hash no longer matches the stored one.
	tampered := good[:20] + "A" + good[21:]
	if tampered == good {
		t.Fatal("tampering did not change the token")
	}
	id, hash, err := ParseOpaqueToken(tampered, "bws")
	if err != nil {
		t.Fatal(err)
	}
	if id != "aaaqeayeauda" || OpaqueSecretMatches(goodHash, hash) {
		t.Errorf("tampered token: id %q, hash matches = %v; want same id, no match", id, OpaqueSecretMatches(goodHash, hash))
	}
}

func TestOpaqueSecretMatches(t *testing.T) {
	h := HashOpaqueSecret([]byte("x"))
	tests := []struct {
		name           string
		stored, parsed string
		want           bool
	}{
		{"equal", h, h, true},
		{"different", h, HashOpaqueSecret([]byte("y")), false},
		{"both empty", "", "", false},
		{"stored truncated", h[:32], h[:32], false},
		{"case differs", h, strings.ToUpper(h), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := OpaqueSecretMatches(tt.stored, tt.parsed); got != tt.want {
				t.Errorf("OpaqueSecretMatches = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNewOpaqueTokenErrors(t *testing.T) {
	tests := []struct {
		name, prefix string
		rnd          interface{ Read([]byte) (int, error) }
	}{
		{"empty prefix", "", nil},
		{"prefix with underscore", "b_s", nil},
		{"prefix too long", "bulwarkxy", nil},
		{"upper-case prefix", "BWS", nil},
		{"random source fails", "bws", failingReader{}},
		{"random source runs dry", "bws", strings.NewReader(strings.Repeat("x", 20))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token, id, hash, err := NewOpaqueToken(tt.prefix, tt.rnd)
			if err == nil || token != "" || id != "" || hash != "" {
				t.Errorf("NewOpaqueToken = %q, %q, %q, %v; want empty and an error", token, id, hash, err)
			}
		})
	}
}

// FuzzParseOpaqueToken checks that whatever the parser accepts is exactly
// one canonical token: rebuilding it from its parts gives the input back.
func FuzzParseOpaqueToken(f *testing.F) {
	f.Add("bws_aaaqeayeauda_CAkKCwwNDg8QERITFBUWFxgZGhscHR4fICEiIyQlJic", "bws")
	f.Add("bwt_aaaqeayeauda_CAkKCwwNDg8QERITFBUWFxgZGhscHR4fICEiIyQlJic", "bwt")
	f.Add("bws_aaaqeayeauda_CAkKCwwNDg8QERITFBUWFxgZGhscHR4fICEiIyQlJid", "bws")
	f.Add("bws________________________________________________________", "bws")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, token, prefix string) {
		id, hash, err := ParseOpaqueToken(token, prefix)
		if err != nil {
			if id != "" || hash != "" {
				t.Fatalf("values %q, %q returned with error %v", id, hash, err)
			}
			return
		}
		rest, ok := strings.CutPrefix(token, prefix+"_"+id+"_")
		if !ok || len(id) != 12 || len(rest) != 43 {
			t.Fatalf("accepted %q: id %q, secret part %q", token, id, rest)
		}
		secret, err := opaqueSecretEnc.DecodeString(rest)
		if err != nil || opaqueSecretEnc.EncodeToString(secret) != rest {
			t.Fatalf("accepted a non-canonical secret %q", rest)
		}
		if HashOpaqueSecret(secret) != hash {
			t.Fatalf("hash %q is not the hash of the secret", hash)
		}
		if strings.ToLower(id) != id || strings.ContainsAny(id, "_-=018") {
			t.Fatalf("accepted id %q outside lowercase base32", id)
		}
	})
}
