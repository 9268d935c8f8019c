package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/redact"
)

// PayloadVersion is the version of the webhook document; it changes only
// when a field changes meaning or disappears (new fields may be added to
// version 1, and receivers should ignore fields they do not know).
const PayloadVersion = 1

// PayloadType is the type of every notification document.
const PayloadType = "notification"

// Payload is the JSON document a webhook channel posts, version 1. Every
// field is always present (empty strings, an empty object or list), and
// the encoding is stable: fields in this order, labels sorted by key.
//
//	{
//	  "version": 1,
//	  "type": "notification",
//	  "state": "firing",             // firing, resolved, acknowledged, test, heartbeat
//	  "severity": "critical",        // critical, error, warning, notice, info
//	  "title": "Disk almost full on web1",
//	  "text": "filesystem_used_percent{mountpoint=\"/\"} is 93.2 > 90",
//	  "alert": "disk-full/web1:/",   // the alert instance
//	  "rule": "disk-full",
//	  "check": "",
//	  "labels": {"mountpoint": "/"},
//	  "time": "2026-11-21T12:00:00Z", // RFC 3339, UTC, whole seconds
//	  "host": "web1",                // the Bulwark host that sent it
//	  "links": [{"title": "Console", "url": "https://..."}]
//	}
type Payload struct {
	Version  int               `json:"version"`
	Type     string            `json:"type"`
	State    State             `json:"state"`
	Severity events.Severity   `json:"severity"`
	Title    string            `json:"title"`
	Text     string            `json:"text"`
	Alert    string            `json:"alert"`
	Rule     string            `json:"rule"`
	Check    string            `json:"check"`
	Labels   map[string]string `json:"labels"`
	Time     time.Time         `json:"time"`
	Host     string            `json:"host"`
	Links    []Link            `json:"links"`
}

// payloadOf returns the webhook document of m, normalized.
func payloadOf(m Message) Payload {
	return Payload{
		Version: PayloadVersion, Type: PayloadType,
		State: m.State, Severity: m.Severity, Title: m.Title, Text: m.Text,
		Alert: m.Alert, Rule: m.Rule, Check: m.Check, Labels: m.Labels,
		Time: m.Time, Host: m.Host, Links: m.Links,
	}
}

// reservedHeaders are set by the sender; a configured header may not
// replace them (a forged signature header, a wrong content type).
var reservedHeaders = []string{
	"Content-Type", "Content-Length", "Content-Encoding", "Transfer-Encoding", "Connection",
	"Host", "User-Agent", TimestampHeader, SignatureHeader,
}

// sensitiveHeader reports whether a configured header's value is likely a
// credential, to be scrubbed from errors.
func sensitiveHeader(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"auth", "token", "key", "secret", "password", "cookie", "signature", "session"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// webhook posts signed JSON.
type webhook struct {
	poster
	secret  []byte // nil: requests are not signed
	headers http.Header
	now     func() time.Time
}

var _ Sender = (*webhook)(nil)

func newWebhook(c config.WebhookChannel, getenv func(string) string, readFile func(string) ([]byte, error)) (*webhook, error) {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The URL may hold a token: say what is wrong without quoting it.
		return nil, fmt.Errorf("webhook.url: not an http:// or https:// URL with a host")
	}
	u.Fragment, u.RawFragment = "", ""
	w := &webhook{headers: http.Header{}, now: time.Now}
	secrets := urlSecrets(u, false)
	if c.Secret.IsSet() {
		v, err := resolveSecret("webhook.secret", c.Secret, getenv, readFile)
		if err != nil {
			return nil, err
		}
		w.secret = []byte(v)
		secrets = append(secrets, v)
	}
	for i, line := range c.Headers {
		name, value, ok := strings.Cut(line, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		field := fmt.Sprintf("webhook.headers[%d]", i)
		switch {
		case !ok || !httpguts.ValidHeaderFieldName(name):
			return nil, fmt.Errorf("%s: not a header line \"Name: value\"", field)
		case !httpguts.ValidHeaderFieldValue(value):
			return nil, fmt.Errorf("%s: the value of %s holds characters a header cannot carry", field, name)
		}
		for _, r := range reservedHeaders {
			if strings.EqualFold(name, r) {
				return nil, fmt.Errorf("%s: %s is set by Bulwark; remove it", field, http.CanonicalHeaderKey(name))
			}
		}
		w.headers.Add(name, value)
		if sensitiveHeader(name) {
			secrets = append(secrets, value)
		}
	}
	w.poster = poster{client: newHTTPClient(), url: u.String(), shown: redact.URL(u, false), red: newRedactor(secrets...)}
	return w, nil
}

// Send posts m as a Payload, signed when the channel has a secret.
func (w *webhook) Send(ctx context.Context, m Message) error {
	now := w.now()
	body, err := json.Marshal(payloadOf(m.normalize(now)))
	if err != nil {
		return permanent(fmt.Errorf("encode the webhook payload: %w", err))
	}
	h := w.headers.Clone()
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", userAgent)
	ts := strconv.FormatInt(now.Unix(), 10)
	h.Set(TimestampHeader, ts)
	if w.secret != nil {
		h.Set(SignatureHeader, Sign(w.secret, ts, body))
	}
	return w.post(ctx, body, h)
}
