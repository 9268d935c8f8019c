package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	smtpd "github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/config"
)

// smtpMode is how the test server offers TLS.
type smtpMode int

const (
	offerSTARTTLS smtpMode = iota // STARTTLS on a plain port
	implicitTLS                   // TLS from the first byte
	noTLS                         // no TLS at all
)

// mailServer is an SMTP server on 127.0.0.1 (go-smtp) that accepts AUTH
// PLAIN for one user and records what it receives.
type mailServer struct {
	addr     string
	user     string
	password string
	pool     *x509.CertPool // trusts the server's certificate
	mechs    []string       // offered; default PLAIN

	mu       sync.Mutex
	mails    []receivedMail
	authSeen []string // usernames of AUTH attempts, accepted or not
	mailSeen int      // MAIL FROM commands
}

type receivedMail struct {
	from   string
	to     []string
	data   []byte
	tls    bool
	authAs string
}

// startMailServer serves mode on a loopback port. insecureAuth offers AUTH
// without TLS (what an attacker stripping STARTTLS would do).
func startMailServer(t *testing.T, mode smtpMode, user, password string, insecureAuth bool) *mailServer {
	t.Helper()
	cert, pool := testCert(t)
	ms := &mailServer{user: user, password: password, pool: pool}
	srv := smtpd.NewServer(smtpd.BackendFunc(func(c *smtpd.Conn) (smtpd.Session, error) {
		return &mailSession{srv: ms, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = insecureAuth
	srv.MaxMessageBytes = 1 << 20
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	switch mode {
	case offerSTARTTLS:
		srv.TLSConfig = tlsConfig
	case implicitTLS:
		l = tls.NewListener(l, tlsConfig)
	}
	ms.addr = l.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ms
}

func (ms *mailServer) received() []receivedMail {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return append([]receivedMail(nil), ms.mails...)
}

type mailSession struct {
	srv    *mailServer
	conn   *smtpd.Conn
	authAs string
	from   string
	to     []string
}

func (s *mailSession) AuthMechanisms() []string {
	if s.srv.mechs != nil {
		return s.srv.mechs
	}
	return []string{sasl.Plain}
}

func (s *mailSession) Auth(mech string) (sasl.Server, error) {
	check := func(username, password string) error {
		s.srv.mu.Lock()
		s.srv.authSeen = append(s.srv.authSeen, username)
		s.srv.mu.Unlock()
		if username != s.srv.user || password != s.srv.password {
			return smtpd.ErrAuthFailed
		}
		s.authAs = username
		return nil
	}
	if mech == sasl.Login {
		return &loginServer{check: check}, nil
	}
	return sasl.NewPlainServer(func(_, username, password string) error { return check(username, password) }), nil
}

// loginServer is the server side of AUTH LOGIN (go-sasl has only the
// client): it asks for the username, then the password.
type loginServer struct {
	step     int
	username string
	check    func(username, password string) error
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	l.step++
	switch l.step {
	case 1:
		return []byte("Username:"), false, nil
	case 2:
		l.username = string(response)
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.username, string(response))
	}
}

func (s *mailSession) Mail(from string, _ *smtpd.MailOptions) error {
	s.srv.mu.Lock()
	s.srv.mailSeen++
	s.srv.mu.Unlock()
	if s.srv.user != "" && s.authAs == "" {
		return smtpd.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *mailSession) Rcpt(to string, _ *smtpd.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.srv.mu.Lock()
	s.srv.mails = append(s.srv.mails, receivedMail{from: s.from, to: s.to, data: b, tls: isTLS, authAs: s.authAs})
	s.srv.mu.Unlock()
	return nil
}

func (s *mailSession) Reset()        { s.from, s.to = "", nil }
func (s *mailSession) Logout() error { return nil }

var _ smtpd.AuthSession = (*mailSession)(nil)

// emailSender builds the email sender of a channel to ms, trusting the
// test certificate's issuer when trust is set, on the fixed clock.
func emailSender(t *testing.T, ms *mailServer, c config.EmailChannel, getenv func(string) string, trust bool) *email {
	t.Helper()
	c.Server = ms.addr
	if c.From == "" {
		c.From = "Bulwark <bulwark@example.net>"
	}
	if c.To == nil {
		c.To = []string{"ops@example.net", "oncall@example.net"}
	}
	s := mustNew(t, config.Channel{Name: "mail", Email: c}, getenv).(*email)
	if trust {
		s.rootCAs = ms.pool
	}
	s.now = func() time.Time { return testTime }
	return s
}

var smtpEnv = env(map[string]string{"SMTP_PASSWORD": "correct horse battery staple"})

// checkMail compares a received mail with what sampleMessage should give.
func checkMail(t *testing.T, got receivedMail) {
	t.Helper()
	if got.from != "bulwark@example.net" {
		t.Errorf("envelope sender %q, want bulwark@example.net", got.from)
	}
	if diff := cmp.Diff([]string{"ops@example.net", "oncall@example.net"}, got.to); diff != "" {
		t.Errorf("envelope recipients (-want +got):\n%s", diff)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(got.data))
	if err != nil {
		t.Fatalf("received mail does not parse: %v\n%s", err, got.data)
	}
	dec := new(mime.WordDecoder)
	subject, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "[Bulwark] CRITICAL Disk almost full on web1"; subject != want {
		t.Errorf("Subject %q, want %q", subject, want)
	}
	from, err := msg.Header.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Address != "bulwark@example.net" || from[0].Name != "Bulwark" {
		t.Errorf("From %v (%v), want Bulwark <bulwark@example.net>", from, err)
	}
	to, err := msg.Header.AddressList("To")
	if err != nil || len(to) != 2 || to[0].Address != "ops@example.net" || to[1].Address != "oncall@example.net" {
		t.Errorf("To %v (%v)", to, err)
	}
	date, err := msg.Header.Date()
	if err != nil || !date.Equal(testTime) {
		t.Errorf("Date %v (%v), want %v", date, err, testTime)
	}
	if id := msg.Header.Get("Message-Id"); !regexp.MustCompile(`^<[0-9a-f]{32}@example\.net>$`).MatchString(id) {
		t.Errorf("Message-ID %q, want <32 hex digits@example.net>", id)
	}
	for k, want := range map[string]string{
		"Auto-Submitted": "auto-generated", "X-Bulwark-State": "firing", "X-Bulwark-Severity": "critical",
		"X-Bulwark-Alert": "disk-full/web1:/", "X-Mailer": "bulwark",
	} {
		if got := msg.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if ct := msg.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want text/plain", ct)
	}
	var body io.Reader = msg.Body
	switch cte := strings.ToLower(msg.Header.Get("Content-Transfer-Encoding")); cte {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "", "7bit", "8bit":
	default:
		t.Fatalf("unexpected Content-Transfer-Encoding %q", cte)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	gotBody := strings.ReplaceAll(string(b), "\r\n", "\n")
	wantBody := `filesystem_used_percent{mountpoint="/"} is 93.2, above 90.
Free some space or grow the volume.

State:    firing
Severity: critical
Alert:    disk-full/web1:/
Rule:     disk-full
Host:     web1
Time:     2026-11-21T11:58:00Z
Labels:
  host=web1
  mountpoint=/
Links:
  Console: https://bulwark.example.net/alerts/disk-full

-- 
Sent by Bulwark.
`
	if diff := cmp.Diff(wantBody, gotBody); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}

func TestEmailSTARTTLSWithAuth(t *testing.T) {
	ms := startMailServer(t, offerSTARTTLS, "bulwark", "correct horse battery staple", false)
	s := emailSender(t, ms, config.EmailChannel{Username: "bulwark", Password: config.EnvSecret("SMTP_PASSWORD")}, smtpEnv, true)
	if err := s.Send(context.Background(), sampleMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := ms.received()
	if len(got) != 1 {
		t.Fatalf("server received %d mails, want 1", len(got))
	}
	if !got[0].tls || got[0].authAs != "bulwark" {
		t.Errorf("mail received with tls=%v as %q, want over TLS as bulwark", got[0].tls, got[0].authAs)
	}
	checkMail(t, got[0])
}

func TestEmailImplicitTLS(t *testing.T) {
	ms := startMailServer(t, implicitTLS, "bulwark", "correct horse battery staple", false)
	s := emailSender(t, ms, config.EmailChannel{TLS: "tls", Username: "bulwark", Password: config.EnvSecret("SMTP_PASSWORD")}, smtpEnv, true)
	if err := s.Send(context.Background(), sampleMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := ms.received()
	if len(got) != 1 || !got[0].tls || got[0].authAs != "bulwark" {
		t.Fatalf("received %+v, want one mail over TLS as bulwark", got)
	}
	checkMail(t, got[0])
}

func TestEmailLoginWhenPlainNotOffered(t *testing.T) {
	ms := startMailServer(t, offerSTARTTLS, "bulwark", "correct horse battery staple", false)
	ms.mechs = []string{sasl.Login}
	s := emailSender(t, ms, config.EmailChannel{Username: "bulwark", Password: config.EnvSecret("SMTP_PASSWORD")}, smtpEnv, true)
	if err := s.Send(context.Background(), sampleMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if got := ms.received(); len(got) != 1 || got[0].authAs != "bulwark" {
		t.Fatalf("received %+v, want one mail authenticated with LOGIN", got)
	}
}

func TestEmailAuthRejected(t *testing.T) {
	ms := startMailServer(t, offerSTARTTLS, "bulwark", "the real password", false)
	s := emailSender(t, ms, config.EmailChannel{Username: "bulwark", Password: config.EnvSecret("SMTP_PASSWORD")}, smtpEnv, true)
	err := s.Send(context.Background(), sampleMessage())
	if err == nil {
		t.Fatal("Send succeeded with a wrong password")
	}
	for _, want := range []string{"authentication", "bulwark", "refused", "535", ms.addr} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q should mention %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "correct horse") {
		t.Errorf("error %q reveals the password", err)
	}
	if n := len(ms.received()); n != 0 {
		t.Errorf("server received %d mails", n)
	}
}

func TestEmailSTARTTLSRequiredNotOffered(t *testing.T) {
	// A server (or a man in the middle stripping STARTTLS) that does not
	// offer STARTTLS but offers AUTH in clear: the sender must refuse, and
	// send neither the password nor the mail.
	ms := startMailServer(t, noTLS, "bulwark", "correct horse battery staple", true)
	s := emailSender(t, ms, config.EmailChannel{Username: "bulwark", Password: config.EnvSecret("SMTP_PASSWORD")}, smtpEnv, true)
	err := s.Send(context.Background(), sampleMessage())
	if !errors.Is(err, ErrSTARTTLSUnavailable) || !errors.Is(err, ErrPermanent) {
		t.Fatalf("Send = %v, want ErrSTARTTLSUnavailable (permanent)", err)
	}
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if len(ms.authSeen) != 0 || ms.mailSeen != 0 || len(ms.mails) != 0 {
		t.Fatalf("server saw AUTH %v, %d MAIL, %d mails: want nothing sent in clear", ms.authSeen, ms.mailSeen, len(ms.mails))
	}
}

func TestEmailUntrustedCertificate(t *testing.T) {
	ms := startMailServer(t, offerSTARTTLS, "", "", false)
	s := emailSender(t, ms, config.EmailChannel{}, nil, false)
	err := s.Send(context.Background(), sampleMessage())
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Send to a self-signed server = %v, want a certificate error", err)
	}
	if n := len(ms.received()); n != 0 {
		t.Fatalf("server received %d mails", n)
	}

	// insecure_skip_verify accepts it.
	s = emailSender(t, ms, config.EmailChannel{InsecureSkipVerify: true}, nil, false)
	if err := s.Send(context.Background(), sampleMessage()); err != nil {
		t.Fatalf("Send with insecure_skip_verify: %v", err)
	}
	if n := len(ms.received()); n != 1 {
		t.Fatalf("server received %d mails, want 1", n)
	}
}

func TestEmailPlain(t *testing.T) {
	ms := startMailServer(t, noTLS, "", "", false)
	s := emailSender(t, ms, config.EmailChannel{TLS: "none"}, nil, false)
	if err := s.Send(context.Background(), sampleMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := ms.received()
	if len(got) != 1 || got[0].tls {
		t.Fatalf("received %+v, want one mail in clear", got)
	}
	checkMail(t, got[0])
}

func TestEmailContextDeadline(t *testing.T) {
	// A server that accepts the connection and never greets: Send gives
	// up when ctx expires.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	s, err := New(config.Channel{Name: "mail", Email: config.EmailChannel{Server: l.Addr().String(), From: "a@example.net", To: []string{"b@example.net"}}}, nil, noFiles)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = s.Send(ctx, sampleMessage())
	if err == nil {
		t.Fatal("Send succeeded against a silent server")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Send = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Send took %s after a 200ms deadline", d)
	}
	select {
	case c := <-accepted:
		c.Close()
	default:
	}
}
