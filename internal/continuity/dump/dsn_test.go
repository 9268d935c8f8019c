package dump

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParsePGDSN(t *testing.T) {
	tests := []struct {
		name, in string
		want     [][2]string
		wantErr  string
	}{
		{name: "empty", in: "", want: nil},
		{name: "keywords", in: "host=127.0.0.1 port=5432 dbname=app user=bk",
			want: [][2]string{{"host", "127.0.0.1"}, {"port", "5432"}, {"dbname", "app"}, {"user", "bk"}}},
		{name: "spaces around =", in: "  host = db   dbname= 'my app' ",
			want: [][2]string{{"host", "db"}, {"dbname", "my app"}}},
		{name: "quoted escapes", in: `password='it\'s a \\ secret' dbname=x`,
			want: [][2]string{{"password", `it's a \ secret`}, {"dbname", "x"}}},
		{name: "unquoted escape", in: `password=a\ b`, want: [][2]string{{"password", "a b"}}},
		{name: "empty quoted value", in: `password='' host=h`, want: [][2]string{{"password", ""}, {"host", "h"}}},
		{name: "repeated keyword keeps last", in: "dbname=a dbname=b", want: [][2]string{{"dbname", "b"}}},
		{name: "uri full", in: "postgresql://bk:s%40cr%2Ft@db.example:6432/app?sslmode=verify-full&application_name=x",
			want: [][2]string{{"user", "bk"}, {"password", "s@cr/t"}, {"host", "db.example"}, {"port", "6432"},
				{"dbname", "app"}, {"sslmode", "verify-full"}, {"application_name", "x"}}},
		{name: "uri postgres scheme, no db", in: "postgres://root@127.0.0.1",
			want: [][2]string{{"user", "root"}, {"host", "127.0.0.1"}}},
		{name: "uri empty", in: "postgres://", want: nil},
		{name: "uri socket dir", in: "postgresql://%2Fvar%2Frun%2Fpostgresql/app",
			want: [][2]string{{"host", "/var/run/postgresql"}, {"dbname", "app"}}},
		{name: "uri ipv6 and several hosts", in: "postgresql://[::1]:5433,db2/app",
			want: [][2]string{{"host", "::1,db2"}, {"port", "5433,"}, {"dbname", "app"}}},
		{name: "uri password with colon", in: "postgres://u:a:b@h/d",
			want: [][2]string{{"user", "u"}, {"password", "a:b"}, {"host", "h"}, {"dbname", "d"}}},
		{name: "uri plus stays plus", in: "postgres://u:a+b@h/d",
			want: [][2]string{{"user", "u"}, {"password", "a+b"}, {"host", "h"}, {"dbname", "d"}}},
		{name: "scheme-like text in a value", in: "dbname='://' password=a://b",
			want: [][2]string{{"dbname", "://"}, {"password", "a://b"}}},
		{name: "unterminated quote", in: "password='abc", wantErr: "unterminated quoted string"},
		{name: "missing =", in: "host=a dbname", wantErr: `missing "="`},
		{name: "no keyword", in: "=x", wantErr: "without a keyword"},
		{name: "bad keyword", in: "ho-st=x", wantErr: "letters, digits"},
		{name: "text after quote", in: "host='a'b", wantErr: "after the closing quote"},
		{name: "other scheme", in: "mysql://root@h/db", wantErr: "must start with postgres://"},
		{name: "uri bad port", in: "postgres://h:abc/db", wantErr: `port "abc"`},
		{name: "uri bad percent", in: "postgres://h/d%zz", wantErr: "bad percent-encoding"},
		{name: "uri truncated percent", in: "postgres://h/d%4", wantErr: "incomplete percent-encoding"},
		{name: "uri NUL", in: "postgres://h/d%00", wantErr: "NUL"},
		{name: "uri query without =", in: "postgres://h/d?sslmode", wantErr: "want key=value"},
		{name: "uri ipv6 unclosed", in: "postgres://[::1/d", wantErr: `missing "]"`},
		{name: "NUL byte", in: "host=a\x00", wantErr: "NUL"},
		{name: "too long", in: "host=" + strings.Repeat("a", maxDSN), wantErr: "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ci, err := ParsePGDSN(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParsePGDSN(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePGDSN(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, ci.Pairs()); diff != "" {
				t.Errorf("ParsePGDSN(%q) pairs (-want +got):\n%s", tt.in, diff)
			}
			// The keyword form written back parses to the same pairs.
			again, err := ParsePGDSN(ci.String())
			if err != nil {
				t.Fatalf("re-parse %q: %v", ci.String(), err)
			}
			if diff := cmp.Diff(ci.Pairs(), again.Pairs()); diff != "" {
				t.Errorf("round trip of %q (-first +second):\n%s", ci.String(), diff)
			}
		})
	}
}

// TestPGDSNSecretsStayOut: an error about a DSN and the redacted form
// never show the password.
func TestPGDSNSecretsStayOut(t *testing.T) {
	const secret = "Sup3rS3cret"
	for _, in := range []string{
		"postgres://u:" + secret + "@h:badport/d",
		"postgres://u:" + secret + "@h/d%zz",
		"host=h password=" + secret + " dbname",
		"host=h password='" + secret,
	} {
		_, err := ParsePGDSN(in)
		if err == nil {
			t.Fatalf("ParsePGDSN(%q) succeeded, want an error", in)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error for %q shows the password: %v", in, err)
		}
	}
	ci, err := ParsePGDSN("host=h password=" + secret)
	if err != nil {
		t.Fatal(err)
	}
	if r := ci.Redacted(); strings.Contains(r, secret) || !strings.Contains(r, "password='xxxxx'") {
		t.Errorf("Redacted() = %q", r)
	}
	rest, pw, ok := ci.WithoutPassword()
	if !ok || pw != secret || strings.Contains(rest.String(), secret) {
		t.Errorf("WithoutPassword() = %q, %q, %v", rest.String(), pw, ok)
	}
}

func TestParseMyDSN(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		name, in string
		want     *MyDSN
		wantErr  string
	}{
		{name: "full", in: "mysql://root:pw@127.0.0.1:3306/app",
			want: &MyDSN{User: "root", Password: "pw", HasPass: true, Host: "127.0.0.1", Port: 3306, Database: "app"}},
		{name: "mariadb scheme, no password, all databases", in: "mariadb://backup@db.example/",
			want: &MyDSN{User: "backup", Host: "db.example", Database: ""}},
		{name: "empty password", in: "mysql://root:@h/db",
			want: &MyDSN{User: "root", HasPass: true, Host: "h", Database: "db"}},
		{name: "encoded password", in: "mysql://u:p%40ss%3Aw%2Fo%22rd@h/db",
			want: &MyDSN{User: "u", Password: `p@ss:w/o"rd`, HasPass: true, Host: "h", Database: "db"}},
		{name: "raw @ in password uses last @", in: "mysql://u:a@b@h/db",
			want: &MyDSN{User: "u", Password: "a@b", HasPass: true, Host: "h", Database: "db"}},
		{name: "ipv6", in: "mysql://u@[::1]:3307/db",
			want: &MyDSN{User: "u", Host: "::1", Port: 3307, Database: "db"}},
		{name: "socket", in: "mysql://u@/db?socket=%2Frun%2Fmysqld%2Fmysqld.sock",
			want: &MyDSN{User: "u", Socket: "/run/mysqld/mysqld.sock", Database: "db"}},
		{name: "tls options", in: "mysql://u@h/db?ssl=true&ssl-ca=/etc/ca.pem&ssl-verify-server-cert=false",
			want: &MyDSN{User: "u", Host: "h", Database: "db", SSL: &yes, SSLCA: "/etc/ca.pem", SSLVerifyServerCert: &no}},
		{name: "encoded database", in: "mysql://u@h/my%20db",
			want: &MyDSN{User: "u", Host: "h", Database: "my db"}},
		{name: "every reserved byte", in: "mysql://u%3F%2F%3A:%25%26%3D%23%20%3F%5B%5D%0A@[fe80::1%25eth0]:3306/d%3Fb?ssl-key=%2Fk%26%3D&ssl=false",
			want: &MyDSN{User: "u?/:", Password: "%&=# ?[]\n", HasPass: true, Host: "fe80::1%eth0", Port: 3306, Database: "d?b", SSL: &no, SSLKey: "/k&="}},
		{name: "go driver form", in: "root:pw@tcp(127.0.0.1:3306)/app", wantErr: "Go driver"},
		{name: "no scheme", in: "127.0.0.1/app", wantErr: "want mysql://"},
		{name: "no slash", in: "mysql://u@h", wantErr: `missing "/"`},
		{name: "port zero", in: "mysql://u@h:0/db", wantErr: "1 to 65535"},
		{name: "port big", in: "mysql://u@h:70000/db", wantErr: "1 to 65535"},
		{name: "port sign", in: "mysql://u@h:+33/db", wantErr: "1 to 65535"},
		{name: "unknown option", in: "mysql://u@h/db?sslmode=x", wantErr: "unknown option"},
		{name: "bad bool", in: "mysql://u@h/db?ssl=maybe", wantErr: "true or false"},
		{name: "socket and host", in: "mysql://u@h/db?socket=/s", wantErr: "not both"},
		{name: "slash in db", in: "mysql://u@h/a/b", wantErr: `contains "/"`},
		{name: "long db", in: "mysql://u@h/" + strings.Repeat("d", 65), wantErr: "longer than 64"},
		{name: "bad percent in password", in: "mysql://u:%zz@h/db", wantErr: "password: bad percent-encoding"},
		{name: "space in host", in: "mysql://u@a%20b/db", wantErr: "not a host name"},
		{name: "NUL", in: "mysql://u@h/d\x00", wantErr: "NUL"},
		{name: "option without =", in: "mysql://u@h/db?ssl", wantErr: "want name=value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ParseMyDSN(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseMyDSN(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseMyDSN(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, d); diff != "" {
				t.Errorf("ParseMyDSN(%q) (-want +got):\n%s", tt.in, diff)
			}
			if d.HasPass && d.Password != "" && strings.Contains(d.String(), d.Password) {
				t.Errorf("String() = %q shows the password", d.String())
			}
			// url (what ScratchMySQL hands to the restore) keeps everything.
			if again, err := ParseMyDSN(d.url()); err != nil || !cmp.Equal(d, again) {
				t.Errorf("ParseMyDSN(url() = %q) = %+v, %v; want %+v", d.url(), again, err, d)
			}
		})
	}
}

func TestMyOptionFileQuoting(t *testing.T) {
	d := &MyDSN{User: `we"ird\user`, Password: "a\"b\\c\nd\te'f #;", HasPass: true, Host: "h", Port: 3307}
	got := string(d.optionFile())
	want := "[client]\nuser=\"we\\\"ird\\\\user\"\npassword=\"a\\\"b\\\\c\\nd\\te'f #;\"\nhost=\"h\"\nprotocol=\"tcp\"\nport=\"3307\"\n"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("optionFile (-want +got):\n%s", diff)
	}
}

func FuzzParsePGDSN(f *testing.F) {
	for _, s := range []string{"", "host=a port=1 dbname='x y'", `password='a\'b'`, "postgresql://u:p@h:1,[::1]:2/d?sslmode=require",
		"postgres://%2Ftmp/d", "a=b=c", "host='", "postgres://[", "k=\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ci, err := ParsePGDSN(s)
		if err != nil {
			return
		}
		// What the parser accepted, written back, means the same.
		again, err := ParsePGDSN(ci.String())
		if err != nil {
			t.Fatalf("ParsePGDSN(%q) ok, but its String() %q fails: %v", s, ci.String(), err)
		}
		if diff := cmp.Diff(ci.Pairs(), again.Pairs()); diff != "" {
			t.Fatalf("round trip of %q (-first +second):\n%s", s, diff)
		}
		rest, pw, ok := ci.WithoutPassword()
		if _, has := rest.Get("password"); has {
			t.Fatalf("WithoutPassword kept a password")
		}
		if ok && len(pw) >= 4 && strings.Contains(ci.Redacted(), "'"+pw+"'") {
			t.Fatalf("Redacted shows the password")
		}
	})
}

func FuzzParseMyDSN(f *testing.F) {
	for _, s := range []string{"mysql://root:pw@127.0.0.1:3306/app", "mariadb://u@/db?socket=/s", "mysql://u@[::1]:1/d?ssl=1",
		"mysql://a:b@c@d/e", "mysql://", "mysql://u@h:99999/", "root:pw@tcp(h:1)/d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseMyDSN(s)
		if err != nil {
			return
		}
		if d.Port < 0 || d.Port > 65535 || strings.Contains(d.Database, "/") || (d.Socket != "" && d.Host != "") {
			t.Fatalf("ParseMyDSN(%q) accepted an invalid DSN: %+v", s, d)
		}
		// The option file is line-based: no value may start a new line.
		lines := strings.Split(strings.TrimSuffix(string(d.optionFile()), "\n"), "\n")
		for _, l := range lines[1:] {
			if !strings.Contains(l, "=\"") && !strings.HasPrefix(l, "ssl") && !strings.HasPrefix(l, "skip-ssl") {
				t.Fatalf("option file line %q is not key=\"value\" (from %q)", l, s)
			}
		}
		// (Unless the password is also part of what String shows.)
		if d.HasPass && len(d.Password) >= 4 && strings.Contains(d.String(), d.Password) &&
			!strings.Contains(d.User+"\x00"+d.Host+"\x00"+d.Database+"\x00"+d.Socket, d.Password) {
			t.Fatalf("String() shows the password")
		}
		// url round-trips whatever the parser accepted.
		if u := d.url(); len(u) <= maxDSN {
			again, err := ParseMyDSN(u)
			if err != nil {
				t.Fatalf("ParseMyDSN(%q) ok, but its url() %q fails: %v", s, u, err)
			}
			if diff := cmp.Diff(d, again); diff != "" {
				t.Fatalf("round trip of %q through %q (-first +second):\n%s", s, u, diff)
			}
		}
	})
}
