package identity

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// countingReader yields 0, 1, 2, ... so generated values are predictable.
type countingReader struct{ next byte }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.next
		r.next++
	}
	return len(p), nil
}

func TestNewRecoveryCodesKnownAnswer(t *testing.T) {
	// Expected values computed independently with Python:
	//   c = base64.b32encode(bytes(range(10))).decode().lower()
	//   hashlib.sha256(c.encode()).hexdigest()
	codes, hashes, err := NewRecoveryCodes(2, &countingReader{})
	if err != nil {
		t.Fatal(err)
	}
	wantCodes := []string{"aaaq-eaye-auda-ocaj", "bifq-ydio-b4ib-ceqt"}
	wantHashes := []string{
		"c647c0a89a53d2bc4f49cd81594395edecad6490ee3b77e953c934809034473e",
		"9434131889600f2caeec3bebdec65a3312691209d126f270b26269cfce3a9c0b",
	}
	if diff := cmp.Diff(wantCodes, codes); diff != "" {
		t.Errorf("codes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantHashes, hashes); diff != "" {
		t.Errorf("hashes (-want +got):\n%s", diff)
	}
}

func TestNewRecoveryCodes(t *testing.T) {
	codes, hashes, err := NewRecoveryCodes(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != RecoveryCodeCount || len(hashes) != RecoveryCodeCount {
		t.Fatalf("got %d codes, %d hashes; want %d of each", len(codes), len(hashes), RecoveryCodeCount)
	}
	shape := regexp.MustCompile(`^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$`)
	seen := map[string]bool{}
	for i, c := range codes {
		if !shape.MatchString(c) {
			t.Errorf("code %q is not xxxx-xxxx-xxxx-xxxx in a-z2-7", c)
		}
		if seen[c] {
			t.Errorf("code %q issued twice", c)
		}
		seen[c] = true
		norm, ok := NormalizeRecoveryCode(c)
		if !ok || HashRecoveryCode(norm) != hashes[i] {
			t.Errorf("hash %d does not belong to code %q", i, c)
		}
		if strings.Contains(hashes[i], strings.ReplaceAll(c, "-", "")) {
			t.Errorf("hash %d contains the code in clear", i)
		}
	}
}

func TestNewRecoveryCodesErrors(t *testing.T) {
	tests := []struct {
		name string
		n    int
		rnd  interface{ Read([]byte) (int, error) }
	}{
		{"negative count", -1, nil},
		{"too many", 101, nil},
		{"random source fails", 10, failingReader{}},
		{"random source runs dry", 10, bytes.NewReader(make([]byte, 95))},
		{"random source repeats", 10, bytes.NewReader(bytes.Repeat([]byte{7}, 1000))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			codes, hashes, err := NewRecoveryCodes(tt.n, tt.rnd)
			if err == nil || codes != nil || hashes != nil {
				t.Errorf("NewRecoveryCodes = %v, %v, %v; want nil, nil, an error", codes, hashes, err)
			}
		})
	}
}

func TestNormalizeRecoveryCode(t *testing.T) {
	tests := []struct {
		in     string
		want   string
		wantOK bool
	}{
		{"abcd-efgh-ijkl-mn23", "abcdefghijklmn23", true},
		{"ABCD-EFGH-IJKL-MN23", "abcdefghijklmn23", true},
		{" abcd efgh ijkl mn23 ", "abcdefghijklmn23", true},
		{"abcdefghijklmn23", "abcdefghijklmn23", true},
		{"a-b-c-d-e-f-g-h-i-j-k-l-m-n-2-3", "abcdefghijklmn23", true},
		{"abcd-efgh-ijkl-mn2", "", false},   // 15 characters
		{"abcd-efgh-ijkl-mn234", "", false}, // 17 characters
		{"abcd-efgh-ijkl-mn01", "", false},  // 0 and 1 are not base32
		{"abcd-efgh-ijkl-mn89", "", false},  // nor 8 and 9
		{"abcd_efgh_ijkl_mn23", "", false},  // underscores are not separators
		{"abcd-efgh-ijkl-mnéa", "", false},  // non-ASCII
		{"abcd\tefgh-ijkl-mn23", "", false}, // tab
		{"", "", false},
		{strings.Repeat("-", 1000) + "abcdefghijklmn23", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := NormalizeRecoveryCode(tt.in)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("NormalizeRecoveryCode(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestMatchRecoveryCode(t *testing.T) {
	codes, hashes, err := NewRecoveryCodes(RecoveryCodeCount, &countingReader{next: 42})
	if err != nil {
		t.Fatal(err)
	}
	used := append([]string(nil), hashes...)
	used[3] = "" // code 3 has been used
	tests := []struct {
		name      string
		input     string
		hashes    []string
		wantIndex int
		wantOK    bool
	}{
		{"first", codes[0], hashes, 0, true},
		{"last", codes[9], hashes, 9, true},
		{"typed loosely", strings.ToUpper(strings.ReplaceAll(codes[5], "-", " ")), hashes, 5, true},
		{"used code", codes[3], used, -1, false},
		{"other codes still work after one is used", codes[4], used, 4, true},
		{"wrong code", "aaaa-aaaa-aaaa-aaaa", hashes, -1, false},
		{"one character off", changeLastChar(codes[2]), hashes, -1, false},
		{"malformed input", "not a code", hashes, -1, false},
		{"no hashes", codes[0], nil, -1, false},
		{"hash given as input", hashes[0], hashes, -1, false},
		{"upper-case stored hash does not match", codes[1], []string{strings.ToUpper(hashes[1])}, -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i, ok := MatchRecoveryCode(tt.input, tt.hashes)
			if i != tt.wantIndex || ok != tt.wantOK {
				t.Errorf("MatchRecoveryCode(%q) = %d, %v; want %d, %v", tt.input, i, ok, tt.wantIndex, tt.wantOK)
			}
		})
	}
}

// changeLastChar returns code with its last character replaced by another
// valid one.
func changeLastChar(code string) string {
	last := code[len(code)-1]
	repl := "a"
	if last == 'a' {
		repl = "b"
	}
	return code[:len(code)-1] + repl
}
