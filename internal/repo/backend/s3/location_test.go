package s3

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseLocation(t *testing.T) {
	tests := []struct {
		in   string
		want Location
		err  string // substring of the error; "" means success
	}{
		{in: "s3:https://s3.example.com/bucket", want: Location{Secure: true, Host: "s3.example.com", Bucket: "bucket"}},
		{in: "s3:https://s3.example.com/bucket/", want: Location{Secure: true, Host: "s3.example.com", Bucket: "bucket"}},
		{in: "s3:https://s3.example.com:9000/my.bucket-1/a/b/c", want: Location{Secure: true, Host: "s3.example.com:9000", Bucket: "my.bucket-1", Prefix: "a/b/c"}},
		{in: "s3:https://s3.example.com/bucket/prefix/", want: Location{Secure: true, Host: "s3.example.com", Bucket: "bucket", Prefix: "prefix"}},
		{in: "s3:http://127.0.0.1:7070/bkt/p", want: Location{Host: "127.0.0.1:7070", Bucket: "bkt", Prefix: "p"}},
		{in: "s3:https://[::1]:443/bkt", want: Location{Secure: true, Host: "[::1]:443", Bucket: "bkt"}},
		{in: "s3:https://[2001:db8::1]/bkt", want: Location{Secure: true, Host: "[2001:db8::1]", Bucket: "bkt"}},

		{in: "https://s3.example.com/bucket", err: `does not start with "s3:"`},
		{in: "s3:s3.example.com/bucket", err: "must start with https://"},
		{in: "s3:ftp://h/bucket", err: "must start with https://"},
		{in: "s3:https:///bucket", err: "host: missing"},
		{in: "s3:https://h", err: "no bucket"},
		{in: "s3:https://h/", err: "no bucket"},
		{in: "s3:https://key:secret@h/bucket", err: "credentials in the URL"},
		{in: "s3:https://h:0/bucket", err: "port"},
		{in: "s3:https://h:65536/bucket", err: "port"},
		{in: "s3:https://h:/bucket", err: "empty port"},
		{in: "s3:https://h:x/bucket", err: "port"},
		{in: "s3:https://h_x/bucket", err: "not a valid host name"},
		{in: "s3:https://[::1/bucket", err: "unclosed"},
		{in: "s3:https://[1.2.3.4]/bucket", err: "not an IPv6 address"},
		{in: "s3:https://h/Bucket", err: "lower-case"},
		{in: "s3:https://h/bu", err: "3 to 63"},
		{in: "s3:https://h/" + strings.Repeat("b", 64), err: "3 to 63"},
		{in: "s3:https://h/-bucket", err: "start and end"},
		{in: "s3:https://h/bu..cket", err: `".."`},
		{in: "s3:https://h/192.168.1.1", err: "IP address"},
		{in: "s3:https://h/bucket//p", err: "empty segment"},
		{in: "s3:https://h/bucket/a/../b", err: `".."`},
		{in: "s3:https://h/bucket/./b", err: `"."`},
		{in: "s3:https://h/bucket/p?x=1", err: "query"},
		{in: "s3:https://h/bucket/p#f", err: "fragment"},
		{in: "s3:https://h/bucket/a b", err: "space or control"},
		{in: "s3:https://h/bucket/a\x00b", err: "space or control"},
		{in: "s3:https://h/bucket/a%2Fb", err: "'%'"},
		{in: "s3:https://h/bucket/\xff", err: "UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseLocation(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseLocation(%q): err = %v, want one containing %q", tc.in, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseLocation(%q): %v", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("ParseLocation(%q) (-want +got):\n%s", tc.in, diff)
			}
			// String gives back a location that parses to the same.
			again, err := ParseLocation(got.String())
			if err != nil || again != got {
				t.Fatalf("ParseLocation(%q.String() = %q) = %+v, %v", tc.in, got.String(), again, err)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.0.0.1:9000": true, "127.1.2.3:1": true, "[::1]:80": true, "[::1]": true,
		"localhost": true, "LOCALHOST:9000": true,
		"10.0.0.1": false, "example.com": false, "localhost.example.com": false, "[::2]:80": false, "0.0.0.0": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

// FuzzParseLocation: the parser never panics, and what it accepts is
// consistent: a valid bucket, a prefix without empty, "." or ".."
// segments, and a String that parses back to the same location.
func FuzzParseLocation(f *testing.F) {
	for _, s := range []string{
		"s3:https://s3.example.com/bucket/prefix",
		"s3:http://127.0.0.1:7070/bkt",
		"s3:https://[::1]:9000/bkt/a/b/",
		"s3:https://u:p@h/b",
		"s3:https://h:99999/bucket",
		"s3:https://h/bucket//x/../y",
		"s3:",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLocation(s)
		if err != nil {
			return
		}
		if checkBucket(l.Bucket) != nil {
			t.Fatalf("accepted invalid bucket %q from %q", l.Bucket, s)
		}
		if checkHost(l.Host) != nil {
			t.Fatalf("accepted invalid host %q from %q", l.Host, s)
		}
		if l.Prefix != "" {
			for _, seg := range strings.Split(l.Prefix, "/") {
				if seg == "" || seg == "." || seg == ".." {
					t.Fatalf("accepted prefix %q from %q", l.Prefix, s)
				}
			}
		}
		if strings.Contains(l.Host, "@") {
			t.Fatalf("accepted credentials in %q", s)
		}
		again, err := ParseLocation(l.String())
		if err != nil || again != l {
			t.Fatalf("ParseLocation(%q) = %+v; its String %q parses to %+v, %v", s, l, l.String(), again, err)
		}
	})
}
