package guard

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/detect"
	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
)

// loginUpstream answers POST /login (a form) and /api/login (JSON) with
// 302 for the password "right" and 401 otherwise, and reports the body
// it received so a test can check the guard passed it on intact.
func loginUpstream(t *testing.T) *echo {
	t.Helper()
	e := newEcho(t, "login")
	mux := e.srv.Config.Handler.(*http.ServeMux)
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseMultipartForm(1 << 20); err != nil && err != http.ErrNotMultipart {
			http.Error(w, err.Error(), 400)
			return
		}
		w.Header().Set("X-Seen-User", r.PostFormValue("user"))
		if r.PostFormValue("password") == "right" {
			w.Header().Set("Location", "/dashboard")
			w.WriteHeader(http.StatusFound)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
	})
	mux.HandleFunc("/api/login", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Seen-Body", string(b))
		if strings.Contains(string(b), `"right"`) {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
	})
	return e
}

func postForm(t *testing.T, c *http.Client, user, password string) *http.Response {
	t.Helper()
	noRedirect := *c
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noRedirect.PostForm("http://shop.example/login", url.Values{"user": {user}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestLoginAttemptLimits: tries are counted per account whichever address
// they come from (a password-spraying botnet), a new or unknown account
// gets the stricter limit, an account that first logged in successfully
// more than new_account_age ago gets the normal one, names are compared
// case-insensitively, the form reaches the upstream intact, JSON and
// multipart bodies and headers name accounts too, an oversized login body
// is refused, and an allow-listed source is not limited. First logins are
// kept in the real store (detect.Accounts on SQLite).
func TestLoginAttemptLimits(t *testing.T) {
	up := loginUpstream(t)
	cfg := guardConfig(up.srv.URL)
	cfg.Allow = []string{"127.0.0.9"}
	cfg.Sites[0].Logins = []config.GuardLogin{
		{Path: "/login", Account: config.GuardAccountField{Form: "user"}, Tries: 5, NewAccountTries: 2,
			Window: config.Duration(15 * time.Minute), NewAccountAge: config.Duration(7 * 24 * time.Hour)},
		{Path: "/api/login", Account: config.GuardAccountField{JSON: "auth.user"}, Tries: 5, NewAccountTries: 1},
		{Path: "/h/login", Methods: []string{"GET"}, Account: config.GuardAccountField{Header: "X-User"}, Tries: 3, NewAccountTries: 1},
	}
	clk := &clock{t: time.Unix(2e9, 0)}
	db := storetest.SQLite(t, detect.Migrations)
	accounts := detect.OpenAccounts(db, nil)
	g, addr, _ := startGuard(t, cfg, Options{Now: clk.Now, Accounts: accounts})
	bots := []*http.Client{client(t, 2, addr), client(t, 3, addr), client(t, 4, addr)}

	// alice is unknown: two tries from two addresses, the third refused
	// from a third address.
	for i := range 2 {
		if resp := postForm(t, bots[i], "alice", "guess"); resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("X-Seen-User") != "alice" {
			t.Fatalf("try %d at alice: %d, upstream saw user %q", i+1, resp.StatusCode, resp.Header.Get("X-Seen-User"))
		}
	}
	resp := postForm(t, bots[2], "ALICE ", "guess")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third try at a new account: %d (Retry-After %q), want 429", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// The allow list bypasses the limit.
	if resp := postForm(t, client(t, 9, addr), "alice", "guess"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("allow-listed source: %d, want 401 from the upstream", resp.StatusCode)
	}

	// bob logs in; a week later he is established: five tries.
	if resp := postForm(t, bots[0], "bob", "right"); resp.StatusCode != http.StatusFound {
		t.Fatalf("bob's login: %d", resp.StatusCode)
	}
	if _, ok := accounts.FirstSeen("shop.example", "bob"); !ok {
		t.Fatal("bob's first login was not recorded")
	}
	if _, ok := accounts.FirstSeen("shop.example", "alice"); ok {
		t.Fatal("a failed login was recorded as seen")
	}
	clk.Advance(8 * 24 * time.Hour)
	n := 0
	for n = 1; n <= 10; n++ {
		if resp := postForm(t, bots[n%3], "bob", "guess"); resp.StatusCode == http.StatusTooManyRequests {
			break
		}
	}
	if n != 6 {
		t.Errorf("an established account was refused at try %d, want 6", n)
	}
	// A new process reads bob's age from the store.
	if first, ok := detect.OpenAccounts(db, nil).FirstSeen("shop.example", "bob"); !ok || !first.Equal(time.Unix(2e9, 0)) {
		t.Errorf("stored first login of bob: %v %v", first, ok)
	}

	// JSON: the dotted field names the account; the body reaches the upstream.
	body := `{"auth":{"user":"carol","password":"x"}}`
	for i, want := range []int{http.StatusUnauthorized, http.StatusTooManyRequests} {
		resp, err := bots[i].Post("http://shop.example/api/login", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want || i == 0 && resp.Header.Get("X-Seen-Body") != body {
			t.Errorf("JSON try %d: %d (upstream saw %q), want %d", i+1, resp.StatusCode, resp.Header.Get("X-Seen-Body"), want)
		}
	}

	// Multipart forms.
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	mw.WriteField("user", "dave")
	mw.WriteField("password", "x")
	mw.Close()
	for i, want := range []int{401, 401, 429} {
		resp, err := bots[i].Post("http://shop.example/login", mw.FormDataContentType(), bytes.NewReader(mp.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("multipart try %d: %d, want %d", i+1, resp.StatusCode, want)
		}
	}

	// A header, on GET.
	for i, want := range []int{200, 429} {
		r, _ := http.NewRequest("GET", "http://shop.example/h/login", nil)
		r.Header.Set("X-User", "erin")
		resp, err := bots[i].Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("header try %d: %d, want %d", i+1, resp.StatusCode, want)
		}
	}

	// An oversized login body is refused before the upstream.
	big := "user=frank&password=" + strings.Repeat("x", 70<<10)
	resp, err := bots[0].Post("http://shop.example/login", "application/x-www-form-urlencoded", strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a 70 KiB login body: %d, want 413", resp.StatusCode)
	}
	_ = g
}

// TestBruteForceBanned runs the guard with the detection engine on the
// real store: a client guessing passwords gets 401s from the upstream,
// the built-in http-auth-bruteforce scenario (capacity 10) overflows on
// the eleventh, the source is banned (an audited event), and its next
// connection is refused while another source still gets through.
func TestBruteForceBanned(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db := storetest.SQLite(t, events.Migrations, detect.Migrations)
	bus := events.NewBus(db, events.Options{})
	bans, err := detect.Open(ctx, db, detect.Options{Bus: bus})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := detect.NewEngine(config.Default().Detect, bans, detect.EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	go eng.Run(ctx)
	up := loginUpstream(t)
	_, addr, _ := startGuard(t, guardConfig(up.srv.URL), Options{Bans: bans, Signals: func(s detect.Signal) { eng.Observe(s) }})

	attacker := client(t, 11, addr)
	tries := 0
	for tries < 40 {
		resp, err := attacker.PostForm("http://shop.example/login", url.Values{"user": {"admin"}, "password": {fmt.Sprint("guess", tries)}})
		if err != nil {
			break // reset at accept: banned
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusForbidden {
			break
		}
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("try %d: %d", tries+1, resp.StatusCode)
		}
		tries++
		if tries > 11 {
			time.Sleep(50 * time.Millisecond) // the engine works asynchronously
		}
	}
	ban, ok := bans.Match(netip.MustParseAddr("127.0.0.11"))
	if !ok {
		t.Fatalf("no ban after %d failed logins", tries)
	}
	if tries < 11 || ban.Scenario != "http-auth-bruteforce" || ban.Net.String() != "127.0.0.11/32" {
		t.Errorf("banned after %d tries by %+v; want at least 11 tries, scenario http-auth-bruteforce", tries, ban)
	}
	if !refusedAtAccept(t, 11, addr) {
		t.Error("the banned source still connects")
	}
	if resp := postForm(t, client(t, 12, addr), "admin", "right"); resp.StatusCode != http.StatusFound {
		t.Errorf("another source: %d, want 302", resp.StatusCode)
	}
	evs, err := bus.Query(ctx, events.Filter{Types: []events.Type{events.TypeBanAdded}})
	if err != nil || len(evs) != 1 {
		t.Errorf("ban.added events: %d, %v", len(evs), err)
	}
}
