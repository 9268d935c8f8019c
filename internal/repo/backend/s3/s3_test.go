package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/backendtest"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/retry"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/s3/s3test"
)

// config returns a Config for prefix in bucket on s, plain http to
// loopback.
func config(s *s3test.Server, bucket, prefix string) Config {
	return Config{
		Location:        "s3:http://" + s.Host + "/" + bucket + "/" + prefix,
		AccessKeyID:     s.AccessKey,
		SecretAccessKey: s.SecretKey,
		Insecure:        true,
	}
}

func create(t *testing.T, c Config) *Backend {
	t.Helper()
	b, err := Create(context.Background(), c)
	if err != nil {
		t.Fatalf("Create(%s): %v", c.Location, err)
	}
	return b
}

func TestConformance(t *testing.T) {
	s := s3test.Start(t)
	bucket := s.Bucket(t, false)
	n := 0
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		n++
		return create(t, config(s, bucket, fmt.Sprintf("repo%d/sub", n)))
	})
}

// TestConformanceRetry runs the suite through retry.New, as the command
// line uses the backend.
func TestConformanceRetry(t *testing.T) {
	s := s3test.Start(t)
	bucket := s.Bucket(t, false)
	n := 0
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		n++
		return retry.New(create(t, config(s, bucket, fmt.Sprintf("r%d", n))), retry.Policy{Attempts: 3, Initial: time.Millisecond})
	})
}

// TestConformanceBucketRoot puts a repository at the root of a bucket.
func TestConformanceBucketRoot(t *testing.T) {
	s := s3test.Start(t)
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		c := config(s, s.Bucket(t, false), "")
		c.Location = strings.TrimSuffix(c.Location, "/")
		return create(t, c)
	})
}

func id(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// TestLayout checks the object keys against the documented layout, and
// that List reports foreign keys by their relative path.
func TestLayout(t *testing.T) {
	s := s3test.Start(t)
	bucket := s.Bucket(t, false)
	b := create(t, config(s, bucket, "a/b"))
	ctx := context.Background()
	data := []byte("pack")
	pid := id(data)
	for _, h := range []backend.Handle{
		{Type: backend.ConfigFile},
		{Type: backend.KeyFile, Name: "k1"},
		{Type: backend.PackFile, Name: pid},
		{Type: backend.ParityFile, Name: pid},
		{Type: backend.LockFile, Name: "l1"},
	} {
		if err := b.Save(ctx, h, data); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	for obj := range s.Client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		keys = append(keys, obj.Key)
	}
	want := []string{"a/b/config", "a/b/data/" + pid[:2] + "/" + pid, "a/b/keys/k1", "a/b/locks/l1", "a/b/parity/" + pid[:2] + "/" + pid}
	if fmt.Sprint(keys) != fmt.Sprint(want) {
		t.Fatalf("keys:\n got %v\nwant %v", keys, want)
	}
	// Foreign keys, put there by something else.
	other := id([]byte("other"))
	foreign := map[string]string{
		"a/b/data/README":                  "README",
		"a/b/data/zz/" + other:             "zz/" + other,
		"a/b/data/" + pid[:2] + "/x/y":     pid[:2] + "/x/y",
		"a/b/data/" + other:                other,
		"a/b/snapshots/dir/s1":             "dir/s1",
		"a/b/keys/.hidden":                 ".hidden",
		"a/b/datax/" + pid[:2] + "/" + pid: "",
	}
	for k := range foreign {
		if _, err := s.Client.PutObject(ctx, bucket, k, bytes.NewReader(nil), 0, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]bool{}
	for _, typ := range []backend.Type{backend.PackFile, backend.SnapshotFile, backend.KeyFile} {
		if err := b.List(ctx, typ, func(fi backend.FileInfo) error {
			got[string(typ)+":"+fi.Name] = true
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	wantList := map[string]bool{"data:" + pid: true, "keys:k1": true}
	for k, rel := range foreign {
		if rel != "" {
			typ := strings.Split(strings.TrimPrefix(k, "a/b/"), "/")[0]
			wantList[typ+":"+rel] = true
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(wantList) {
		t.Fatalf("List:\n got %v\nwant %v", got, wantList)
	}
}

func TestCreateOpen(t *testing.T) {
	s := s3test.Start(t)
	ctx := context.Background()
	bucket := s.Bucket(t, false)

	// Open of an empty prefix: not a repository.
	if _, err := Open(ctx, config(s, bucket, "r")); !errors.Is(err, backend.ErrNotExist) {
		t.Fatalf("Open of an empty prefix: err = %v, want ErrNotExist", err)
	}
	b := create(t, config(s, bucket, "r"))
	if err := b.Save(ctx, backend.Handle{Type: backend.ConfigFile}, []byte("cfg")); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, config(s, bucket, "r")); err != nil {
		t.Fatalf("Open after the config was saved: %v", err)
	}
	// Create again on a repository: allowed (Save of config decides).
	create(t, config(s, bucket, "r"))
	// Create on a prefix with foreign keys: refused.
	if _, err := s.Client.PutObject(ctx, bucket, "junk/photo.jpg", bytes.NewReader([]byte("x")), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := Create(ctx, config(s, bucket, "junk"))
	if err == nil || !strings.Contains(err.Error(), "not a repository") {
		t.Fatalf("Create on a prefix with foreign keys: err = %v, want a refusal", err)
	}
	// A missing bucket: a final error that says to create it.
	_, err = Create(ctx, config(s, "no-such-bucket", "r"))
	if err == nil || !strings.Contains(err.Error(), "does not exist") || !retry.IsPermanent(ctx, err) {
		t.Fatalf("Create in a missing bucket: err = %v, want a final \"does not exist\"", err)
	}
}

func TestWrongCredentials(t *testing.T) {
	s := s3test.Start(t)
	ctx := context.Background()
	bucket := s.Bucket(t, false)
	for _, tc := range []struct{ name, access, secret string }{
		{"unknown access key", "nobody", s.SecretKey},
		{"wrong secret", s.AccessKey, "wrong-secret-key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := config(s, bucket, "r")
			c.AccessKeyID, c.SecretAccessKey = tc.access, tc.secret
			_, err := Create(ctx, c)
			if err == nil {
				t.Fatal("Create with wrong credentials succeeded")
			}
			if !retry.IsPermanent(ctx, err) {
				t.Errorf("err = %v: not final, would be retried", err)
			}
			if !strings.Contains(err.Error(), "credentials") && !strings.Contains(err.Error(), "refused access") {
				t.Errorf("err = %v: does not say the credentials were refused", err)
			}
		})
	}
}

func TestTLSRequired(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		loc      string
		insecure bool
		want     string // substring of the error
	}{
		{"s3:http://127.0.0.1:9/b-1/p", false, "plain http:// is refused"},
		{"s3:http://example.com:9/b-1/p", true, "only to a loopback address"},
		{"s3:http://10.0.0.1/b-1/p", true, "only to a loopback address"},
		{"s3:http://localhost.example.com/b-1/p", true, "only to a loopback address"},
	}
	for _, tc := range tests {
		t.Run(tc.loc, func(t *testing.T) {
			_, err := Open(ctx, Config{Location: tc.loc, Insecure: tc.insecure, AccessKeyID: "a", SecretAccessKey: "b"})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open: err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestServerDown: a server that does not answer gives transient errors,
// which retry.New retries and then reports clearly.
func TestServerDown(t *testing.T) {
	s := s3test.Start(t)
	ctx := context.Background()
	bucket := s.Bucket(t, false)
	b := create(t, config(s, bucket, "r"))
	s.Stop()
	var attempts atomic.Int32
	rb := retry.New(b, retry.Policy{Attempts: 4, Initial: time.Millisecond, Max: 2 * time.Millisecond,
		Notify: func(string, backend.Handle, int, error, time.Duration) { attempts.Add(1) }})
	err := rb.Save(ctx, backend.Handle{Type: backend.SnapshotFile, Name: "s1"}, []byte("x"))
	if err == nil {
		t.Fatal("Save with the server down succeeded")
	}
	if got := attempts.Load(); got != 3 {
		t.Errorf("retries = %d, want 3 (4 attempts)", got)
	}
	if !strings.Contains(err.Error(), "gave up after 4 attempts") || !strings.Contains(err.Error(), "snapshots/s1") {
		t.Errorf("err = %v: want the object and the attempts named", err)
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("err = %v: want the cause (connection refused)", err)
	}
}

// faultTransport cuts the connection of the first n requests with a body
// after part of the body was sent, and of the first n responses after part
// of their body was read.
type faultTransport struct {
	rt        http.RoundTripper
	putFaults atomic.Int32
	getFaults atomic.Int32
}

func (f *faultTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPut && r.ContentLength > 1<<20 && f.putFaults.Add(-1) >= 0 {
		// Send half the body, then fail like a dropped connection.
		r2 := r.Clone(r.Context())
		r2.Body = io.NopCloser(io.MultiReader(io.LimitReader(r.Body, r.ContentLength/2), errReader{}))
		_, err := f.rt.RoundTrip(r2)
		if err == nil {
			err = errors.New("unexpected success")
		}
		return nil, fmt.Errorf("injected: connection reset mid-upload: %w", err)
	}
	resp, err := f.rt.RoundTrip(r)
	if err == nil && r.Method == http.MethodGet && resp.ContentLength > 1<<20 && f.getFaults.Add(-1) >= 0 {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(io.LimitReader(resp.Body, resp.ContentLength/2), errReader{}), resp.Body}
	}
	return resp, err
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) {
	return 0, errors.New("connection reset by peer (injected)")
}

// TestDroppedConnection: a 16 MiB upload and download cut half way are
// retried as a whole and succeed; nothing partial is stored.
func TestDroppedConnection(t *testing.T) {
	s := s3test.Start(t)
	ctx := context.Background()
	bucket := s.Bucket(t, false)
	ft := &faultTransport{rt: http.DefaultTransport.(*http.Transport).Clone()}
	ft.putFaults.Store(2)
	ft.getFaults.Store(2)
	c := config(s, bucket, "r")
	c.Transport = ft
	b := create(t, c)
	rb := retry.New(b, retry.Policy{Attempts: 5, Initial: time.Millisecond})
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB
	h := backend.Handle{Type: backend.PackFile, Name: id(data)}
	if err := rb.Save(ctx, h, data); err != nil {
		t.Fatalf("Save of 16 MiB through two dropped connections: %v", err)
	}
	if n := ft.putFaults.Load(); n >= 0 {
		t.Fatalf("only %d faults were injected into uploads, want 2", 2-n-1)
	}
	got, err := rb.Load(ctx, h, 0, 0)
	if err != nil {
		t.Fatalf("Load through two dropped connections: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("Load: got %d bytes, not the saved 16 MiB", len(got))
	}
	if n := ft.getFaults.Load(); n >= 0 {
		t.Fatalf("download faults not all injected (%d left)", n+1)
	}
	// Without retries, a cut download is a transient error, never
	// io.ErrUnexpectedEOF (which means a range outside the object).
	ft.getFaults.Store(1)
	_, err = b.Load(ctx, h, 0, 0)
	if err == nil || errors.Is(err, io.ErrUnexpectedEOF) || retry.IsPermanent(ctx, err) {
		t.Fatalf("Load with a cut connection: err = %v, want a transient error", err)
	}
}
