package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// APIError is an error answer of the API: its status and its body's
// {"error": {...}}.
type APIError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("the API answered %d %s", e.Status, http.StatusText(e.Status))
	}
	return e.Message
}

// answer is an in-process response of the API.
type answer struct {
	status int
	header http.Header
	body   bytes.Buffer
}

func (a *answer) Header() http.Header { return a.header }
func (a *answer) Write(b []byte) (int, error) {
	if a.status == 0 {
		a.status = http.StatusOK
	}
	return a.body.Write(b)
}
func (a *answer) WriteHeader(code int) {
	if a.status == 0 {
		a.status = code
	}
}

// forwarded are the request headers the API sees as the browser sent them
// (its client address, throttling and the audit trail depend on them).
var forwarded = []string{"User-Agent", "X-Forwarded-For", "Accept-Language"}

// raw calls the API in process as the browser's session (token, when not
// empty, as a bearer credential) and returns its whole answer.
func (c *Console) raw(r *http.Request, token, method, path string, in any) (*answer, error) {
	var body io.Reader = http.NoBody
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(r.Context(), method, path, body)
	if err != nil {
		return nil, err
	}
	req.RemoteAddr, req.Host, req.TLS = r.RemoteAddr, r.Host, r.TLS
	for _, h := range forwarded {
		if v := r.Header.Values(h); len(v) > 0 {
			req.Header[h] = v
		}
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	a := &answer{header: http.Header{}}
	c.o.API.ServeHTTP(a, req)
	if a.status == 0 {
		a.status = http.StatusOK
	}
	return a, nil
}

// call calls the API and decodes a 2xx answer into out (when not nil);
// any other answer is an *APIError.
func (c *Console) call(r *http.Request, token, method, path string, in, out any) error {
	a, err := c.raw(r, token, method, path, in)
	if err != nil {
		return err
	}
	return a.decode(out)
}

func (a *answer) decode(out any) error {
	if a.status >= 300 {
		var e struct {
			Error APIError `json:"error"`
		}
		_ = json.Unmarshal(a.body.Bytes(), &e)
		e.Error.Status = a.status
		return &e.Error
	}
	if out == nil || a.status == http.StatusNoContent {
		return nil
	}
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return fmt.Errorf("the API answered %s, not JSON", ct)
	}
	return json.Unmarshal(a.body.Bytes(), out)
}

// list is the API's page of items.
type list[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}
