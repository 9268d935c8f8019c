package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/events"
)

// request is what a test receiver got.
type request struct {
	header http.Header
	body   []byte
	err    error // VerifySignature's verdict
}

// receiver is a webhook endpoint on 127.0.0.1 that verifies signatures
// with VerifySignature, as a real receiver would, against clock now. It
// answers 401 to a bad signature, and status otherwise.
func receiver(t *testing.T, secret string, now func() time.Time, status func(n int) int) (*httptest.Server, <-chan request) {
	t.Helper()
	got := make(chan request, 16)
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := int(n.Add(1))
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			t.Errorf("receiver: read body: %v", err)
		}
		verr := VerifySignature([]byte(secret), r.Header.Get(TimestampHeader), r.Header.Get(SignatureHeader), body, now(), time.Minute)
		got <- request{header: r.Header.Clone(), body: body, err: verr}
		if verr != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		w.WriteHeader(status(k))
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func always(code int) func(int) int { return func(int) int { return code } }

func webhookChannel(name, url string, headers ...string) config.Channel {
	return config.Channel{Name: name, Webhook: config.WebhookChannel{
		URL: url, Secret: config.EnvSecret("HOOK_SECRET"), Headers: headers,
	}}
}

var hookEnv = env(map[string]string{"HOOK_SECRET": "whsec_test-0123456789"})

// wantSampleBody is the exact webhook document of sampleMessage(): the
// stable, documented encoding (Payload).
const wantSampleBody = `{"version":1,"type":"notification","state":"firing","severity":"critical",` +
	`"title":"Disk almost full on web1",` +
	`"text":"filesystem_used_percent{mountpoint=\"/\"} is 93.2, above 90.\nFree some space or grow the volume.",` +
	`"alert":"disk-full/web1:/","rule":"disk-full","check":"",` +
	`"labels":{"host":"web1","mountpoint":"/"},"time":"2026-11-21T11:58:00Z","host":"web1",` +
	`"links":[{"title":"Console","url":"https://bulwark.example.net/alerts/disk-full"}]}`

func TestWebhookSignedPost(t *testing.T) {
	srv, got := receiver(t, "whsec_test-0123456789", func() time.Time { return testTime.Add(time.Second) }, always(http.StatusNoContent))
	s := mustNew(t, webhookChannel("hook", srv.URL+"/bulwark", "X-Team: ops", "Authorization: Bearer abc-123456"), hookEnv)
	s.(*webhook).now = func() time.Time { return testTime }
	if err := s.Send(context.Background(), sampleMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	r := <-got
	if r.err != nil {
		t.Fatalf("receiver refused the signature: %v", r.err)
	}
	if string(r.body) != wantSampleBody {
		t.Errorf("body:\n got %s\nwant %s", r.body, wantSampleBody)
	}
	for k, want := range map[string]string{
		"Content-Type":  "application/json",
		"User-Agent":    "bulwark",
		TimestampHeader: "1795262400",
		SignatureHeader: Sign([]byte("whsec_test-0123456789"), "1795262400", []byte(wantSampleBody)),
		"X-Team":        "ops",
		"Authorization": "Bearer abc-123456",
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	var p Payload
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatal(err)
	}
	want := Payload{Version: 1, Type: "notification", State: StateFiring, Severity: events.SeverityCritical,
		Title: "Disk almost full on web1", Text: sampleMessage().Text, Alert: "disk-full/web1:/", Rule: "disk-full",
		Labels: map[string]string{"host": "web1", "mountpoint": "/"}, Time: testTime.Add(-2 * time.Minute), Host: "web1",
		Links: []Link{{Title: "Console", URL: "https://bulwark.example.net/alerts/disk-full"}}}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("decoded payload (-want +got):\n%s", diff)
	}
}

func TestWebhookEmptyFieldsPresent(t *testing.T) {
	// Every field is present even when empty: receivers need not guess.
	srv, got := receiver(t, "whsec_test-0123456789", time.Now, always(http.StatusOK))
	s := mustNew(t, webhookChannel("hook", srv.URL), hookEnv)
	if err := s.Send(context.Background(), Message{Title: "x"}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	r := <-got
	var m map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"labels": "{}", "links": "[]", "check": `""`, "state": `"firing"`, "severity": `"info"`} {
		if string(m[k]) != want {
			t.Errorf("%s = %s, want %s", k, m[k], want)
		}
	}
	if len(m) != 13 {
		t.Errorf("payload has %d fields, want 13: %s", len(m), r.body)
	}
}

func TestWebhookWrongSecretRefused(t *testing.T) {
	// The receiver knows another secret: it refuses with 401, which is
	// not worth retrying.
	srv, got := receiver(t, "whsec_other", time.Now, always(http.StatusOK))
	s := mustNew(t, webhookChannel("hook", srv.URL), hookEnv)
	err := s.Send(context.Background(), sampleMessage())
	if err == nil || !strings.Contains(err.Error(), "401") || !errors.Is(err, ErrPermanent) {
		t.Fatalf("Send = %v, want a permanent 401 error", err)
	}
	if r := <-got; !errors.Is(r.err, ErrSignatureMismatch) {
		t.Fatalf("receiver verdict = %v, want ErrSignatureMismatch", r.err)
	}
}

func TestWebhookUnsigned(t *testing.T) {
	got := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Clone() }))
	defer srv.Close()
	s := mustNew(t, config.Channel{Name: "plain", Webhook: config.WebhookChannel{URL: srv.URL}}, hookEnv)
	if err := s.Send(context.Background(), sampleMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	h := <-got
	if h.Get(SignatureHeader) != "" || h.Get(TimestampHeader) == "" {
		t.Fatalf("headers %v: want a timestamp and no signature without a secret", h)
	}
}

func TestWebhookHTTPS(t *testing.T) {
	got := make(chan []byte, 1)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- b
	}))
	defer srv.Close()

	s := mustNew(t, webhookChannel("tls", srv.URL), hookEnv)
	err := s.Send(context.Background(), sampleMessage())
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Send to an untrusted certificate = %v, want a certificate error", err)
	}

	s = mustNew(t, webhookChannel("tls", srv.URL), hookEnv)
	tr := s.(*webhook).client.Transport.(*http.Transport)
	tr.TLSClientConfig.RootCAs = srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	if err := s.Send(context.Background(), sampleMessage()); err != nil {
		t.Fatalf("Send over trusted TLS: %v", err)
	}
	if b := <-got; !strings.Contains(string(b), `"title":"Disk almost full on web1"`) {
		t.Fatalf("body %s", b)
	}
}

func TestWebhookStatuses(t *testing.T) {
	tests := []struct {
		code      int
		body      string
		wantErr   bool
		permanent bool
	}{
		{code: 200}, {code: 201}, {code: 202}, {code: 204},
		{code: 500, body: "internal error", wantErr: true},
		{code: 502, wantErr: true},
		{code: 503, body: "try later", wantErr: true},
		{code: 408, wantErr: true},
		{code: 429, body: "slow down", wantErr: true},
		{code: 400, body: "bad payload", wantErr: true, permanent: true},
		{code: 401, wantErr: true, permanent: true},
		{code: 404, wantErr: true, permanent: true},
		{code: 302, wantErr: true, permanent: true},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.code), func(t *testing.T) {
			var redirected atomic.Bool
			mux := http.NewServeMux()
			mux.HandleFunc("/hook", func(w http.ResponseWriter, r *http.Request) {
				if tt.code == 302 {
					http.Redirect(w, r, "/elsewhere", http.StatusFound)
					return
				}
				w.WriteHeader(tt.code)
				io.WriteString(w, tt.body)
			})
			mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) { redirected.Store(true) })
			srv := httptest.NewServer(mux)
			defer srv.Close()
			err := mustNew(t, webhookChannel("hook", srv.URL+"/hook"), hookEnv).Send(context.Background(), sampleMessage())
			if (err != nil) != tt.wantErr {
				t.Fatalf("Send = %v, want error %v", err, tt.wantErr)
			}
			if err == nil {
				return
			}
			if !strings.Contains(err.Error(), http.StatusText(tt.code)) || !strings.Contains(err.Error(), tt.body) {
				t.Errorf("error %q should give the status and the answer %q", err, tt.body)
			}
			if got := errors.Is(err, ErrPermanent); got != tt.permanent {
				t.Errorf("errors.Is(err, ErrPermanent) = %v, want %v (%v)", got, tt.permanent, err)
			}
			if redirected.Load() {
				t.Error("the redirect was followed")
			}
		})
	}
}

func TestWebhookHugeAnswerBounded(t *testing.T) {
	// A server answering an endless error page: the answer is read only
	// up to the cap, and the error quotes a bounded snippet.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		chunk := []byte(strings.Repeat("overflow ", 1024))
		for range 1024 { // 9 MiB
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	err := mustNew(t, webhookChannel("hook", srv.URL), hookEnv).Send(context.Background(), sampleMessage())
	if err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("Send = %v, want a 500 error", err)
	}
	if n := len(err.Error()); n > 512 {
		t.Fatalf("error is %d bytes long, want a bounded snippet", n)
	}
}

func TestWebhookRedactsSecrets(t *testing.T) {
	// The receiver echoes everything it got, credentials included, in
	// its error answer: none of it may reach the error.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, r.URL.String()+" "+r.Header.Get("X-Api-Key")+" "+r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	secrets := []string{"tok_SECRET123", "hunter2pass", "key_SECRET456", "whsec_test-0123456789"}
	u := strings.Replace(srv.URL, "http://", "http://alice:hunter2pass@", 1) + "/hook?token=tok_SECRET123&v=2"
	s := mustNew(t, webhookChannel("hook", u, "X-Api-Key: key_SECRET456"), hookEnv)
	err := s.Send(context.Background(), sampleMessage())
	if err == nil {
		t.Fatal("Send succeeded against a 502")
	}
	for _, sec := range secrets {
		if strings.Contains(err.Error(), sec) {
			t.Errorf("error %q reveals %q", err, sec)
		}
	}
	if !strings.Contains(err.Error(), "token=REDACTED") || !strings.Contains(err.Error(), "/hook") {
		t.Errorf("error %q should show the redacted URL", err)
	}

	// A connection error, where net/http quotes the whole URL.
	l, lerr := net.Listen("tcp", "127.0.0.1:0")
	if lerr != nil {
		t.Fatal(lerr)
	}
	addr := l.Addr().String()
	l.Close()
	s = mustNew(t, webhookChannel("hook", "http://"+addr+"/hook?token=tok_SECRET123"), hookEnv)
	err = s.Send(context.Background(), sampleMessage())
	if err == nil || strings.Contains(err.Error(), "tok_SECRET123") || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Send to a closed port = %v, want a redacted connection error", err)
	}
}

func TestWebhookContextDeadline(t *testing.T) {
	// A receiver that never answers: Send returns when ctx expires.
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // so that the server notices the client leaving
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := mustNew(t, webhookChannel("hook", srv.URL), hookEnv).Send(ctx, sampleMessage())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send = %v, want context.DeadlineExceeded", err)
	}
}
