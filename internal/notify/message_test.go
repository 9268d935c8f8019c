package notify

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/events"
)

func TestNewErrors(t *testing.T) {
	getenv := env(map[string]string{"TOKEN": "tok_SECRET123"})
	mail := func(e config.EmailChannel) config.Channel {
		if e.Server == "" {
			e.Server = "smtp.example.net:587"
		}
		if e.From == "" {
			e.From = "bulwark@example.net"
		}
		if e.To == nil {
			e.To = []string{"ops@example.net"}
		}
		return config.Channel{Name: "ops-mail", Email: e}
	}
	tests := []struct {
		name  string
		ch    config.Channel
		field string // the error names the channel and this field
	}{
		{"nothing set", config.Channel{Name: "empty"}, "exactly one of email, webhook and slack"},
		{"two kinds", config.Channel{Name: "two", Webhook: config.WebhookChannel{URL: "https://h.example.net"}, Slack: config.SlackChannel{URL: config.EnvSecret("TOKEN")}}, "exactly one"},
		{"email server", mail(config.EmailChannel{Server: "smtp.example.net"}), "email.server"},
		{"email port", mail(config.EmailChannel{Server: "smtp.example.net:0"}), "email.server"},
		{"email tls", mail(config.EmailChannel{TLS: "ssl"}), "email.tls"},
		{"email auth in clear", mail(config.EmailChannel{TLS: "none", Username: "u", Password: config.EnvSecret("TOKEN")}), "email.username"},
		{"email password unset", mail(config.EmailChannel{Username: "u", Password: config.EnvSecret("NOPE")}), "email.password"},
		{"email password missing", mail(config.EmailChannel{Username: "u"}), "email.password"},
		{"email from", mail(config.EmailChannel{From: "not an address"}), "email.from"},
		{"email to", mail(config.EmailChannel{To: []string{"ops@example.net", "nope"}}), "email.to[1]"},
		{"email no recipient", mail(config.EmailChannel{To: []string{}}), "email.to"},
		{"webhook url", config.Channel{Name: "hook", Webhook: config.WebhookChannel{URL: "ftp://h.example.net/?token=tok_SECRET123"}}, "webhook.url"},
		{"webhook secret", config.Channel{Name: "hook", Webhook: config.WebhookChannel{URL: "https://h.example.net", Secret: config.FileSecret("/nonexistent/secret")}}, "webhook.secret"},
		{"webhook header", config.Channel{Name: "hook", Webhook: config.WebhookChannel{URL: "https://h.example.net", Headers: []string{"X-Ok: 1", "no colon"}}}, "webhook.headers[1]"},
		{"webhook header value", config.Channel{Name: "hook", Webhook: config.WebhookChannel{URL: "https://h.example.net", Headers: []string{"X-Bad: a\x00b"}}}, "webhook.headers[0]"},
		{"webhook reserved header", config.Channel{Name: "hook", Webhook: config.WebhookChannel{URL: "https://h.example.net", Headers: []string{"x-bulwark-signature: sha256=00"}}}, "webhook.headers[0]: X-Bulwark-Signature is set by Bulwark"},
		{"webhook content type", config.Channel{Name: "hook", Webhook: config.WebhookChannel{URL: "https://h.example.net", Headers: []string{"Content-Type: text/plain"}}}, "webhook.headers[0]"},
		{"slack unset env", config.Channel{Name: "chat", Slack: config.SlackChannel{URL: config.EnvSecret("NOPE")}}, "slack.url"},
		{"slack not a url", config.Channel{Name: "chat", Slack: config.SlackChannel{URL: config.EnvSecret("TOKEN")}}, "slack.url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.ch, getenv, noFiles)
			if err == nil {
				t.Fatalf("New = %T, want an error", s)
			}
			msg := err.Error()
			if !strings.Contains(msg, `channel "`+tt.ch.Name+`"`) || !strings.Contains(msg, tt.field) {
				t.Errorf("error %q should name channel %q and %q", msg, tt.ch.Name, tt.field)
			}
			if strings.Contains(msg, "tok_SECRET123") {
				t.Errorf("error %q reveals a secret", msg)
			}
		})
	}
}

func TestChannels(t *testing.T) {
	chs, err := Channels([]config.Channel{
		{Name: "hook", Webhook: config.WebhookChannel{URL: "https://h.example.net/x"}},
		{Name: "chat", Slack: config.SlackChannel{URL: config.LiteralSecret("https://hooks.slack.com/services/T/B/X")}},
		{Name: "mail", Email: config.EmailChannel{Server: "smtp.example.net:465", TLS: "tls", From: "a@example.net", To: []string{"b@example.net"}}},
	}, env(nil), noFiles)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, c := range chs {
		kinds = append(kinds, c.Name+"="+c.Kind)
	}
	if got, want := strings.Join(kinds, " "), "hook=webhook chat=slack mail=email"; got != want {
		t.Fatalf("channels %s, want %s", got, want)
	}
	_, err = Channels([]config.Channel{{Name: "a"}, {Name: "b", Webhook: config.WebhookChannel{URL: "x"}}}, env(nil), noFiles)
	if err == nil || !strings.Contains(err.Error(), `"a"`) || !strings.Contains(err.Error(), `"b"`) {
		t.Fatalf("Channels = %v, want both channels named", err)
	}
}

func TestNormalize(t *testing.T) {
	long := strings.Repeat("é", MaxTitleBytes)
	m := Message{
		Title:  "line one\nline two\x00" + long,
		Text:   "a\r\nb\x1b[0m\tc\x00\n\n",
		Labels: map[string]string{},
		Links:  []Link{{URL: "javascript:alert(1)"}, {URL: "data:text/html,x"}, {Title: "ok", URL: "https://example.net/a b"}},
	}
	for i := range MaxLabels + 10 {
		m.Labels[strings.Repeat("k", i+1)] = "v"
	}
	got := m.normalize(testTime)
	if len(got.Title) > MaxTitleBytes || strings.ContainsAny(got.Title, "\n\x00") || !strings.HasPrefix(got.Title, "line one line two") || !strings.HasSuffix(got.Title, "…") {
		t.Errorf("title %q", got.Title)
	}
	if got.Text != "a\nb[0m\tc" {
		t.Errorf("text %q", got.Text)
	}
	if len(got.Labels) != MaxLabels {
		t.Errorf("%d labels, want %d", len(got.Labels), MaxLabels)
	}
	if len(got.Links) != 1 || got.Links[0].URL != "https://example.net/a%20b" {
		t.Errorf("links %+v, want only the web link, escaped", got.Links)
	}
	if got.Severity != events.SeverityInfo || got.State != StateFiring || !got.Time.Equal(testTime) {
		t.Errorf("defaults: %s %s %s", got.Severity, got.State, got.Time)
	}
	// Normalizing twice changes nothing: every attempt sends the same.
	again := got.normalize(testTime.Add(time.Hour))
	if again.Title != got.Title || again.Text != got.Text || !again.Time.Equal(got.Time) || len(again.Labels) != len(got.Labels) {
		t.Errorf("normalize is not idempotent")
	}
}

func TestRedactor(t *testing.T) {
	r := newRedactor("ab", "s3cr3t-value", "s3cr3t-value-longer", "with space/+")
	got := r.String("x s3cr3t-value-longer y s3cr3t-value z ab with+space%2F%2B with%20space%2F+")
	want := "x REDACTED y REDACTED z ab REDACTED REDACTED"
	if got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
	err := r.Error(permanent(errors.New("failed: s3cr3t-value")))
	if err.Error() != "failed: REDACTED" || !errors.Is(err, ErrPermanent) {
		t.Fatalf("Error = %v (permanent %v)", err, errors.Is(err, ErrPermanent))
	}
	if errors.Unwrap(err) != nil {
		t.Fatal("a redacted error unwraps to the unredacted one")
	}
}
