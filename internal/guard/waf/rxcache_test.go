package waf

import (
	"bytes"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"sync"
	"testing"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

func TestCacheRules(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`SecRule ARGS "@rx ab+c" "id:1"`, `SecRule ARGS "@cachedrx ab+c" "id:1"`},
		{`SecRule ARGS "!@rx ^(?:a|b)$" "id:1"`, `SecRule ARGS "!@cachedrx ^(?:a|b)$" "id:1"`},
		{`SecRule ARGS "@rx a\"b" "id:1,msg:'@rx '"`, `SecRule ARGS "@cachedrx a\"b" "id:1,msg:'@rx '"`},
		{`SecRule ARGS "@rx [\x00-\x1f]" "id:1"`, `SecRule ARGS "@cachedrx [\x00-\x1f]" "id:1"`},
		{`SecRule ARGS "@rx [\x80-\xff]" "id:1"`, `SecRule ARGS "@rx [\x80-\xff]" "id:1"`},
		{`SecRule ARGS "@rx \x{5c}\x{0}" "id:1"`, `SecRule ARGS "@cachedrx \x{5c}\x{0}" "id:1"`},
		{`SecRule ARGS "@rx \x{100}" "id:1"`, `SecRule ARGS "@rx \x{100}" "id:1"`},
		{`SecRule ARGS "@rx a\x" "id:1"`, `SecRule ARGS "@rx a\x" "id:1"`},
		{`SecRule ARGS "@rx \x5" "id:1"`, `SecRule ARGS "@rx \x5" "id:1"`},
		{"SecRule ARGS \"@rx \xff\" \"id:1\"", "SecRule ARGS \"@rx \xff\" \"id:1\""},
		{`SecRule ARGS "@rx unterminated`, `SecRule ARGS "@rx unterminated`},
		{`SecRule ARGS "@pm a b" "id:1"`, `SecRule ARGS "@pm a b" "id:1"`},
		{`SecRule ARGS "@rx x\"@rx y" "id:1,msg:'x \"@rx y'"`, `SecRule ARGS "@cachedrx x\"@rx y" "id:1,msg:'x \"@rx y'"`},
		{`SecRule ARGS "@rx x\"!@rx y" "id:1"`, `SecRule ARGS "@cachedrx x\"!@rx y" "id:1"`},
		{"# a comment with a \" and \"@rx x\" in it\nSecRule ARGS \"@rx y\" \"id:1\"",
			"# a comment with a \" and \"@rx x\" in it\nSecRule ARGS \"@cachedrx y\" \"id:1\""},
		{"SecRule ARGS \"@rx a\\\\\" \"id:1,msg:'\\\"@rx b'\"", "SecRule ARGS \"@cachedrx a\\\\\" \"id:1,msg:'\\\"@rx b'\""},
		{"SecRule REQUEST_URI \"@rx a\" \\\n    \"id:1,chain\"\n    SecRule ARGS \"!@rx b\" \"t:none\"",
			"SecRule REQUEST_URI \"@cachedrx a\" \\\n    \"id:1,chain\"\n    SecRule ARGS \"!@cachedrx b\" \"t:none\""},
		{`SecRule A "@rx x" "id:1"` + "\n" + `SecRule B "!@rx \xc3" "id:2"` + "\n" + `SecRule C "@rx y" "id:3"`,
			`SecRule A "@cachedrx x" "id:1"` + "\n" + `SecRule B "!@rx \xc3" "id:2"` + "\n" + `SecRule C "@cachedrx y" "id:3"`},
	} {
		if got := string(cacheRules([]byte(tc.in))); got != tc.want {
			t.Errorf("cacheRules(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

// crsPatterns returns the @rx patterns of the CRS request rules that
// crsFS hands to @cachedrx, and how many it leaves to Coraza's @rx.
func crsPatterns(t *testing.T) (cached []string, left int) {
	t.Helper()
	for _, f := range requestRuleFiles() {
		data, err := fs.ReadFile(coreruleset.FS, "@owasp_crs/"+f)
		if err != nil {
			t.Fatal(err)
		}
		rewritten, err := fs.ReadFile(crsFS{coreruleset.FS}, "@owasp_crs/"+f)
		if err != nil {
			t.Fatal(err)
		}
		n := bytes.Count(rewritten, []byte("@"+cachedOp+" "))
		for rest := data; ; {
			i := bytes.Index(rest, []byte("@rx "))
			if i < 0 {
				break
			}
			start := i + 4
			end := closingQuote(rest, start)
			p := rest[start:end]
			if cacheable(p) {
				cached = append(cached, strings.ReplaceAll(string(p), `\"`, `"`))
			} else {
				left++
			}
			rest = rest[end:]
		}
		if got := bytes.Count(data, []byte("@rx ")) - bytes.Count(rewritten, []byte("@rx ")); got != n {
			t.Fatalf("%s: %d operators renamed, %d @cachedrx in the result", f, got, n)
		}
	}
	return cached, left
}

// fakeTx records captures.
type fakeTx struct {
	plugintypes.TransactionState
	capturing bool
	got       map[int]string
}

func (tx *fakeTx) Capturing() bool { return tx.capturing }
func (tx *fakeTx) CaptureField(i int, v string) {
	if tx.got == nil {
		tx.got = map[int]string{}
	}
	tx.got[i] = v
}

// wantCaptures is what Coraza's @rx captures for value.
func wantCaptures(re *regexp.Regexp, value string) map[int]string {
	m := re.FindStringSubmatchIndex(value)
	if m == nil {
		return nil
	}
	got := map[int]string{}
	for i := 0; i < len(m)/2 && i < 9; i++ {
		if m[2*i] >= 0 {
			got[i] = value[m[2*i]:m[2*i+1]]
		} else {
			got[i] = ""
		}
	}
	return got
}

// TestCachedRX: over every CRS pattern that @cachedrx takes and a set of
// ordinary and hostile values, the first answer (a match) and the second
// (from the cache) are both what the regular expression says, captures
// included, whichever of a capturing and a plain rule asked first; a value
// over cacheMaxValue is never kept.
func TestCachedRX(t *testing.T) {
	patterns, left := crsPatterns(t)
	if len(patterns) < 200 || left > 20 { // CRS 4.25: 253 and 10
		t.Fatalf("%d CRS patterns cached, %d left to Coraza's @rx: the rewrite misses rules", len(patterns), left)
	}
	values := []string{
		"", "GET", "/index.html", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
		"' or 1=1--", "1 union select password from users", "<script>alert(1)</script>", "../../etc/passwd",
		"${jndi:ldap://x/a}", "; cat /etc/passwd", "php://filter/convert.base64-encode/resource=index",
		"<?php system($_GET['c']); ?>", "line one\nline two", "bytes:\x00\x01\xff", "nikto", "() { :; }; echo",
		strings.Repeat("a", cacheMaxValue) + "' or 1=1--",
	}
	for _, p := range patterns {
		re, err := regexp.Compile("(?sm)" + p)
		if err != nil {
			t.Fatalf("pattern %q: %v", p, err)
		}
		op, err := newCachedRX(plugintypes.OperatorOptions{Arguments: p})
		if err != nil {
			t.Fatalf("newCachedRX(%q): %v", p, err)
		}
		for _, v := range values {
			want, wantCap := re.MatchString(v), wantCaptures(re, v)
			for _, order := range [][]bool{{false, true, true, false}, {true, false, true}} {
				for k, capturing := range order {
					tx := &fakeTx{capturing: capturing}
					got := op.Evaluate(tx, v)
					if got != want {
						t.Fatalf("pattern %q, value %q, evaluation %d (capturing %v): %v, want %v", p, v, k, capturing, got, want)
					}
					if capturing && fmt.Sprint(tx.got) != fmt.Sprint(wantCap) {
						t.Fatalf("pattern %q, value %q, evaluation %d: captured %v, want %v", p, v, k, tx.got, wantCap)
					}
					if !capturing && tx.got != nil {
						t.Fatalf("pattern %q, value %q: captured %v for a rule that does not capture", p, v, tx.got)
					}
				}
			}
			clearAnswers() // the next value starts from an empty cache
		}
	}
	op, err := newCachedRX(plugintypes.OperatorOptions{Arguments: "a"})
	if err != nil {
		t.Fatal(err)
	}
	clearAnswers()
	op.Evaluate(&fakeTx{}, strings.Repeat("a", cacheMaxValue+1))
	for i := range answers.slots {
		if answers.slots[i].Load() != nil {
			t.Fatal("a value longer than cacheMaxValue was kept")
		}
	}
}

func clearAnswers() {
	for i := range answers.slots {
		answers.slots[i].Store(nil)
	}
}

// TestCachedRXConcurrent: goroutines asking one pattern about values that
// share slots all get right answers (run with -race).
func TestCachedRXConcurrent(t *testing.T) {
	op, err := newCachedRX(plugintypes.OperatorOptions{Arguments: `^(a+)(b)?$`})
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?sm)^(a+)(b)?$`)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 3000 {
				v := strings.Repeat("a", 1+i%40) + []string{"", "b", "c"}[(i+g)%3]
				tx := &fakeTx{capturing: (i+g)%2 == 0}
				if got := op.Evaluate(tx, v); got != re.MatchString(v) {
					t.Errorf("%q: %v", v, got)
					return
				}
				if tx.capturing && fmt.Sprint(tx.got) != fmt.Sprint(wantCaptures(re, v)) {
					t.Errorf("%q: captured %v", v, tx.got)
					return
				}
			}
		}()
	}
	wg.Wait()
}
