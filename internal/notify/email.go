package notify

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"

	"github.com/bulwarkhq/bulwark/internal/config"
)

// The email channel's TLS modes.
const (
	TLSStartTLS = "starttls"
	TLSImplicit = "tls"
	TLSNone     = "none"
)

// smtpTimeout bounds one SMTP session under a context without deadline.
const smtpTimeout = time.Minute

// ErrSTARTTLSUnavailable is matched by the error of an email channel
// requiring STARTTLS (tls: starttls) whose server does not offer it:
// Bulwark refuses to go on in clear, where the message (and a password)
// could be read or changed on the way.
var ErrSTARTTLSUnavailable = errors.New("the SMTP server does not offer STARTTLS")

// email sends mail through an SMTP server.
type email struct {
	server   string // host:port, as shown
	host     string
	port     int
	mode     string
	username string
	password string
	from     string
	to       []string
	insecure bool
	red      redactor

	// Set by tests: the roots trusted instead of the system's, the clock,
	// the randomness of Message-IDs.
	rootCAs *x509.CertPool
	now     func() time.Time
}

var _ Sender = (*email)(nil)

func newEmail(c config.EmailChannel, getenv func(string) string, readFile func(string) ([]byte, error)) (*email, error) {
	host, portStr, err := net.SplitHostPort(c.Server)
	if err != nil || host == "" {
		return nil, fmt.Errorf("email.server: %q is not host:port, e.g. smtp.example.net:587", c.Server)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 {
		return nil, fmt.Errorf("email.server: %q: the port must be a number from 1 to 65535", c.Server)
	}
	e := &email{server: c.Server, host: host, port: port, mode: c.TLS, username: c.Username,
		insecure: c.InsecureSkipVerify, now: time.Now}
	switch e.mode {
	case "":
		e.mode = TLSStartTLS
	case TLSStartTLS, TLSImplicit, TLSNone:
	default:
		return nil, fmt.Errorf("email.tls: %q is not one of starttls, tls, none", c.TLS)
	}
	if e.username != "" && e.mode == TLSNone {
		return nil, errors.New("email.username: authentication over an unencrypted connection would send the password in clear; set tls to starttls or tls")
	}
	if e.username != "" && !c.Password.IsSet() {
		return nil, errors.New("email.password: required when a username is set")
	}
	if e.username != "" {
		if e.password, err = resolveSecret("email.password", c.Password, getenv, readFile); err != nil {
			return nil, err
		}
	}
	from, err := mail.ParseAddress(c.From)
	if err != nil {
		return nil, fmt.Errorf("email.from: %q is not an email address: %w", c.From, err)
	}
	e.from = from.String()
	if len(c.To) == 0 {
		return nil, errors.New("email.to: required: at least one recipient")
	}
	for i, to := range c.To {
		a, err := mail.ParseAddress(to)
		if err != nil {
			return nil, fmt.Errorf("email.to[%d]: %q is not an email address: %w", i, to, err)
		}
		e.to = append(e.to, a.String())
	}
	e.red = newRedactor(e.password)
	return e, nil
}

// subject is the email subject, the Slack text: "[Bulwark] SEVERITY title".
func subject(m Message) string {
	return "[Bulwark] " + strings.ToUpper(string(m.Severity)) + " " + m.Title
}

// emailBody is the plain-text body of m.
func emailBody(m Message) string {
	var b strings.Builder
	if m.Text != "" {
		b.WriteString(m.Text)
		b.WriteString("\n\n")
	}
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%-9s %s\n", k+":", v)
		}
	}
	line("State", string(m.State))
	line("Severity", string(m.Severity))
	line("Alert", m.Alert)
	line("Rule", m.Rule)
	line("Check", m.Check)
	line("Host", m.Host)
	line("Time", m.Time.Format(time.RFC3339))
	if len(m.Labels) > 0 {
		b.WriteString("Labels:\n")
		for _, k := range slices.Sorted(maps.Keys(m.Labels)) {
			fmt.Fprintf(&b, "  %s=%s\n", k, m.Labels[k])
		}
	}
	if len(m.Links) > 0 {
		b.WriteString("Links:\n")
		for _, l := range m.Links {
			if l.Title != "" {
				fmt.Fprintf(&b, "  %s: %s\n", l.Title, l.URL)
			} else {
				fmt.Fprintf(&b, "  %s\n", l.URL)
			}
		}
	}
	b.WriteString("\n-- \nSent by Bulwark.\n")
	return b.String()
}

// messageID returns a fresh Message-ID (without angle brackets) in the
// domain of the sender's address.
func messageID(from string) (string, error) {
	domain := "bulwark.invalid"
	if a, err := mail.ParseAddress(from); err == nil {
		if i := strings.LastIndexByte(a.Address, '@'); i >= 0 && i+1 < len(a.Address) {
			domain = a.Address[i+1:]
		}
	}
	var r [16]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(r[:]) + "@" + domain, nil
}

// Send mails m to the channel's recipients in one SMTP session.
func (e *email) Send(ctx context.Context, m Message) error {
	return e.red.Error(e.send(ctx, m))
}

func (e *email) send(ctx context.Context, m Message) error {
	now := e.now()
	m = m.normalize(now)
	msg, err := e.message(m, now)
	if err != nil {
		return permanent(err)
	}
	timeout := smtpTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
		if timeout <= 0 {
			return fmt.Errorf("email via %s: %w", e.server, context.DeadlineExceeded)
		}
	}
	// The dialer keeps the connection so that ctx can cut a session
	// go-mail would otherwise bound only by its timeout, and so that a
	// connection go-mail leaves open on a failed handshake is closed.
	var (
		mu   sync.Mutex
		conn net.Conn
	)
	// InsecureSkipVerify is the channel's explicit, documented option.
	tlsConfig := &tls.Config{ServerName: e.host, MinVersion: tls.VersionTLS12, RootCAs: e.rootCAs, InsecureSkipVerify: e.insecure}
	dial := func(dctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(dctx, network, addr)
		if err != nil {
			return nil, err
		}
		if e.mode == TLSImplicit {
			tc := tls.Client(c, tlsConfig)
			if err := tc.HandshakeContext(dctx); err != nil {
				_ = c.Close() // a half-open connection; the handshake error is the one to report
				return nil, err
			}
			c = tc
		}
		mu.Lock()
		conn = c
		mu.Unlock()
		return c, nil
	}
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if conn != nil {
			_ = conn.Close() // interrupts the session: ctx is done
		}
	})
	defer stop()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		if conn != nil {
			// Already closed after a QUIT; closing again is harmless.
			_ = conn.Close()
		}
	}()

	opts := []gomail.Option{
		gomail.WithPort(e.port),
		gomail.WithTimeout(timeout),
		gomail.WithTLSConfig(tlsConfig),
		gomail.WithDialContextFunc(dial),
	}
	switch e.mode {
	case TLSStartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case TLSImplicit:
		// The dialer does the handshake; WithSSL keeps go-mail from
		// attempting STARTTLS inside it.
		opts = append(opts, gomail.WithSSL(), gomail.WithTLSPolicy(gomail.NoTLS))
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if e.username != "" {
		opts = append(opts, gomail.WithSMTPAuthCustom(&plainOrLogin{username: e.username, password: e.password, host: e.host}))
	}
	client, err := gomail.NewClient(e.host, opts...)
	if err != nil {
		return permanent(fmt.Errorf("email via %s: %w", e.server, err))
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("email via %s: %w (%v)", e.server, ctx.Err(), err)
		}
		return e.classify(err)
	}
	return nil
}

// classify explains go-mail's error of a failed session.
func (e *email) classify(err error) error {
	s := err.Error()
	switch {
	// go-mail reports a missing STARTTLS with a formatted string only.
	case strings.Contains(s, "does not support STARTTLS"):
		return permanent(fmt.Errorf("email via %s: %w while tls is starttls (required); refusing to send in clear: check the server, or use tls: tls for port 465", e.server, ErrSTARTTLSUnavailable))
	case errors.Is(err, errAuthUnencrypted):
		return permanent(fmt.Errorf("email via %s: %w", e.server, err))
	case strings.Contains(s, "SMTP AUTH failed") || errors.Is(err, errNoAuthMechanism):
		return fmt.Errorf("email via %s: authentication as %q refused: %w", e.server, e.username, err)
	}
	var tlsErr *tls.CertificateVerificationError
	if errors.As(err, &tlsErr) {
		return permanent(fmt.Errorf("email via %s: the server's certificate is not trusted: %w (set insecure_skip_verify only for a server you control)", e.server, err))
	}
	return fmt.Errorf("email via %s: %w", e.server, err)
}

// message builds the mail of m.
func (e *email) message(m Message, now time.Time) (*gomail.Msg, error) {
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	if err := msg.From(e.from); err != nil {
		return nil, fmt.Errorf("email.from: %w", err)
	}
	if err := msg.To(e.to...); err != nil {
		return nil, fmt.Errorf("email.to: %w", err)
	}
	id, err := messageID(e.from)
	if err != nil {
		return nil, fmt.Errorf("email: Message-ID: %w", err)
	}
	msg.SetMessageIDWithValue(id)
	msg.SetDateWithValue(now)
	msg.Subject(subject(m))
	// RFC 3834: an automatic message; out-of-office replies stay away.
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetGenHeader(gomail.HeaderXMailer, userAgent)
	msg.SetGenHeader("X-Bulwark-State", string(m.State))
	msg.SetGenHeader("X-Bulwark-Severity", string(m.Severity))
	if m.Alert != "" {
		msg.SetGenHeader("X-Bulwark-Alert", m.Alert)
	}
	msg.SetBodyString(gomail.TypeTextPlain, emailBody(m))
	return msg, nil
}

var (
	errAuthUnencrypted = errors.New("refusing to authenticate over an unencrypted connection")
	errNoAuthMechanism = errors.New("the server offers neither PLAIN nor LOGIN authentication")
)

// plainOrLogin authenticates with PLAIN, or LOGIN when the server offers
// only that, and never over a connection without TLS (whatever go-mail's
// own checks, which let a "localhost" server through).
type plainOrLogin struct {
	username, password, host string
	next                     smtp.Auth
}

var _ smtp.Auth = (*plainOrLogin)(nil)

// Start implements smtp.Auth.
func (a *plainOrLogin) Start(server *smtp.ServerInfo) (string, []byte, error) {
	if !server.TLS {
		return "", nil, errAuthUnencrypted
	}
	switch {
	case slices.Contains(server.Auth, "PLAIN"):
		a.next = smtp.PlainAuth("", a.username, a.password, a.host, false)
	case slices.Contains(server.Auth, "LOGIN"):
		a.next = smtp.LoginAuth(a.username, a.password, a.host, false)
	default:
		return "", nil, fmt.Errorf("%w (it offers %s)", errNoAuthMechanism, strings.Join(server.Auth, " "))
	}
	return a.next.Start(server)
}

// Next implements smtp.Auth.
func (a *plainOrLogin) Next(fromServer []byte, more bool) ([]byte, error) {
	return a.next.Next(fromServer, more)
}
