package notify

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/events"
)

// State is what a notification says about its alert.
type State string

// The states of a notification.
const (
	StateFiring       State = "firing"
	StateResolved     State = "resolved"
	StateAcknowledged State = "acknowledged"
	StateTest         State = "test"
	StateHeartbeat    State = "heartbeat"
)

// Valid reports whether s is one of the states above.
func (s State) Valid() bool {
	switch s {
	case StateFiring, StateResolved, StateAcknowledged, StateTest, StateHeartbeat:
		return true
	}
	return false
}

// Bounds applied to a Message before it is sent: a notification is read by
// people, and an unbounded check output must not make it undeliverable
// (Slack refuses large payloads, SMTP servers large lines).
const (
	MaxTitleBytes = 256
	MaxTextBytes  = 16 << 10
	MaxLabels     = 64
	MaxLinks      = 16
	// maxFieldBytes bounds the short fields (alert, rule, check, host, a
	// label's key or value, a link's title).
	maxFieldBytes = 256
	maxURLBytes   = 2048
)

// Message is one notification.
type Message struct {
	// Title is the one-line summary (the email subject after the prefix).
	Title string
	// Text is the body, plain text, several lines allowed.
	Text string
	// Severity is critical, error, warning, notice or info (default info).
	Severity events.Severity
	// State is firing, resolved, acknowledged, test or heartbeat (default
	// firing).
	State State
	// Alert identifies the alert instance, e.g. "disk-full/web1:/".
	Alert string
	// Rule and Check name the alert rule and the check it watches, when
	// there are.
	Rule  string
	Check string
	// Labels are the alert's labels (series labels, tags).
	Labels map[string]string
	// Time is when the alert changed state (default: when sent).
	Time time.Time
	// Host is the Bulwark host that sends it (the Notifier fills it in).
	Host string
	// Links point to more: the console, a runbook.
	Links []Link
}

// Link is a titled URL in a Message.
type Link struct {
	Title string `json:"title"`
	URL   string `json:"url"`
}

// normalize returns m with its defaults filled in and every field within
// the bounds above: one-line short fields, valid UTF-8, the text clipped.
func (m Message) normalize(now time.Time) Message {
	if m.Severity == "" || !m.Severity.Valid() {
		m.Severity = events.SeverityInfo
	}
	if m.State == "" || !m.State.Valid() {
		m.State = StateFiring
	}
	if m.Time.IsZero() {
		m.Time = now
	}
	m.Time = m.Time.UTC().Truncate(time.Second)
	m.Title = clip(events.OneLine(m.Title), MaxTitleBytes)
	if m.Title == "" {
		m.Title = "(no title)"
	}
	m.Text = clip(cleanText(m.Text), MaxTextBytes)
	m.Alert = clip(events.OneLine(m.Alert), maxFieldBytes)
	m.Rule = clip(events.OneLine(m.Rule), maxFieldBytes)
	m.Check = clip(events.OneLine(m.Check), maxFieldBytes)
	m.Host = clip(events.OneLine(m.Host), maxFieldBytes)
	labels := make(map[string]string, min(len(m.Labels), MaxLabels))
	for _, k := range slices.Sorted(maps.Keys(m.Labels)) {
		if len(labels) == MaxLabels {
			break
		}
		labels[clip(events.OneLine(k), maxFieldBytes)] = clip(events.OneLine(m.Labels[k]), maxFieldBytes)
	}
	m.Labels = labels
	links := make([]Link, 0, min(len(m.Links), MaxLinks))
	for _, l := range m.Links {
		if len(links) == MaxLinks {
			break
		}
		// Only web links (no javascript: or data: in a chat client), in
		// their escaped form.
		u, err := url.Parse(strings.TrimSpace(l.URL))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(u.String()) > maxURLBytes {
			continue
		}
		links = append(links, Link{Title: clip(events.OneLine(l.Title), maxFieldBytes), URL: urlEscaper.Replace(u.String())})
	}
	m.Links = links
	return m
}

// urlEscaper percent-encodes what url.URL.String leaves in a query but
// chat markup reads as syntax (Slack's <url|title>, Markdown).
var urlEscaper = strings.NewReplacer("<", "%3C", ">", "%3E", "|", "%7C", `"`, "%22", "`", "%60", " ", "%20")

// cleanText returns s as valid UTF-8 without control characters other
// than newlines and tabs (a NUL or an escape sequence from a command's
// output has no place in a mail or a chat message), and without trailing
// blank space.
func cleanText(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if r != '\n' && r != '\t' && unicode.IsControl(r) {
			continue
		}
		b.WriteRune(r)
	}
	return strings.TrimRightFunc(b.String(), unicode.IsSpace)
}

// clip cuts s to at most n bytes on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// Sender delivers a Message to one destination.
type Sender interface {
	// Send makes one attempt to deliver m and reports whether the
	// destination accepted it. It returns when ctx is done at the latest,
	// never retries, and returns errors free of the channel's credentials.
	// An error a retry cannot fix matches ErrPermanent. Send is safe for
	// concurrent use.
	Send(ctx context.Context, m Message) error
}

// ErrPermanent is matched (errors.Is) by a Sender's errors that trying
// again will not fix (a 4xx answer, a refused configuration), so the
// Notifier stops retrying.
var ErrPermanent = errors.New("permanent failure")

type permanentError struct{ err error }

// permanent marks err as one a retry will not fix.
func permanent(err error) error { return permanentError{err} }

func (e permanentError) Error() string        { return e.err.Error() }
func (e permanentError) Unwrap() error        { return e.err }
func (e permanentError) Is(target error) bool { return target == ErrPermanent }

// The kinds of channel.
const (
	KindEmail   = "email"
	KindWebhook = "webhook"
	KindSlack   = "slack"
)

// Kind names the kind of ch: email, webhook or slack ("" when none is
// set, or several).
func Kind(ch config.Channel) string {
	var kinds []string
	if ch.Email.Server != "" {
		kinds = append(kinds, KindEmail)
	}
	if ch.Webhook.URL != "" {
		kinds = append(kinds, KindWebhook)
	}
	if ch.Slack.URL.IsSet() {
		kinds = append(kinds, KindSlack)
	}
	if len(kinds) != 1 {
		return ""
	}
	return kinds[0]
}

// New builds the Sender of channel ch, resolving its secrets with getenv
// and readFile (os.Getenv and os.ReadFile in production). Errors name the
// channel and the field, never a secret's value.
func New(ch config.Channel, getenv func(string) string, readFile func(string) ([]byte, error)) (Sender, error) {
	var (
		s   Sender
		err error
	)
	switch Kind(ch) {
	case KindEmail:
		s, err = newEmail(ch.Email, getenv, readFile)
	case KindWebhook:
		s, err = newWebhook(ch.Webhook, getenv, readFile)
	case KindSlack:
		s, err = newSlack(ch.Slack, getenv, readFile)
	default:
		err = errors.New("set exactly one of email, webhook and slack")
	}
	if err != nil {
		return nil, fmt.Errorf("notify: channel %q: %w", ch.Name, err)
	}
	return s, nil
}

// resolveSecret resolves s for field, wrapping the error with the field.
func resolveSecret(field string, s config.Secret, getenv func(string) string, readFile func(string) ([]byte, error)) (string, error) {
	v, err := s.Resolve(getenv, readFile)
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	return v, nil
}
