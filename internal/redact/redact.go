// Package redact shows URLs without the credentials they may carry, for
// messages, logs and events: notification channels (internal/notify),
// checks and the watchdog (internal/monitor) use the one function.
package redact

import (
	"maps"
	"net/url"
	"slices"
	"strings"
)

// Mark replaces a secret wherever it would be shown.
const Mark = "REDACTED"

// URL shows u without its credentials: user information and query
// values are REDACTED, the fragment dropped, and with hidePath (a Slack
// URL, whose path is the token) the path too.
func URL(u *url.URL, hidePath bool) string {
	if u == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString(u.Scheme)
	b.WriteString("://")
	if u.User != nil {
		b.WriteString(Mark + "@")
	}
	b.WriteString(u.Host)
	if hidePath {
		if u.Path != "" && u.Path != "/" {
			b.WriteString("/" + Mark)
		}
		if u.RawQuery != "" {
			b.WriteString("?" + Mark)
		}
		return b.String()
	}
	b.WriteString(u.EscapedPath())
	if u.RawQuery != "" {
		q := u.Query()
		for i, k := range slices.Sorted(maps.Keys(q)) {
			if i == 0 {
				b.WriteByte('?')
			} else {
				b.WriteByte('&')
			}
			b.WriteString(url.QueryEscape(k) + "=" + Mark)
		}
	}
	return b.String()
}

// String is URL for a URL in text form; one that does not parse is not
// shown at all.
func String(raw string, hidePath bool) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(an unparsable URL)"
	}
	return URL(u, hidePath)
}
