package identity

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// Known-answer vectors. Each "encoded" string was produced by the reference
// implementation's CLI (Debian package argon2 0~20190702, `apt-get install
// argon2`), never by the code under test, e.g.
//
//	echo -n password | argon2 somesalt -id -t 2 -m 16 -p 1 -e
//	echo -n 'correct horse' | argon2 bulwarksaltvalue -id -t 2 -k 19456 -p 1 -l 32 -e
//	echo -n 'Tr0ub4dor&3' | argon2 saltsaltsalt1234 -id -t 3 -k 8192 -p 2 -l 24 -e
//	printf 'Pass word' | argon2 nfkcsaltnfkcsalt -id -t 2 -k 19456 -p 1 -e
//	printf 'caf\xc3\xa9 cr\xc3\xa8me br\xc3\xbbl\xc3\xa9e' | argon2 nfkcsaltnfkcsalt -id -t 2 -k 19456 -p 1 -e
//
// RFC 9106's own test vector uses a secret key and associated data, which
// x/crypto's IDKey does not take, so it cannot be used here.
var argon2CLIVectors = []struct {
	name     string
	encoded  string
	password string
	// rehashVsDefault is whether the vector is weaker than DefaultArgon2.
	rehashVsDefault bool
}{
	{
		name:            "m=2^16 t=2 p=1 8-byte salt",
		encoded:         "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
		password:        "password",
		rehashVsDefault: true, // 8-byte salt < 16
	},
	{
		name:            "OWASP minimum",
		encoded:         "$argon2id$v=19$m=19456,t=2,p=1$YnVsd2Fya3NhbHR2YWx1ZQ$fvCJczJly+sBcvklOR/IDdQ0xxAlxJw9pLjmcsKrq0o",
		password:        "correct horse",
		rehashVsDefault: true,
	},
	{
		name:            "two lanes 24-byte key",
		encoded:         "$argon2id$v=19$m=8192,t=3,p=2$c2FsdHNhbHRzYWx0MTIzNA$73Rledacl0EEWKYnC9H2ZVWdNtiKJYrU",
		password:        "Tr0ub4dor&3",
		rehashVsDefault: true,
	},
	{
		// Full-width letters and an ideographic space normalise (NFKC) to
		// the ASCII the CLI hashed.
		name:            "NFKC full-width",
		encoded:         "$argon2id$v=19$m=19456,t=2,p=1$bmZrY3NhbHRuZmtjc2FsdA$JtjoIZ6wu2BHRDJ/ikirszI0Oy96PyiJTi8NYxyRSQ4",
		password:        "Ｐａｓｓ\u3000ｗｏｒｄ",
		rehashVsDefault: true,
	},
	{
		// Decomposed accents (e + U+0301) as a macOS keyboard may send
		// them; the CLI hashed the precomposed form.
		name:            "NFKC decomposed accents",
		encoded:         "$argon2id$v=19$m=19456,t=2,p=1$bmZrY3NhbHRuZmtjc2FsdA$ZJH983SiYemS25hIQIsj7+dsbQrBJcoLtvVchYT4I3c",
		password:        "cafe\u0301 cre\u0300me bru\u0302le\u0301e",
		rehashVsDefault: true,
	},
}

func TestVerifyPasswordReferenceVectors(t *testing.T) {
	for _, v := range argon2CLIVectors {
		t.Run(v.name, func(t *testing.T) {
			ok, rehash, err := VerifyPassword(v.encoded, v.password, DefaultArgon2)
			if err != nil || !ok || rehash != v.rehashVsDefault {
				t.Errorf("VerifyPassword(right password) = %v, %v, %v; want true, %v, nil", ok, rehash, err, v.rehashVsDefault)
			}
			ok, rehash, err = VerifyPassword(v.encoded, v.password+"x", DefaultArgon2)
			if err != nil || ok || rehash {
				t.Errorf("VerifyPassword(wrong password) = %v, %v, %v; want false, false, nil", ok, rehash, err)
			}
		})
	}
}

// TestHashPasswordKnownAnswer fixes the salt through the injected reader and
// checks that HashPassword reproduces the reference CLI's output byte for
// byte: encoder, parameter order and base64 flavour included.
func TestHashPasswordKnownAnswer(t *testing.T) {
	got, err := HashPassword("correct horse", MinimumArgon2, strings.NewReader("bulwarksaltvalue"))
	if err != nil {
		t.Fatal(err)
	}
	want := "$argon2id$v=19$m=19456,t=2,p=1$YnVsd2Fya3NhbHR2YWx1ZQ$fvCJczJly+sBcvklOR/IDdQ0xxAlxJw9pLjmcsKrq0o"
	if got != want {
		t.Errorf("HashPassword = %q, want %q", got, want)
	}
}

func TestHashPasswordRoundTrip(t *testing.T) {
	a, err := HashPassword("hunter2 but longer", MinimumArgon2, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := HashPassword("hunter2 but longer", MinimumArgon2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Errorf("two hashes of one password are equal (%q); the salt is not random", a)
	}
	if !strings.HasPrefix(a, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("HashPassword = %q, want the m=19456,t=2,p=1 PHC prefix", a)
	}
	tests := []struct {
		name       string
		password   string
		want       Argon2Params
		wantOK     bool
		wantRehash bool
	}{
		{"right password, same params", "hunter2 but longer", MinimumArgon2, true, false},
		{"right password, policy raised", "hunter2 but longer", DefaultArgon2, true, true},
		{"right password, more lanes wanted", "hunter2 but longer", Argon2Params{Memory: 19456, Time: 2, Threads: 4, SaltLen: 16, KeyLen: 32}, true, false},
		{"wrong password", "hunter2 but longer!", DefaultArgon2, false, false},
		{"empty password", "", MinimumArgon2, false, false},
		{"case differs", "Hunter2 but longer", MinimumArgon2, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := VerifyPassword(a, tt.password, tt.want)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.wantOK || rehash != tt.wantRehash {
				t.Errorf("VerifyPassword = %v, %v; want %v, %v", ok, rehash, tt.wantOK, tt.wantRehash)
			}
		})
	}
}

func TestVerifyPasswordTampered(t *testing.T) {
	const good = "$argon2id$v=19$m=19456,t=2,p=1$YnVsd2Fya3NhbHR2YWx1ZQ$fvCJczJly+sBcvklOR/IDdQ0xxAlxJw9pLjmcsKrq0o"
	tests := []struct{ name, encoded string }{
		{"key byte changed", strings.Replace(good, "$fvCJ", "$fvCK", 1)},
		{"salt changed", strings.Replace(good, "YnVsd2Fya3NhbHR2YWx1ZQ", "YnVsd2Fya3NhbHR2YWx1ZA", 1)},
		{"time lowered", strings.Replace(good, "t=2", "t=1", 1)},
		{"memory changed", strings.Replace(good, "m=19456", "m=19455", 1)},
		{"lanes changed", strings.Replace(good, "p=1", "p=2", 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.encoded == good {
				t.Fatal("test did not change the hash")
			}
			ok, _, err := VerifyPassword(tt.encoded, "correct horse", MinimumArgon2)
			if err != nil || ok {
				t.Errorf("VerifyPassword(tampered) = %v, %v; want false, nil", ok, err)
			}
		})
	}
}

func TestVerifyPasswordMalformed(t *testing.T) {
	const salt, key = "YnVsd2Fya3NhbHR2YWx1ZQ", "fvCJczJly+sBcvklOR/IDdQ0xxAlxJw9pLjmcsKrq0o"
	phc := func(params, s, k string) string { return "$argon2id$v=19$" + params + "$" + s + "$" + k }
	tests := []struct{ name, encoded string }{
		{"empty", ""},
		{"bcrypt", "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2i", "$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + key},
		{"argon2d", "$argon2d$v=19$m=19456,t=2,p=1$" + salt + "$" + key},
		{"version 16", "$argon2id$v=16$m=19456,t=2,p=1$" + salt + "$" + key},
		{"no version", "$argon2id$m=19456,t=2,p=1$" + salt + "$" + key},
		{"memory 4 GiB + 1 KiB", phc("m=4194305,t=2,p=1", salt, key)},
		{"memory uint32 max", phc("m=4294967295,t=2,p=1", salt, key)},
		{"memory overflows uint32", phc("m=4294967296,t=2,p=1", salt, key)},
		{"memory below 8p", phc("m=15,t=1,p=2", salt, key)},
		{"time 0", phc("m=19456,t=0,p=1", salt, key)},
		{"time 101", phc("m=19456,t=101,p=1", salt, key)},
		{"time huge", phc("m=19456,t=4000000000,p=1", salt, key)},
		{"lanes 0", phc("m=19456,t=2,p=0", salt, key)},
		{"lanes 65", phc("m=19456,t=2,p=65", salt, key)},
		{"lanes 256 (would wrap uint8 to 0)", phc("m=19456,t=2,p=256", salt, key)},
		{"lanes 257 (would wrap uint8 to 1)", phc("m=19456,t=2,p=257", salt, key)},
		{"parameter order", phc("t=2,m=19456,p=1", salt, key)},
		{"leading zero", phc("m=019456,t=2,p=1", salt, key)},
		{"plus sign", phc("m=+19456,t=2,p=1", salt, key)},
		{"negative", phc("m=-1,t=2,p=1", salt, key)},
		{"empty number", phc("m=,t=2,p=1", salt, key)},
		{"spaces", phc("m=19456, t=2,p=1", salt, key)},
		{"extra parameter", phc("m=19456,t=2,p=1,keyid=x", salt, key)},
		{"missing parameter", phc("m=19456,t=2", salt, key)},
		{"salt 7 bytes", phc("m=19456,t=2,p=1", "c2FsdHNhbA", key)},
		{"salt 65 bytes", phc("m=19456,t=2,p=1", strings.Repeat("A", 87), key)},
		{"key 15 bytes", phc("m=19456,t=2,p=1", salt, "AAAAAAAAAAAAAAAAAAAA")},
		{"key 129 bytes", phc("m=19456,t=2,p=1", salt, strings.Repeat("A", 172))},
		{"padded base64", phc("m=19456,t=2,p=1", salt+"==", key)},
		{"url base64", phc("m=19456,t=2,p=1", salt, strings.ReplaceAll(key, "+", "-"))},
		{"non-canonical base64 trailing bits", phc("m=19456,t=2,p=1", "YnVsd2Fya3NhbHR2YWx1ZR", key)},
		{"missing key", "$argon2id$v=19$m=19456,t=2,p=1$" + salt},
		{"trailing dollar", phc("m=19456,t=2,p=1", salt, key) + "$"},
		{"extra field", phc("m=19456,t=2,p=1", salt, key) + "$" + key},
		{"oversized", phc("m=19456,t=2,p=1", salt, key+strings.Repeat("A", 1<<20))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := VerifyPassword(tt.encoded, "correct horse", DefaultArgon2)
			if !errors.Is(err, ErrMalformedPasswordHash) {
				t.Errorf("VerifyPassword err = %v, want ErrMalformedPasswordHash", err)
			}
			if ok || rehash {
				t.Errorf("VerifyPassword = %v, %v; want false, false", ok, rehash)
			}
		})
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("entropy pool on fire") }

func TestHashPasswordErrors(t *testing.T) {
	tests := []struct {
		name string
		p    Argon2Params
		rnd  io.Reader
	}{
		{"zero params", Argon2Params{}, nil},
		{"salt too short", Argon2Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 4, KeyLen: 32}, nil},
		{"key too short", Argon2Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 8}, nil},
		{"memory above cap", Argon2Params{Memory: argon2MaxMemoryKiB + 1, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}, nil},
		{"random source fails", MinimumArgon2, failingReader{}},
		{"random source short", MinimumArgon2, strings.NewReader("short")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := HashPassword("correct horse battery", tt.p, tt.rnd)
			if err == nil || got != "" {
				t.Errorf("HashPassword = %q, %v; want \"\", an error", got, err)
			}
		})
	}
}

func TestArgon2ParamsDefaults(t *testing.T) {
	// Guard against someone lowering the defaults below OWASP's floor.
	for name, p := range map[string]Argon2Params{"DefaultArgon2": DefaultArgon2, "MinimumArgon2": MinimumArgon2} {
		if p.Memory < 19456 || p.Time < 2 || p.Threads < 1 || p.SaltLen < 16 || p.KeyLen < 32 {
			t.Errorf("%s = %+v is below OWASP's minimum (m=19456, t=2, p=1, 16-byte salt, 32-byte key)", name, p)
		}
		if err := p.validate(); err != nil {
			t.Errorf("%s is not accepted by the decoder's caps: %v", name, err)
		}
	}
}

func TestPasswordPolicy(t *testing.T) {
	tests := []struct {
		name     string
		policy   PasswordPolicy
		password string
		username string
		// wantReason is a substring of the PolicyError reason; "" means accepted.
		wantReason string
	}{
		{"good passphrase", PasswordPolicy{}, "purple monkey dishwasher", "alice", ""},
		{"exactly min length", PasswordPolicy{MinLength: 12}, "zq8#kd02Lm!x", "alice", ""},
		{"one short", PasswordPolicy{MinLength: 12}, "zq8#kd02Lm!", "alice", "at least 12 characters (got 11)"},
		{"default min", PasswordPolicy{}, "zq8#kd02Lm!", "alice", "at least 12 characters"},
		{"runes not bytes", PasswordPolicy{MinLength: 12}, "ééééééfghijk", "alice", ""},
		{"multibyte too short", PasswordPolicy{MinLength: 12}, "éééééééééé", "alice", "at least 12"},
		{"NFKC before counting", PasswordPolicy{MinLength: 4}, "ﬃﬃ", "alice", ""}, // two ligatures, six letters
		{"too long", PasswordPolicy{MaxLength: 20}, strings.Repeat("ab", 11), "alice", "at most 20 characters"},
		{"default max", PasswordPolicy{}, strings.Repeat("abc", 342), "alice", "at most 1024"},
		{"far too long bytes", PasswordPolicy{}, strings.Repeat("x", 1<<20), "alice", "at most 1024"},
		{"max is inclusive", PasswordPolicy{MaxLength: 20}, strings.Repeat("ab", 10), "alice", ""},
		{"equals username", PasswordPolicy{MinLength: 8}, "alice.admin", "alice.admin", "same as the username"},
		{"equals username other case", PasswordPolicy{MinLength: 8}, "Alice.Admin", "alice.admin", "same as the username"},
		{"contains username is fine", PasswordPolicy{MinLength: 8}, "alice.admin rules ok", "alice.admin", ""},
		{"one character", PasswordPolicy{}, "aaaaaaaaaaaaaaaa", "alice", "single character"},
		{"one multibyte character", PasswordPolicy{}, strings.Repeat("ß", 16), "alice", "single character"},
		{"common", PasswordPolicy{MinLength: 6}, "password", "alice", "most common passwords"},
		{"common upper case", PasswordPolicy{MinLength: 6}, "PassWord", "alice", "most common passwords"},
		{"common long", PasswordPolicy{MinLength: 8}, "1qaz2wsx3edc", "alice", "most common passwords"},
		{"invalid UTF-8", PasswordPolicy{MinLength: 4}, "abc\xffdefgh", "alice", "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Check(tt.password, tt.username)
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrWeakPassword) {
				t.Fatalf("Check = %v, want an error wrapping ErrWeakPassword", err)
			}
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("Check = %T, want *PolicyError", err)
			}
			if !strings.Contains(pe.Reason, tt.wantReason) {
				t.Errorf("Reason = %q, want it to contain %q", pe.Reason, tt.wantReason)
			}
		})
	}
}

func TestCommonPasswordList(t *testing.T) {
	header, body, ok := strings.Cut(commonPasswordsText, "\n")
	if !ok || !strings.HasPrefix(header, "# ") || !strings.Contains(header, "zxcvbn@4.4.2") || !strings.Contains(header, "MIT") || !strings.Contains(header, "Dan Wheeler and Dropbox") {
		t.Errorf("header line %q does not name the source (zxcvbn@4.4.2) and licence (MIT, Dan Wheeler and Dropbox)", header)
	}
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	if len(lines) != 10000 {
		t.Errorf("commonpasswords.txt has %d entries, want 10000", len(lines))
	}
	if got := len(commonPasswordSet()); got != len(lines) {
		t.Errorf("set has %d entries but the file %d lines: duplicates or blank lines", got, len(lines))
	}
	for i, l := range lines {
		if l == "" || l != strings.ToLower(l) || strings.HasPrefix(l, "#") {
			t.Errorf("line %d is %q: want a non-empty lowercase entry", i+2, l)
		}
	}
	if lines[0] != "123456" || lines[1] != "password" {
		t.Errorf("list starts %q, %q; want the most frequent first (123456, password)", lines[0], lines[1])
	}
	tests := []struct {
		pw   string
		want bool
	}{
		{"password", true},
		{"123456", true},
		{"qwerty", true},
		{"letmein", true},
		{"LetMeIn", true},
		{"QWERTY", true},
		{"pic's", true}, // escaped as pic\'s in the source
		{"correct horse battery staple x9", false},
		{"password ", false},
		{"", false},
		{"# the 10000 most common passwords", false},
	}
	for _, tt := range tests {
		t.Run(tt.pw, func(t *testing.T) {
			if got := IsCommonPassword(tt.pw); got != tt.want {
				t.Errorf("IsCommonPassword(%q) = %v, want %v", tt.pw, got, tt.want)
			}
		})
	}
}

// FuzzVerifyPassword feeds arbitrary strings to the PHC decoder. Whatever it
// accepts must be within the caps and re-encode to exactly the input (one
// spelling per hash); whatever it refuses must be refused by VerifyPassword
// with ErrMalformedPasswordHash. Accepted hashes cheap enough to compute are
// verified too, to exercise argon2 with odd but legal parameters.
func FuzzVerifyPassword(f *testing.F) {
	for _, v := range argon2CLIVectors {
		f.Add(v.encoded, v.password)
	}
	f.Add("$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ$AAAAAAAAAAAAAAAAAAAAAA", "x")
	f.Add("$argon2id$v=19$m=4294967295,t=4294967295,p=255$c29tZXNhbHQ$AAAAAAAAAAAAAAAAAAAAAA", "x")
	f.Add("$argon2id$v=19$m=16,t=1,p=2$c29tZXNhbHQ$AAAAAAAAAAAAAAAAAAAAAA", "")
	f.Add("$argon2id$v=19$$$", "")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, encoded, password string) {
		p, salt, key, err := decodeArgon2PHC(encoded)
		if err != nil {
			if !errors.Is(err, ErrMalformedPasswordHash) {
				t.Fatalf("decode error %v does not wrap ErrMalformedPasswordHash", err)
			}
			ok, rehash, verr := VerifyPassword(encoded, password, MinimumArgon2)
			if ok || rehash || !errors.Is(verr, ErrMalformedPasswordHash) {
				t.Fatalf("VerifyPassword(undecodable) = %v, %v, %v; want false, false, ErrMalformedPasswordHash", ok, rehash, verr)
			}
			return
		}
		if verr := p.validate(); verr != nil {
			t.Fatalf("decoder accepted out-of-range params %+v: %v", p, verr)
		}
		if int(p.SaltLen) != len(salt) || int(p.KeyLen) != len(key) {
			t.Fatalf("params %+v disagree with salt %d bytes, key %d bytes", p, len(salt), len(key))
		}
		if re := encodeArgon2PHC(p, salt, key); re != encoded {
			t.Fatalf("re-encoded %q, want the input %q", re, encoded)
		}
		if uint64(p.Memory)*uint64(p.Time) <= 4096 {
			if _, _, err := VerifyPassword(encoded, password, MinimumArgon2); err != nil {
				t.Fatalf("VerifyPassword(decodable) error: %v", err)
			}
		}
	})
}

func BenchmarkArgon2(b *testing.B) {
	for _, bc := range []struct {
		name string
		p    Argon2Params
	}{{"Default", DefaultArgon2}, {"Minimum", MinimumArgon2}} {
		b.Run(bc.name, func(b *testing.B) {
			enc, err := HashPassword("correct horse battery staple", bc.p, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if ok, _, err := VerifyPassword(enc, "correct horse battery staple", bc.p); !ok || err != nil {
					b.Fatalf("VerifyPassword = %v, %v", ok, err)
				}
			}
		})
	}
}
