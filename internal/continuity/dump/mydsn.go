package dump

// MariaDB/MySQL DSNs. Bulwark takes one spelling, a URL:
//
//	mysql://USER[:PASSWORD]@HOST[:PORT]/[DATABASE][?OPTION=VALUE&...]
//	mariadb://...                      (same)
//	mysql://USER@/DATABASE?socket=/run/mysqld/mysqld.sock
//
// Every part is percent-decoded (a password holding '@' or '/' is written
// %40, %2F). An IPv6 host goes in brackets. Options: socket (a Unix socket
// path, instead of HOST), ssl (true|false), ssl-ca, ssl-cert, ssl-key (file
// paths) and ssl-verify-server-cert (true|false). Anything else is refused,
// so a typo does not silently connect differently.
//
// The parsed DSN never reaches a command line: it becomes a client option
// file ([client] user=..., password=...) written with mode 0600 into a
// private temporary directory and given to the tools with
// --defaults-extra-file. Values in that file are double-quoted with
// backslash escapes, which the MariaDB/MySQL option-file reader undoes.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MyDSN is a parsed MariaDB/MySQL DSN.
type MyDSN struct {
	User     string
	Password string
	HasPass  bool
	Host     string // "" with Socket, or for the client's default
	Port     int    // 0: the client's default (3306)
	Socket   string
	Database string // "": every database
	SSL      *bool  // nil: the client's default
	SSLCA    string
	SSLCert  string
	SSLKey   string
	// SSLVerifyServerCert is nil unless the DSN sets it.
	SSLVerifyServerCert *bool
}

// ParseMyDSN parses a mysql:// or mariadb:// DSN.
func ParseMyDSN(s string) (*MyDSN, error) {
	if len(s) > maxDSN {
		return nil, fmt.Errorf("mysql DSN: %d bytes, more than the %d allowed", len(s), maxDSN)
	}
	if strings.ContainsRune(s, 0) {
		return nil, errors.New("mysql DSN: contains a NUL byte")
	}
	const want = "want mysql://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
	var rest string
	switch {
	case strings.HasPrefix(s, "mysql://"):
		rest = s[len("mysql://"):]
	case strings.HasPrefix(s, "mariadb://"):
		rest = s[len("mariadb://"):]
	default:
		if strings.Contains(s, "@tcp(") || strings.Contains(s, "@unix(") {
			return nil, fmt.Errorf("mysql DSN: the Go driver's USER:PASS@tcp(HOST:PORT)/DB form is not accepted; %s", want)
		}
		return nil, fmt.Errorf("mysql DSN: %s", want)
	}
	d := &MyDSN{}
	rest, query, _ := strings.Cut(rest, "?")
	auth, path, hasPath := strings.Cut(rest, "/")
	if at := strings.LastIndexByte(auth, '@'); at >= 0 {
		user, pass, hasPass := strings.Cut(auth[:at], ":")
		var err error
		if d.User, err = pctDecode(user); err != nil {
			return nil, fmt.Errorf("mysql DSN: user: %w", err)
		}
		if hasPass {
			if d.Password, err = pctDecode(pass); err != nil {
				return nil, errors.New("mysql DSN: password: bad percent-encoding (write % as %25)")
			}
			d.HasPass = true
		}
		auth = auth[at+1:]
	}
	if !hasPath {
		return nil, fmt.Errorf("mysql DSN: missing \"/\" after the host (end with / for every database); %s", want)
	}
	host, port := auth, ""
	if strings.HasPrefix(auth, "[") {
		end := strings.IndexByte(auth, ']')
		if end < 0 {
			return nil, errors.New("mysql DSN: missing \"]\" after an IPv6 address")
		}
		host = auth[1:end]
		if after := auth[end+1:]; after != "" {
			if !strings.HasPrefix(after, ":") {
				return nil, fmt.Errorf("mysql DSN: unexpected %q after \"]\"", after)
			}
			port = after[1:]
		}
	} else if i := strings.LastIndexByte(auth, ':'); i >= 0 {
		host, port = auth[:i], auth[i+1:]
	}
	var err error
	if d.Host, err = pctDecode(host); err != nil {
		return nil, fmt.Errorf("mysql DSN: host: %w", err)
	}
	if strings.ContainsAny(d.Host, ":/ ") && !strings.HasPrefix(auth, "[") {
		return nil, fmt.Errorf("mysql DSN: host %q is not a host name or address", d.Host)
	}
	if port != "" {
		p, err := strconv.Atoi(port)
		if err != nil || !allDigits(port) || p < 1 || p > 65535 {
			return nil, fmt.Errorf("mysql DSN: port %q: want a number from 1 to 65535", port)
		}
		d.Port = p
	}
	if d.Database, err = pctDecode(path); err != nil {
		return nil, fmt.Errorf("mysql DSN: database name: %w", err)
	}
	if strings.Contains(d.Database, "/") {
		return nil, fmt.Errorf("mysql DSN: database name %q contains \"/\" (write it %%2F if you mean it)", d.Database)
	}
	if len(d.Database) > 64 {
		return nil, fmt.Errorf("mysql DSN: database name %q is longer than 64 characters", d.Database)
	}
	if query != "" {
		for _, kv := range strings.Split(query, "&") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, fmt.Errorf("mysql DSN: option %q: want name=value", kv)
			}
			if v, err = pctDecode(v); err != nil {
				return nil, fmt.Errorf("mysql DSN: option %s: %w", k, err)
			}
			switch k {
			case "socket":
				d.Socket = v
			case "ssl-ca":
				d.SSLCA = v
			case "ssl-cert":
				d.SSLCert = v
			case "ssl-key":
				d.SSLKey = v
			case "ssl", "ssl-verify-server-cert":
				b, err := strconv.ParseBool(v)
				if err != nil {
					return nil, fmt.Errorf("mysql DSN: option %s=%q: want true or false", k, v)
				}
				if k == "ssl" {
					d.SSL = &b
				} else {
					d.SSLVerifyServerCert = &b
				}
			default:
				return nil, fmt.Errorf("mysql DSN: unknown option %q (known: socket, ssl, ssl-ca, ssl-cert, ssl-key, ssl-verify-server-cert)", k)
			}
		}
	}
	if d.Socket != "" && d.Host != "" {
		return nil, errors.New("mysql DSN: give a host or ?socket=PATH, not both")
	}
	return d, nil
}

// String is the DSN in URL form with the password hidden.
func (d *MyDSN) String() string {
	var b strings.Builder
	b.WriteString("mysql://")
	if d.User != "" || d.HasPass {
		b.WriteString(d.User)
		if d.HasPass {
			b.WriteString(":xxxxx")
		}
		b.WriteByte('@')
	}
	if strings.Contains(d.Host, ":") {
		b.WriteString("[" + d.Host + "]")
	} else {
		b.WriteString(d.Host)
	}
	if d.Port != 0 {
		b.WriteString(":" + strconv.Itoa(d.Port))
	}
	b.WriteString("/" + d.Database)
	if d.Socket != "" {
		b.WriteString("?socket=" + d.Socket)
	}
	return b.String()
}

// url is the DSN in URL form with every part, the password included
// (String hides it): ParseMyDSN reads it back into an equal MyDSN. It is
// for handing a DSN on inside the process (ScratchMySQL), never for
// messages.
func (d *MyDSN) url() string {
	var b strings.Builder
	b.WriteString("mysql://")
	if d.User != "" || d.HasPass {
		b.WriteString(pctEncode(d.User))
		if d.HasPass {
			b.WriteString(":" + pctEncode(d.Password))
		}
		b.WriteByte('@')
	}
	if strings.ContainsAny(d.Host, ":/ ") {
		b.WriteString("[" + pctEncode(d.Host) + "]")
	} else {
		b.WriteString(pctEncode(d.Host))
	}
	if d.Port != 0 {
		b.WriteString(":" + strconv.Itoa(d.Port))
	}
	b.WriteString("/" + pctEncode(d.Database))
	var q []string
	opt := func(k, v string) {
		if v != "" {
			q = append(q, k+"="+pctEncode(v))
		}
	}
	boolOpt := func(k string, v *bool) {
		if v != nil {
			q = append(q, k+"="+strconv.FormatBool(*v))
		}
	}
	opt("socket", d.Socket)
	boolOpt("ssl", d.SSL)
	opt("ssl-ca", d.SSLCA)
	opt("ssl-cert", d.SSLCert)
	opt("ssl-key", d.SSLKey)
	boolOpt("ssl-verify-server-cert", d.SSLVerifyServerCert)
	if len(q) > 0 {
		b.WriteString("?" + strings.Join(q, "&"))
	}
	return b.String()
}

// pctEncode percent-encodes the bytes ParseMyDSN would read as structure
// ('%', ':', '@', '/', '?', '&', '=', '[', ']', '#'), spaces and control
// characters; the rest stays as it is.
func pctEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == 0x7f || strings.IndexByte("%:@/?&=[]#", c) >= 0 {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// optionFile is the [client] section carrying the connection parameters.
func (d *MyDSN) optionFile() []byte {
	var b strings.Builder
	b.WriteString("[client]\n")
	put := func(k, v string) {
		b.WriteString(k)
		b.WriteString("=\"")
		b.WriteString(escapeOption(v))
		b.WriteString("\"\n")
	}
	if d.User != "" {
		put("user", d.User)
	}
	if d.HasPass {
		put("password", d.Password)
	}
	if d.Host != "" {
		put("host", d.Host)
		// A host of "localhost" means the socket to the client library;
		// asking for TCP keeps "host" meaning what it says.
		put("protocol", "tcp")
	}
	if d.Port != 0 {
		put("port", strconv.Itoa(d.Port))
	}
	if d.Socket != "" {
		put("socket", d.Socket)
		put("protocol", "socket")
	}
	if d.SSL != nil {
		if *d.SSL {
			b.WriteString("ssl\n")
		} else {
			b.WriteString("skip-ssl\n")
		}
	}
	if d.SSLCA != "" {
		put("ssl-ca", d.SSLCA)
	}
	if d.SSLCert != "" {
		put("ssl-cert", d.SSLCert)
	}
	if d.SSLKey != "" {
		put("ssl-key", d.SSLKey)
	}
	if d.SSLVerifyServerCert != nil {
		if *d.SSLVerifyServerCert {
			b.WriteString("ssl-verify-server-cert\n")
		} else {
			b.WriteString("skip-ssl-verify-server-cert\n")
		}
	}
	return []byte(b.String())
}

// escapeOption escapes a value for a double-quoted option-file value.
func escapeOption(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	return r.Replace(v)
}
