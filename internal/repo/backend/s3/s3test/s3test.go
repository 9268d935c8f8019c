// Package s3test starts a real S3 server, versitygw, for tests: the S3
// backend's own tests and the command line's end-to-end tests use it.
//
// The server runs as a subprocess on a random loopback port, stores
// buckets in a temporary directory (its posix backend, with versioning so
// that object lock works), and is killed when the test ends. Its root
// credentials are random per server.
//
// When the versitygw binary is missing, Start fails the test if CI=true
// (CI must run every test) and skips it otherwise; either way the message
// says to run scripts/versitygw.sh.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Version is the versitygw release the tests are written against.
const Version = "v1.8.0"

// Server is a running versitygw.
type Server struct {
	// Host is 127.0.0.1:PORT.
	Host string
	// AccessKey and SecretKey are the server's root credentials.
	AccessKey, SecretKey string
	// Client is a raw minio-go client with the root credentials, for
	// setting up buckets and for playing the attacker.
	Client *minio.Client

	cmd  *exec.Cmd
	done chan struct{}
}

// Binary returns the path of the versitygw binary: $VERSITYGW, else on
// PATH, else in $(go env GOPATH)/bin; "" if there is none.
func Binary() string {
	if p := os.Getenv("VERSITYGW"); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gopath = strings.TrimSpace(string(out))
		}
	}
	for _, dir := range filepath.SplitList(gopath) {
		p := filepath.Join(dir, "bin", "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Start starts a server for t (stopped by t.Cleanup), or skips or fails t
// when versitygw is not installed (see the package comment).
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		msg := "versitygw " + Version + " is not installed: run scripts/versitygw.sh"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a free port can be taken before the server binds it
		s, err := start(bin, dir, attempt)
		if err == nil {
			t.Cleanup(s.stop)
			return s
		}
		lastErr = err
	}
	t.Fatalf("starting versitygw: %v", lastErr)
	return nil
}

func start(bin, dir string, attempt int) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, fmt.Sprintf("data%d", attempt))
	versions := filepath.Join(dir, fmt.Sprintf("versions%d", attempt))
	for _, d := range []string{data, versions} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	s := &Server{
		Host:      fmt.Sprintf("127.0.0.1:%d", port),
		AccessKey: "root" + random(6),
		SecretKey: random(20),
		done:      make(chan struct{}),
	}
	logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("versitygw%d.log", attempt)))
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(bin, "--port", s.Host, "--quiet",
		"posix", "--versioning-dir", versions, data)
	// Credentials through the environment, not argv (visible in ps).
	s.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() {
		s.cmd.Wait()
		logf.Close()
		close(s.done)
	}()
	s.Client, err = minio.New(s.Host, &minio.Options{
		Creds:      credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Region:     "us-east-1",
		MaxRetries: 1,
	})
	if err != nil {
		s.stop()
		return nil, err
	}
	// Wait until it answers S3 requests: at most 15 s.
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err = s.Client.ListBuckets(ctx)
		cancel()
		if err == nil {
			return s, nil
		}
		select {
		case <-s.done:
			log, _ := os.ReadFile(logf.Name())
			return nil, fmt.Errorf("versitygw exited: %s", log)
		case <-time.After(50 * time.Millisecond):
		}
		if i >= 300 {
			s.stop()
			return nil, fmt.Errorf("versitygw on %s did not answer within 15 s: %v", s.Host, err)
		}
	}
}

// Stop kills the server and waits for it to exit (tests of "server down"
// call it early; t.Cleanup calls it again harmlessly).
func (s *Server) Stop() { s.stop() }

func (s *Server) stop() {
	if s.cmd.Process != nil {
		s.cmd.Process.Kill()
	}
	<-s.done
}

var bucketSeq struct {
	sync.Mutex
	n int
}

// Bucket creates a new bucket, with object lock enabled if locked, and
// returns its name.
func (s *Server) Bucket(t testing.TB, locked bool) string {
	t.Helper()
	bucketSeq.Lock()
	bucketSeq.n++
	name := fmt.Sprintf("bulwark-%d-%s", bucketSeq.n, random(4))
	bucketSeq.Unlock()
	err := s.Client.MakeBucket(context.Background(), name, minio.MakeBucketOptions{ObjectLocking: locked})
	if err != nil {
		t.Fatalf("MakeBucket(%s, object lock %v): %v", name, locked, err)
	}
	return name
}

// Env returns the environment a client needs: the AWS credential
// variables with the server's root credentials.
func (s *Server) Env() map[string]string {
	return map[string]string{
		"AWS_ACCESS_KEY_ID":     s.AccessKey,
		"AWS_SECRET_ACCESS_KEY": s.SecretKey,
		"AWS_REGION":            "us-east-1",
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func random(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
