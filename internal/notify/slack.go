// The Slack format: an incoming webhook accepts {"text": ..., "attachments":
// [...]}, the legacy attachment being the one layout Slack and Mattermost
// both render (Mattermost does not read Slack's blocks). The text is the
// subject line, so that phone notifications say what happened; the
// attachment carries a colour for the state and severity, the title, the
// body and the details as fields. Slack reads &, < and > as control
// characters (<!channel> notifies everyone): they are written as &amp;,
// &lt; and &gt;, which Mattermost's Markdown decodes back.

package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/redact"
)

// slackText is an incoming webhook's request body.
type slackText struct {
	Text        string            `json:"text"`
	Attachments []slackAttachment `json:"attachments"`
}

type slackAttachment struct {
	Fallback  string       `json:"fallback"`
	Color     string       `json:"color"`
	Title     string       `json:"title"`
	TitleLink string       `json:"title_link,omitempty"`
	Text      string       `json:"text"`
	Fields    []slackField `json:"fields"`
	Footer    string       `json:"footer"`
	Ts        int64        `json:"ts"`
}

type slackField struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short"`
}

// Attachment colours: green when resolved, grey when acknowledged, blue
// for tests and heartbeats, and by severity when firing.
var (
	stateColors = map[State]string{
		StateResolved:     "#2eb67d",
		StateAcknowledged: "#9e9e9e",
		StateTest:         "#439fe0",
		StateHeartbeat:    "#439fe0",
	}
	severityColors = map[events.Severity]string{
		events.SeverityCritical: "#a30200",
		events.SeverityError:    "#e01e5a",
		events.SeverityWarning:  "#ecb22e",
		events.SeverityNotice:   "#439fe0",
		events.SeverityInfo:     "#439fe0",
	}
)

var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// slackMessage returns the request body of m (normalized).
func slackMessage(m Message) ([]byte, error) {
	esc := slackEscaper.Replace
	color, ok := stateColors[m.State]
	if !ok {
		color = severityColors[m.Severity]
	}
	var fields []slackField
	add := func(title, value string, short bool) {
		if value != "" {
			fields = append(fields, slackField{Title: title, Value: esc(value), Short: short})
		}
	}
	add("State", string(m.State), true)
	add("Severity", string(m.Severity), true)
	add("Alert", m.Alert, true)
	add("Rule", m.Rule, true)
	add("Check", m.Check, true)
	add("Host", m.Host, true)
	add("Time", m.Time.Format(time.RFC3339), true)
	var labels []string
	for _, k := range slices.Sorted(maps.Keys(m.Labels)) {
		labels = append(labels, k+"="+m.Labels[k])
	}
	add("Labels", strings.Join(labels, "\n"), false)
	text := esc(m.Text)
	a := slackAttachment{
		Fallback: esc(subject(m)),
		Color:    color,
		Title:    esc(m.Title),
		Text:     text,
		Fields:   fields,
		Footer:   "Bulwark",
		Ts:       m.Time.Unix(),
	}
	if len(m.Links) > 0 {
		a.TitleLink = m.Links[0].URL
		var b strings.Builder
		for _, l := range m.Links {
			title := l.Title
			if title == "" {
				title = "Link"
			}
			// Bare URLs: both Slack and Mattermost make them links, while
			// their link syntaxes differ.
			fmt.Fprintf(&b, "\n%s: %s", esc(title), esc(l.URL))
		}
		if a.Text != "" {
			a.Text += "\n"
		}
		a.Text += strings.TrimPrefix(b.String(), "\n")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(slackText{Text: esc(subject(m)), Attachments: []slackAttachment{a}}); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// slack posts to a Slack or Mattermost incoming webhook.
type slack struct {
	poster
	now func() time.Time
}

var _ Sender = (*slack)(nil)

func newSlack(c config.SlackChannel, getenv func(string) string, readFile func(string) ([]byte, error)) (*slack, error) {
	raw, err := resolveSecret("slack.url", c.URL, getenv, readFile)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("slack.url: not an http:// or https:// URL with a host (the value is not shown: it is the webhook's credential)")
	}
	secrets := append(urlSecrets(u, true), raw)
	return &slack{
		poster: poster{client: newHTTPClient(), url: u.String(), shown: redact.URL(u, true), red: newRedactor(secrets...)},
		now:    time.Now,
	}, nil
}

// Send posts m.
func (s *slack) Send(ctx context.Context, m Message) error {
	body, err := slackMessage(m.normalize(s.now()))
	if err != nil {
		return permanent(fmt.Errorf("encode the Slack message: %w", err))
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", userAgent)
	return s.post(ctx, body, h)
}
