package notify

import (
	"cmp"
	"errors"
	"net/url"
	"slices"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/redact"
)

// redacted replaces a secret wherever it would be shown.
const redacted = redact.Mark

// minSecretBytes is the shortest value scrubbed from error texts: shorter
// query values ("v=2") are not credentials, and replacing them would
// mangle every message.
const minSecretBytes = 4

// redactor scrubs one channel's secret values from text: the last line of
// defence behind never putting them in errors in the first place (a server
// may echo a token back, a library may quote a URL).
type redactor struct{ r *strings.Replacer }

// newRedactor returns a redactor of secrets, in their raw and URL-escaped
// forms.
func newRedactor(secrets ...string) redactor {
	var all []string
	for _, s := range secrets {
		if len(s) < minSecretBytes {
			continue
		}
		all = append(all, s, url.QueryEscape(s), url.PathEscape(s))
	}
	// Longest first: a secret containing another is replaced whole.
	slices.SortFunc(all, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	all = slices.Compact(all)
	if len(all) == 0 {
		return redactor{}
	}
	pairs := make([]string, 0, 2*len(all))
	for _, s := range all {
		pairs = append(pairs, s, redacted)
	}
	return redactor{strings.NewReplacer(pairs...)}
}

// String returns s without the secrets.
func (r redactor) String(s string) string {
	if r.r == nil {
		return s
	}
	return r.r.Replace(s)
}

// Error returns err with the secrets scrubbed from its text. The result
// still matches (errors.Is) what err matched, ErrPermanent and
// context.DeadlineExceeded among them, but does not unwrap to err, whose
// text may hold a secret.
func (r redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	return &redactedError{msg: r.String(err.Error()), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string        { return e.msg }
func (e *redactedError) Is(target error) bool { return errors.Is(e.err, target) }

// urlSecrets lists the parts of u that may be credentials: the user
// information and the query values, and with wholePath the path and its
// last segment.
func urlSecrets(u *url.URL, wholePath bool) []string {
	var s []string
	if u.User != nil {
		s = append(s, u.User.Username())
		if p, ok := u.User.Password(); ok {
			s = append(s, p)
		}
	}
	for _, vs := range u.Query() {
		s = append(s, vs...)
	}
	if u.RawQuery != "" {
		s = append(s, u.RawQuery)
	}
	if wholePath {
		s = append(s, u.String(), u.Path, u.EscapedPath())
		if i := strings.LastIndexByte(u.Path, '/'); i >= 0 {
			s = append(s, u.Path[i+1:])
		}
	}
	return s
}

// urlError rewrites an error of net/http, which quotes the whole URL, with
// the redacted form shown.
func urlError(err error, shown string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: shown, Err: ue.Err}
	}
	return err
}
