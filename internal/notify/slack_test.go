package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/events"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got; go test -update rewrites it):\n%s", path, diff)
	}
}

func TestSlackGolden(t *testing.T) {
	resolved := sampleMessage()
	resolved.State = StateResolved
	resolved.Title = "Disk usage back to normal on web1"
	resolved.Text = "filesystem_used_percent{mountpoint=\"/\"} is 71.0."

	hostile := Message{
		// Check output is attacker-controlled text: it must not ping
		// everyone, nor forge links, nor add lines to the title.
		Title:    "Body <!channel> & <https://evil.example|click>\nsecond line",
		Text:     "got <!here> & \x1b[31mred\x1b[0m\x00",
		Severity: events.SeverityWarning,
		Check:    "shop-http",
		Time:     testTime,
		Links:    []Link{{Title: "Bad", URL: "javascript:alert(1)"}, {URL: "https://status.example.net/?a=1&b=<2>"}},
	}
	tests := []struct {
		name string
		m    Message
	}{
		{"firing", sampleMessage()},
		{"resolved", resolved},
		{"test", TestMessage("ops-chat", "web1")},
		{"escaped", hostile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, err := slackMessage(tt.m.normalize(testTime))
			if err != nil {
				t.Fatal(err)
			}
			var indented bytes.Buffer
			if err := json.Indent(&indented, body, "", "  "); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, body)
			}
			indented.WriteByte('\n')
			golden(t, "slack_"+tt.name+".golden", indented.Bytes())
		})
	}
}

func TestSlackPost(t *testing.T) {
	type req struct {
		path, contentType string
		body              []byte
	}
	got := make(chan req, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- req{r.URL.Path, r.Header.Get("Content-Type"), b}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	ch := config.Channel{Name: "chat", Slack: config.SlackChannel{URL: config.EnvSecret("SLACK_URL")}}
	s := mustNew(t, ch, env(map[string]string{"SLACK_URL": srv.URL + "/services/T000/B000/XXXXSECRETXXXX"}))
	s.(*slack).now = func() time.Time { return testTime }
	if err := s.Send(context.Background(), sampleMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	r := <-got
	want, err := slackMessage(sampleMessage().normalize(testTime))
	if err != nil {
		t.Fatal(err)
	}
	if r.path != "/services/T000/B000/XXXXSECRETXXXX" || r.contentType != "application/json" || !bytes.Equal(r.body, want) {
		t.Fatalf("got %s %s %s, want the Slack message", r.path, r.contentType, r.body)
	}
	var decoded struct {
		Text        string `json:"text"`
		Attachments []struct {
			Color  string `json:"color"`
			Fields []struct{ Title, Value string }
		} `json:"attachments"`
	}
	if err := json.Unmarshal(r.body, &decoded); err != nil {
		t.Fatal(err)
	}
	if decoded.Text != "[Bulwark] CRITICAL Disk almost full on web1" || len(decoded.Attachments) != 1 || decoded.Attachments[0].Color == "" {
		t.Fatalf("decoded %+v", decoded)
	}
}

func TestSlackRedactsURL(t *testing.T) {
	// The Slack URL is the credential: an error shows its host only.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "no_team for "+r.URL.Path)
	}))
	defer srv.Close()
	ch := config.Channel{Name: "chat", Slack: config.SlackChannel{URL: config.LiteralSecret(srv.URL + "/services/T000/B000/XXXXSECRETXXXX")}}
	err := mustNew(t, ch, nil).Send(context.Background(), sampleMessage())
	if err == nil || !errors.Is(err, ErrPermanent) {
		t.Fatalf("Send = %v, want a permanent 404", err)
	}
	for _, leak := range []string{"XXXXSECRETXXXX", "/services/T000"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("error %q reveals %q", err, leak)
		}
	}
	if !strings.Contains(err.Error(), strings.TrimPrefix(srv.URL, "http://")) || !strings.Contains(err.Error(), "no_team") {
		t.Errorf("error %q should name the host and quote the answer", err)
	}
}
