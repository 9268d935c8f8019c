package check

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
)

func newTCP(t config.TCPCheck) func(context.Context) outcome {
	return func(ctx context.Context) outcome {
		start := time.Now()
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", t.Address)
		if err != nil {
			return fail("connect to %s: %s", t.Address, errText(err))
		}
		took := time.Since(start)
		conn.Close()
		return pass("%s accepts connections (%s)", t.Address, ms(took)).with("latency_seconds", took.Seconds())
	}
}

// MaxBanner bounds the SSH identification line read (RFC 4253 says 255).
const MaxBanner = 255

func newSSH(s config.SSHCheck) func(context.Context) outcome {
	addr := s.Address
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(strings.Trim(addr, "[]"), "22")
	}
	return func(ctx context.Context) outcome {
		start := time.Now()
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return fail("connect to %s: %s", addr, errText(err))
		}
		defer conn.Close()
		if dl, ok := ctx.Deadline(); ok {
			conn.SetDeadline(dl)
		}
		// A server may send other lines before its identification
		// (RFC 4253 4.2); read a few, each bounded.
		r := bufio.NewReaderSize(conn, MaxBanner+2)
		for range 8 {
			line, err := r.ReadSlice('\n')
			if err != nil && !(errors.Is(err, bufio.ErrBufferFull) && len(line) > 0) {
				return fail("%s sent no SSH banner: %s", addr, errText(err))
			}
			banner := strings.TrimRight(string(line), "\r\n")
			if !strings.HasPrefix(banner, "SSH-") {
				continue
			}
			took := time.Since(start)
			if s.Contains != "" && !strings.Contains(banner, s.Contains) {
				return fail("%s says %q, which does not contain %q", addr, banner, s.Contains).with("latency_seconds", took.Seconds())
			}
			return pass("%s (%s)", banner, ms(took)).with("latency_seconds", took.Seconds())
		}
		return fail("%s sent no SSH banner in its first lines", addr)
	}
}

func newTLS(t config.TLSCheck, o Options) func(context.Context) outcome {
	window := t.Expiry.D()
	if window == 0 {
		window = config.DefaultCertExpiry
	}
	name := t.ServerName
	if name == "" {
		name, _, _ = net.SplitHostPort(t.Address)
	}
	return func(ctx context.Context) outcome {
		d := &tls.Dialer{Config: &tls.Config{ServerName: name, InsecureSkipVerify: true, MinVersion: tls.VersionTLS10}} //nolint:gosec // verified below, so that expiry is reported even when the chain fails
		conn, err := d.DialContext(ctx, "tcp", t.Address)
		if err != nil {
			return fail("TLS handshake with %s: %s", t.Address, errText(err))
		}
		defer conn.Close()
		st := conn.(*tls.Conn).ConnectionState()
		if len(st.PeerCertificates) == 0 {
			return fail("%s sent no certificate", t.Address)
		}
		leaf := st.PeerCertificates[0]
		left := leaf.NotAfter.Sub(o.Now())
		msg, ok := expiry(leaf.NotAfter, o.Now(), window)
		oc := pass("%s for %s: %s", tls.VersionName(st.Version), subject(leaf), msg)
		if !ok {
			oc = fail("%s: %s", t.Address, msg)
		} else if !t.InsecureSkipVerify {
			if err := verify(st.PeerCertificates, name, o.Now()); err != nil {
				oc = fail("%s: the certificate does not verify: %v", t.Address, err)
			}
		}
		return oc.with("cert_expiry_seconds", left.Seconds())
	}
}

func subject(c *x509.Certificate) string {
	if len(c.DNSNames) > 0 {
		return strings.Join(c.DNSNames[:min(3, len(c.DNSNames))], ", ")
	}
	return c.Subject.CommonName
}

func verify(chain []*x509.Certificate, name string, now time.Time) error {
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{DNSName: name, Intermediates: inter, CurrentTime: now})
	return err
}

func newDNS(d config.DNSCheck) func(context.Context) outcome {
	typ := d.Type
	if typ == "" {
		typ = "A"
	}
	r := net.DefaultResolver
	if d.Server != "" {
		r = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, d.Server)
		}}
	}
	return func(ctx context.Context) outcome {
		start := time.Now()
		var answers []string
		var err error
		switch typ {
		case "A", "AAAA":
			network := map[string]string{"A": "ip4", "AAAA": "ip6"}[typ]
			var ips []net.IP
			ips, err = r.LookupIP(ctx, network, d.Name)
			for _, ip := range ips {
				answers = append(answers, ip.String())
			}
		case "CNAME":
			var c string
			c, err = r.LookupCNAME(ctx, d.Name)
			answers = []string{c}
		case "MX":
			var mx []*net.MX
			mx, err = r.LookupMX(ctx, d.Name)
			for _, m := range mx {
				answers = append(answers, m.Host)
			}
		case "TXT":
			answers, err = r.LookupTXT(ctx, d.Name)
		case "NS":
			var ns []*net.NS
			ns, err = r.LookupNS(ctx, d.Name)
			for _, n := range ns {
				answers = append(answers, n.Host)
			}
		default:
			return unknown("record type %s is not supported", typ)
		}
		took := time.Since(start)
		if err != nil {
			return fail("%s %s: %s", typ, d.Name, errText(err))
		}
		if len(answers) == 0 {
			return fail("%s %s: no answer", typ, d.Name)
		}
		shown := strings.Join(answers[:min(5, len(answers))], ", ")
		if len(d.Expect) > 0 && !slices.ContainsFunc(answers, func(a string) bool {
			return slices.ContainsFunc(d.Expect, func(e string) bool { return strings.EqualFold(strings.TrimSuffix(a, "."), strings.TrimSuffix(e, ".")) })
		}) {
			return fail("%s %s is %s, none of %s", typ, d.Name, shown, strings.Join(d.Expect, ", ")).with("latency_seconds", took.Seconds())
		}
		return pass("%s %s is %s (%s)", typ, d.Name, shown, ms(took)).with("latency_seconds", took.Seconds())
	}
}
