package s3

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Location is a parsed S3 repository location,
// s3:https://HOST[:PORT]/BUCKET[/PREFIX].
type Location struct {
	// Secure is false for http:// (allowed only with Config.Insecure to a
	// loopback host; Open checks that, ParseLocation does not).
	Secure bool
	// Host is HOST[:PORT] as given (an IPv6 address in brackets).
	Host string
	// Bucket is the bucket name.
	Bucket string
	// Prefix is the key prefix of the repository, without leading or
	// trailing '/'; empty for a repository at the bucket's root.
	Prefix string
}

// String returns the location in the syntax ParseLocation reads.
func (l Location) String() string {
	scheme := "https"
	if !l.Secure {
		scheme = "http"
	}
	s := "s3:" + scheme + "://" + l.Host + "/" + l.Bucket
	if l.Prefix != "" {
		s += "/" + l.Prefix
	}
	return s
}

// key returns the object key for rel (a path relative to the repository).
func (l Location) key(rel string) string {
	if l.Prefix == "" {
		return rel
	}
	return l.Prefix + "/" + rel
}

// ParseLocation parses s3:https://HOST[:PORT]/BUCKET[/PREFIX]. Errors say
// which part is wrong. It refuses credentials in the URL (they would end up
// in shell history and process lists; use the AWS environment variables or
// a credentials file), query strings and fragments, bucket names S3 does not
// allow, and prefixes with empty, "." or ".." segments (S3 would store them
// literally, but every tool that maps keys to paths would not).
func ParseLocation(s string) (Location, error) {
	fail := func(format string, args ...any) (Location, error) {
		return Location{}, fmt.Errorf("S3 location %q: "+format+" (want s3:https://HOST[:PORT]/BUCKET[/PREFIX])", append([]any{s}, args...)...)
	}
	rest, ok := strings.CutPrefix(s, "s3:")
	if !ok {
		return fail("does not start with \"s3:\"")
	}
	if !utf8.ValidString(rest) {
		return fail("not valid UTF-8")
	}
	for _, r := range rest {
		if r < 0x21 || r == 0x7f {
			return fail("contains a space or control character")
		}
	}
	var l Location
	switch {
	case strings.HasPrefix(rest, "https://"):
		l.Secure = true
		rest = rest[len("https://"):]
	case strings.HasPrefix(rest, "http://"):
		rest = rest[len("http://"):]
	default:
		return fail("the URL must start with https:// (or http:// with --insecure to a loopback address)")
	}
	if strings.ContainsAny(rest, "?#") {
		return fail("query strings and fragments are not allowed")
	}
	host, path, _ := strings.Cut(rest, "/")
	if strings.Contains(host, "@") {
		return fail("credentials in the URL are not allowed: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use a credentials file")
	}
	if err := checkHost(host); err != nil {
		return fail("host: %v", err)
	}
	l.Host = host
	bucket, prefix, _ := strings.Cut(path, "/")
	if bucket == "" {
		return fail("no bucket")
	}
	if err := checkBucket(bucket); err != nil {
		return fail("bucket %q: %v", bucket, err)
	}
	l.Bucket = bucket
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix != "" {
		for _, seg := range strings.Split(prefix, "/") {
			switch seg {
			case "":
				return fail("prefix %q has an empty segment (\"//\")", prefix)
			case ".", "..":
				return fail("prefix %q has a %q segment", prefix, seg)
			}
		}
		if len(prefix) > 512 {
			return fail("prefix is longer than 512 bytes")
		}
		if strings.Contains(prefix, "%") {
			return fail("prefix %q contains '%%': give keys unescaped", prefix)
		}
	}
	l.Prefix = prefix
	return l, nil
}

// checkHost accepts HOST or HOST:PORT with a DNS name, an IPv4 address or a
// bracketed IPv6 address.
func checkHost(host string) error {
	if host == "" {
		return errors.New("missing")
	}
	name, port := host, ""
	if strings.HasPrefix(host, "[") {
		end := strings.Index(host, "]")
		if end < 0 {
			return errors.New("unclosed '[' of an IPv6 address")
		}
		name = host[1:end]
		if ip := net.ParseIP(name); ip == nil || ip.To4() != nil {
			return fmt.Errorf("%q is not an IPv6 address", name)
		}
		switch after := host[end+1:]; {
		case after == "":
		case strings.HasPrefix(after, ":"):
			port = after[1:]
			if port == "" {
				return errors.New("empty port")
			}
		default:
			return fmt.Errorf("unexpected %q after the IPv6 address", after)
		}
	} else {
		if h, p, ok := strings.Cut(host, ":"); ok {
			if p == "" {
				return errors.New("empty port")
			}
			name, port = h, p
		}
		if name == "" {
			return errors.New("missing")
		}
		if len(name) > 253 {
			return errors.New("longer than 253 characters")
		}
		for _, label := range strings.Split(name, ".") {
			if label == "" || len(label) > 63 {
				return fmt.Errorf("%q is not a valid host name", name)
			}
			for i := 0; i < len(label); i++ {
				c := label[i]
				if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
					return fmt.Errorf("%q is not a valid host name", name)
				}
			}
		}
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '0' {
			return fmt.Errorf("port %q is not a number from 1 to 65535", port)
		}
	}
	return nil
}

// checkBucket applies S3's bucket naming rules: 3 to 63 characters of
// lower-case letters, digits, '.' and '-', starting and ending with a letter
// or digit, no "..", and not an IPv4 address.
func checkBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return errors.New("must be 3 to 63 characters long")
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return errors.New("may contain only lower-case letters, digits, '.' and '-'")
		}
	}
	if !isAlnum(b[0]) || !isAlnum(b[len(b)-1]) {
		return errors.New("must start and end with a letter or digit")
	}
	if strings.Contains(b, "..") {
		return errors.New(`must not contain ".."`)
	}
	if net.ParseIP(b) != nil {
		return errors.New("must not be an IP address")
	}
	return nil
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// isLoopback reports whether host (HOST[:PORT]) names this machine:
// "localhost" or a loopback IP address.
func isLoopback(host string) bool {
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	name = strings.TrimSuffix(strings.TrimPrefix(name, "["), "]")
	if strings.EqualFold(name, "localhost") {
		return true
	}
	ip := net.ParseIP(name)
	return ip != nil && ip.IsLoopback()
}
