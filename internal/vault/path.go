package vault

// Request paths are untrusted input: ParsePath reads the escaped path (as
// sent, before any decoding) so that an encoded '/' ("%2F") cannot join
// two segments into one name or climb out of a repository, and then
// validates every decoded segment with the same rules the backends use.

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/repo/backend"
)

// Kind is what a request path addresses.
type Kind int

// The kinds of path.
const (
	KindRepo   Kind = iota + 1 // /NAME
	KindList                   // /NAME/TYPE/
	KindObject                 // /NAME/TYPE/OBJ or /NAME/config
)

// Route is a parsed request path.
type Route struct {
	Kind   Kind
	Repo   string
	Handle backend.Handle // Type only for KindList
}

// MaxRepoNameLen is the longest repository name.
const MaxRepoNameLen = 64

// ValidRepoName reports whether name can name a repository: 1 to 64
// letters, digits, '.', '_' or '-', starting with a letter or digit.
func ValidRepoName(name string) bool {
	if name == "" || len(name) > MaxRepoNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// ErrBadPath is matched by every error ParsePath returns.
var ErrBadPath = errors.New("malformed path")

func badPath(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadPath}, args...)...)
}

// ParsePath parses an escaped request path (url.URL.EscapedPath). It
// refuses anything that is not exactly one of the forms in the package
// documentation.
func ParsePath(escaped string) (Route, error) {
	if len(escaped) > 1024 {
		return Route{}, badPath("longer than 1024 bytes")
	}
	if !strings.HasPrefix(escaped, "/") {
		return Route{}, badPath("does not start with '/'")
	}
	raw := strings.Split(escaped[1:], "/")
	if len(raw) > 3 {
		return Route{}, badPath("too many segments")
	}
	seg := make([]string, len(raw))
	for i, r := range raw {
		s, err := url.PathUnescape(r)
		if err != nil {
			return Route{}, badPath("segment %d: %v", i+1, err)
		}
		if strings.ContainsAny(s, "/\\") {
			return Route{}, badPath("segment %d contains an encoded '/' or '\\'", i+1)
		}
		if s == "." || s == ".." {
			return Route{}, badPath("segment %d is %q", i+1, s)
		}
		if s == "" && !(i == len(raw)-1 && i == 2) {
			return Route{}, badPath("empty segment %d", i+1)
		}
		seg[i] = s
	}
	if !ValidRepoName(seg[0]) {
		return Route{}, badPath("invalid repository name %q (use 1-%d letters, digits, '.', '_', '-')", seg[0], MaxRepoNameLen)
	}
	rt := Route{Repo: seg[0]}
	if len(seg) == 1 {
		rt.Kind = KindRepo
		return rt, nil
	}
	t := backend.Type(seg[1])
	if !t.Valid() {
		return Route{}, badPath("unknown object type %q", seg[1])
	}
	if len(seg) == 2 {
		if t != backend.ConfigFile {
			return Route{}, badPath("%s needs an object name, or a trailing '/' to list", t)
		}
		rt.Kind, rt.Handle = KindObject, backend.Handle{Type: t}
		return rt, nil
	}
	if seg[2] == "" {
		rt.Kind, rt.Handle = KindList, backend.Handle{Type: t}
		return rt, nil
	}
	h := backend.Handle{Type: t, Name: seg[2]}
	if err := h.Validate(); err != nil {
		return Route{}, badPath("%v", err)
	}
	rt.Kind, rt.Handle = KindObject, h
	return rt, nil
}

// ObjectPath returns the escaped path of h in repository name, the
// inverse of ParsePath (clients build request paths with it).
func ObjectPath(name string, h backend.Handle) string {
	if h.Type == backend.ConfigFile {
		return "/" + url.PathEscape(name) + "/config"
	}
	return "/" + url.PathEscape(name) + "/" + url.PathEscape(string(h.Type)) + "/" + url.PathEscape(h.Name)
}

// ListPath returns the escaped path that lists type t of repository name.
func ListPath(name string, t backend.Type) string {
	return "/" + url.PathEscape(name) + "/" + url.PathEscape(string(t)) + "/"
}
