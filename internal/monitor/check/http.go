package check

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/monitor/cond"
	"github.com/bulwarkhq/bulwark/internal/redact"
)

// MaxBody is the most of a response body read for contains, regex and
// JSON conditions.
const MaxBody = cond.MaxDocument

// Transports are the HTTP transports HTTP checks share, so that a
// thousand checks of one server keep a few connections open rather than
// dialling a thousand times a minute. Checks that skip certificate
// verification use their own transport.
type Transports struct {
	verify, insecure *http.Transport
}

// NewTransports returns fresh transports.
func NewTransports() *Transports {
	mk := func(insecure bool) *http.Transport {
		return &http.Transport{
			Proxy:               nil, // a check measures the server, not a proxy
			DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:     &tls.Config{InsecureSkipVerify: insecure, MinVersion: tls.VersionTLS12}, //nolint:gosec // the check's own setting
			MaxIdleConns:        4096,
			MaxIdleConnsPerHost: 1024,
			IdleConnTimeout:     2 * time.Minute,
			ForceAttemptHTTP2:   true,
		}
	}
	return &Transports{verify: mk(false), insecure: mk(true)}
}

// CloseIdle closes the transports' idle connections.
func (t *Transports) CloseIdle() {
	t.verify.CloseIdleConnections()
	t.insecure.CloseIdleConnections()
}

func newHTTP(h config.HTTPCheck, o Options) (func(context.Context) outcome, error) {
	method := h.Method
	if method == "" {
		method = http.MethodGet
	}
	hdr := http.Header{}
	for _, line := range h.Headers {
		k, v, _ := strings.Cut(line, ":")
		hdr.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	if hdr.Get("User-Agent") == "" {
		hdr.Set("User-Agent", "bulwark-monitor")
	}
	var re *regexp.Regexp
	if h.Regex != "" {
		var err error
		if re, err = regexp.Compile(h.Regex); err != nil {
			return nil, fmt.Errorf("http.regex: %w", err)
		}
	}
	var jc *cond.JSON
	if h.JSON != "" {
		var err error
		if jc, err = cond.ParseJSON(h.JSON); err != nil {
			return nil, fmt.Errorf("http.json: %w", err)
		}
	}
	tr := o.Transports.verify
	if h.InsecureSkipVerify {
		tr = o.Transports.insecure
	}
	client := &http.Client{Transport: tr, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if !h.FollowRedirects {
			return http.ErrUseLastResponse
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}}
	certExpiry := h.CertExpiry.D()
	if certExpiry == 0 {
		certExpiry = config.DefaultCertExpiry
	}
	readBody := h.Contains != "" || re != nil || jc != nil
	shown := redact.String(h.URL, false)
	return func(ctx context.Context) outcome {
		var body io.Reader
		if h.Body != "" {
			body = strings.NewReader(h.Body)
		}
		req, err := http.NewRequestWithContext(ctx, method, h.URL, body)
		if err != nil {
			return unknown("bad request: %v", err)
		}
		req.Header = hdr.Clone()
		if host := hdr.Get("Host"); host != "" {
			req.Host = host
		}
		start := o.Now()
		resp, err := client.Do(req)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return fail("%s %s: %s", method, shown, strings.ReplaceAll(errText(err), h.URL, shown))
		}
		defer resp.Body.Close()
		var data []byte
		if readBody {
			data, err = io.ReadAll(io.LimitReader(resp.Body, MaxBody))
		} else {
			_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		}
		latency := o.Now().Sub(start)
		if err != nil {
			return fail("%d, then reading the body: %s", resp.StatusCode, errText(err)).with("status_code", float64(resp.StatusCode))
		}
		out := func(oc outcome) outcome {
			oc = oc.with("status_code", float64(resp.StatusCode)).with("latency_seconds", latency.Seconds())
			if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
				oc = oc.with("cert_expiry_seconds", resp.TLS.PeerCertificates[0].NotAfter.Sub(o.Now()).Seconds())
			}
			return oc
		}
		switch {
		case h.Status != 0 && resp.StatusCode != h.Status:
			return out(fail("status %d, want %d", resp.StatusCode, h.Status))
		case h.Status == 0 && (resp.StatusCode < 200 || resp.StatusCode > 399):
			return out(fail("status %d, want 2xx or 3xx", resp.StatusCode))
		case h.Contains != "" && !bytes.Contains(data, []byte(h.Contains)):
			return out(fail("status %d, but the body (%d bytes) does not contain %q", resp.StatusCode, len(data), h.Contains))
		case re != nil && !re.Match(data):
			return out(fail("status %d, but the body (%d bytes) does not match %q", resp.StatusCode, len(data), h.Regex))
		}
		if jc != nil {
			if err := jc.Eval(data); err != nil {
				return out(fail("status %d, but %v", resp.StatusCode, err))
			}
		}
		if h.MaxLatency != 0 && latency > h.MaxLatency.D() {
			return out(fail("status %d in %s, slower than %s", resp.StatusCode, ms(latency), h.MaxLatency))
		}
		if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
			if msg, ok := expiry(resp.TLS.PeerCertificates[0].NotAfter, o.Now(), certExpiry); !ok {
				return out(fail("status %d, but %s", resp.StatusCode, msg))
			}
		}
		return out(pass("status %d in %s", resp.StatusCode, ms(latency)))
	}, nil
}

// expiry says whether a certificate's end is further away than the
// warning window, and in words when it is not.
func expiry(notAfter, now time.Time, window time.Duration) (string, bool) {
	left := notAfter.Sub(now)
	switch {
	case left <= 0:
		return fmt.Sprintf("the certificate expired on %s", notAfter.UTC().Format(time.DateOnly)), false
	case left < window:
		return fmt.Sprintf("the certificate expires in %s, on %s (warning window %s)", days(left), notAfter.UTC().Format(time.DateOnly), config.Duration(window)), false
	}
	return fmt.Sprintf("the certificate expires in %s", days(left)), true
}

func days(d time.Duration) string {
	if d < 48*time.Hour {
		return fmt.Sprintf("%.0f hours", d.Hours())
	}
	return fmt.Sprintf("%.0f days", d.Hours()/24)
}
