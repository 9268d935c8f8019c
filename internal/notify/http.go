package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/events"
)

// Bounds of one HTTP delivery.
const (
	// maxResponseBytes is the most of an answer's body read (to reuse the
	// connection); the rest is left unread.
	maxResponseBytes = 64 << 10
	// maxSnippetBytes is how much of an error answer an error quotes.
	maxSnippetBytes = 256
	// httpTimeout bounds a request even under a context without deadline.
	httpTimeout = time.Minute
)

// userAgent identifies Bulwark's requests.
const userAgent = "bulwark"

// newHTTPClient returns the client of one channel: its own connection
// pool, TLS 1.2 at least, and redirects not followed (a redirect would
// turn the POST into a GET and send the request, and any credential in
// its headers, somewhere nobody configured).
func newHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	return &http.Client{
		Transport:     tr,
		Timeout:       httpTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// poster posts JSON bodies to one URL.
type poster struct {
	client *http.Client
	url    string // the real URL, with its credentials
	shown  string // the URL as errors show it
	red    redactor
}

// post sends body with header h and judges the answer: 2xx is success;
// 408, 425, 429 and 5xx are worth retrying; any other status is permanent.
// Errors are redacted.
func (p *poster) post(ctx context.Context, body []byte, h http.Header) error {
	return p.red.Error(p.do(ctx, body, h))
}

func (p *poster) do(ctx context.Context, body []byte, h http.Header) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return permanent(fmt.Errorf("POST %s: %w", p.shown, urlError(err, p.shown)))
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", p.shown, urlError(err, p.shown))
	}
	snippet, readErr := readSnippet(resp.Body)
	if cerr := resp.Body.Close(); readErr == nil {
		readErr = cerr
	}
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		// The destination said yes; a body cut short afterwards does not
		// undo that.
		return nil
	case code >= 300 && code < 400:
		return permanent(fmt.Errorf("POST %s: %s: redirects are not followed; configure the final address", p.shown, resp.Status))
	}
	err = fmt.Errorf("POST %s: %s", p.shown, resp.Status)
	if snippet != "" {
		err = fmt.Errorf("%w: %s", err, snippet)
	} else if readErr != nil {
		err = fmt.Errorf("%w (reading the answer: %v)", err, readErr)
	}
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusTooEarly, code == http.StatusTooManyRequests, code >= 500:
		return err
	}
	return permanent(err)
}

// readSnippet reads at most maxResponseBytes of r and returns the first
// maxSnippetBytes as one line of text.
func readSnippet(r io.Reader) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxResponseBytes))
	if len(b) > maxSnippetBytes {
		b = b[:maxSnippetBytes]
	}
	s := strings.TrimSpace(events.OneLine(string(b)))
	return clip(s, maxSnippetBytes), err
}
