// Value types of the configuration file and their text formats.
//
// Duration is Go's duration syntax (time.ParseDuration: "300ms", "1h30m")
// extended with a leading whole number of days: "400d", "1d12h". Days are
// always 24 hours; negative values are refused because no setting here means
// anything when negative.
//
// Size is a whole number of bytes with an optional unit: decimal B, KB, MB,
// GB, TB (powers of 1000) or binary KiB, MiB, GiB, TiB (powers of 1024). Units
// are matched without regard to case, and one space may separate number and
// unit ("64 KiB").
//
// Secret is a value that should not sit in the file itself. It is written
// either as a plain string (accepted, but reported as coming from "yaml" so
// that `bulwark config check` can warn), or as a one-key mapping naming where
// to read it at run time: {env: NAME} or {file: /absolute/path}.

package config

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration that also accepts a day suffix ("400d",
// "1d12h") in the configuration file.
type Duration time.Duration

const day = 24 * time.Hour

// ParseDuration parses Go duration syntax optionally preceded by a whole
// number of days ("400d", "1d12h", "90m"). Negative durations are refused.
func ParseDuration(s string) (Duration, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return 0, errors.New("empty duration")
	}
	if strings.HasPrefix(in, "-") {
		return 0, fmt.Errorf("%q is negative; durations must be zero or more", s)
	}
	var days int64
	rest := in
	if i := strings.IndexByte(in, 'd'); i >= 0 {
		n, err := strconv.ParseInt(strings.TrimPrefix(in[:i], "+"), 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a duration: days must be a whole number before \"d\", as in 400d or 1d12h", s)
		}
		days = n
		rest = in[i+1:]
	}
	var d time.Duration
	if rest != "" {
		var err error
		d, err = time.ParseDuration(rest)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration: use a number with a unit (ms, s, m, h, d), e.g. 30s, 15m, 12h, 400d", s)
		}
		if d < 0 {
			return 0, fmt.Errorf("%q is negative; durations must be zero or more", s)
		}
	}
	if days > int64((math.MaxInt64-d)/day) {
		return 0, fmt.Errorf("%q is too long; the largest duration is about 106751d", s)
	}
	return Duration(time.Duration(days)*day + d), nil
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats the duration the way the file accepts it, using days for
// whole days so that defaults such as 400d read back as written.
func (d Duration) String() string {
	t := time.Duration(d)
	if t < day || t%time.Second != 0 {
		return shortDuration(t)
	}
	days := t / day
	rest := t % day
	if rest == 0 {
		return strconv.FormatInt(int64(days), 10) + "d"
	}
	return strconv.FormatInt(int64(days), 10) + "d" + shortDuration(rest)
}

// shortDuration trims the zero units Go prints ("12h0m0s" -> "12h").
func shortDuration(t time.Duration) string {
	s := t.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseDuration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

func (d *Duration) decodeNode(dec *decoder, n *yaml.Node, path string) {
	if n.Kind != yaml.ScalarNode {
		dec.errorf(n, path, "expected a duration such as 30s, 15m, 12h or 400d, got %s", describe(n))
		return
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		dec.errorf(n, path, "%v", err)
		return
	}
	*d = v
}

// Size is a number of bytes.
type Size int64

// KiB, MiB, GiB and TiB are the binary size units, for defaults and limits.
const (
	KiB Size = 1 << 10
	MiB Size = 1 << 20
	GiB Size = 1 << 30
	TiB Size = 1 << 40
)

var sizeUnits = map[string]Size{
	"":    1,
	"b":   1,
	"kb":  1000,
	"mb":  1000 * 1000,
	"gb":  1000 * 1000 * 1000,
	"tb":  1000 * 1000 * 1000 * 1000,
	"kib": KiB,
	"mib": MiB,
	"gib": GiB,
	"tib": TiB,
}

var sizeRE = regexp.MustCompile(`^([0-9]+) ?([A-Za-z]*)$`)

// ParseSize parses a whole number of bytes with an optional unit: 512,
// 64KiB, 1MiB, 1GiB, 10MB.
func ParseSize(s string) (Size, error) {
	m := sizeRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("%q is not a size: use a whole number with an optional unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 64KiB or 1MiB", s)
	}
	unit, ok := sizeUnits[strings.ToLower(m[2])]
	if !ok {
		return 0, fmt.Errorf("%q has an unknown unit %q: use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB", s, m[2])
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || n > int64(math.MaxInt64/unit) {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return Size(n) * unit, nil
}

// Bytes returns the size as an int64 number of bytes.
func (s Size) Bytes() int64 { return int64(s) }

// String formats the size in the largest binary unit that divides it
// exactly, so 1048576 prints as 1MiB and 1000 as 1000.
func (s Size) String() string {
	for _, u := range []struct {
		name string
		size Size
	}{{"TiB", TiB}, {"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB}} {
		if s != 0 && s%u.size == 0 {
			return strconv.FormatInt(int64(s/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// MarshalText implements encoding.TextMarshaler.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseSize.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

func (s *Size) decodeNode(dec *decoder, n *yaml.Node, path string) {
	if n.Kind != yaml.ScalarNode {
		dec.errorf(n, path, "expected a size such as 512, 64KiB or 1MiB, got %s", describe(n))
		return
	}
	v, err := ParseSize(n.Value)
	if err != nil {
		dec.errorf(n, path, "%v", err)
		return
	}
	*s = v
}

// ErrSecretNotSet is returned by Secret.Resolve when the setting was not
// given at all.
var ErrSecretNotSet = errors.New("secret not set")

// Secret is a sensitive value read at run time from an environment
// variable or a file, or, discouraged, written literally in the file. The
// zero value is "not set". Its String method never prints a literal value.
type Secret struct {
	literal string
	env     string
	file    string
	source  string // "", "yaml", "env" or "file"
}

// LiteralSecret returns a Secret holding v itself (Source "yaml").
func LiteralSecret(v string) Secret { return Secret{literal: v, source: "yaml"} }

// EnvSecret returns a Secret read from environment variable name.
func EnvSecret(name string) Secret { return Secret{env: name, source: "env"} }

// FileSecret returns a Secret read from the file at path.
func FileSecret(path string) Secret { return Secret{file: path, source: "file"} }

// IsSet reports whether the secret was configured in any form.
func (s Secret) IsSet() bool { return s.source != "" }

// Source reports where the value comes from: "yaml" (written in the file),
// "env", "file", or "" when not set.
func (s Secret) Source() string { return s.source }

// Env returns the environment variable name for an {env: NAME} secret.
func (s Secret) Env() string { return s.env }

// File returns the path for a {file: PATH} secret.
func (s Secret) File() string { return s.file }

// Resolve returns the secret's value. An {env: NAME} secret must name a
// non-empty variable; a {file: PATH} secret's contents lose one trailing
// newline ("\n" or "\r\n") so that files written by editors and `echo` work,
// and must not then be empty. Errors name the variable or file but never
// the value. An unset secret returns an error wrapping ErrSecretNotSet.
func (s Secret) Resolve(getenv func(string) string, readFile func(string) ([]byte, error)) (string, error) {
	switch s.source {
	case "yaml":
		return s.literal, nil
	case "env":
		v := getenv(s.env)
		if v == "" {
			return "", fmt.Errorf("secret from environment variable %s: the variable is empty or not set; export it before starting bulwark", s.env)
		}
		return v, nil
	case "file":
		b, err := readFile(s.file)
		if err != nil {
			return "", fmt.Errorf("secret from file %s: %w", s.file, err)
		}
		v := string(b)
		if strings.HasSuffix(v, "\r\n") {
			v = v[:len(v)-2]
		} else if strings.HasSuffix(v, "\n") {
			v = v[:len(v)-1]
		}
		if v == "" {
			return "", fmt.Errorf("secret from file %s: the file is empty; write the secret into it", s.file)
		}
		return v, nil
	default:
		return "", ErrSecretNotSet
	}
}

// String describes where the secret comes from without revealing it.
func (s Secret) String() string {
	switch s.source {
	case "yaml":
		return "(literal, redacted)"
	case "env":
		return "{env: " + s.env + "}"
	case "file":
		return "{file: " + s.file + "}"
	default:
		return "(not set)"
	}
}

// GoString keeps %#v from printing the literal either.
func (s Secret) GoString() string { return "config.Secret" + s.String() }

// MarshalText implements encoding.TextMarshaler with the redacted String,
// so a Secret can never leak through JSON or logs.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (s *Secret) decodeNode(dec *decoder, n *yaml.Node, path string) {
	const forms = "a string, {env: NAME} or {file: /path}"
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Value == "" {
			dec.errorf(n, path, "empty secret; remove the key, or give %s", forms)
			return
		}
		*s = LiteralSecret(n.Value)
	case yaml.MappingNode:
		if len(n.Content) != 2 {
			dec.errorf(n, path, "a secret mapping must have exactly one key, env or file; got %d keys", len(n.Content)/2)
			return
		}
		k, v := n.Content[0], n.Content[1]
		kpath := path + "." + k.Value
		if k.Kind != yaml.ScalarNode || (k.Value != "env" && k.Value != "file") {
			msg := "unknown key; a secret is {env: NAME} or {file: /path}"
			if k.Kind == yaml.ScalarNode {
				if sug := suggest(k.Value, []string{"env", "file"}); sug != "" {
					msg = fmt.Sprintf("unknown key (did you mean %q?)", sug)
				}
			}
			dec.errorf(k, kpath, "%s", msg)
			return
		}
		if !dec.checkNode(v, kpath) {
			return
		}
		if v.Kind != yaml.ScalarNode || v.ShortTag() == "!!null" || v.Value == "" {
			dec.errorf(v, kpath, "expected a non-empty string, got %s", describe(v))
			return
		}
		dec.record(kpath, v)
		if k.Value == "env" {
			if !envNameRE.MatchString(v.Value) {
				dec.errorf(v, kpath, "%q is not an environment variable name (letters, digits and _, not starting with a digit)", v.Value)
				return
			}
			*s = EnvSecret(v.Value)
			return
		}
		if !isAbs(v.Value) {
			dec.errorf(v, kpath, "%q is not an absolute path; secret files must be given as /absolute/path", v.Value)
			return
		}
		*s = FileSecret(v.Value)
	default:
		dec.errorf(n, path, "expected %s, got %s", forms, describe(n))
	}
}
