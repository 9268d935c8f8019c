package console

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// The notice cookie comes back from the browser: any value is read
// without panicking, and only a well-formed one becomes a notice.
func FuzzNotice(f *testing.F) {
	f.Add("ok:SGVsbG8")
	f.Add("error:")
	f.Add("::::")
	f.Add("ok:%%%")
	f.Fuzz(func(t *testing.T, v string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.AddCookie(&http.Cookie{Name: noticeCookie, Value: v})
		n := takeNotice(httptest.NewRecorder(), r)
		if n != nil && len(n.Text) > 4096 {
			t.Fatalf("notice of %d bytes from a cookie", len(n.Text))
		}
	})
}

// A notice survives the round trip through its cookie, long ones cut.
func TestNoticeRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		err  bool
		text string
	}{{false, "Banned 192.0.2.1/32."}, {true, "no grant allows write on access: <script>"}} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/", nil)
		setNotice(w, r, tc.err, tc.text)
		r2 := httptest.NewRequest("GET", "/", nil)
		for _, c := range w.Result().Cookies() {
			r2.AddCookie(c)
		}
		n := takeNotice(httptest.NewRecorder(), r2)
		if n == nil || n.Error != tc.err || n.Text != tc.text {
			t.Errorf("round trip of %+v: %+v", tc, n)
		}
	}
}

// Local paths only: no scheme, no other host.
func TestLocalPath(t *testing.T) {
	for p, want := range map[string]bool{"/": true, "/backups/web?x=1": true, "//evil": false, "/\\evil": false,
		"https://evil": false, "": false, "evil": false, "/\t/evil": false, "/\n/evil": false, "/\r\n//evil": false,
		"/a\\b": false, "/\x7f/evil": false, "/%2F%2Fevil": false, "/x//y": true, "/?next=//evil": true} {
		if localPath(p) != want {
			t.Errorf("localPath(%q) = %v", p, !want)
		}
	}
}
