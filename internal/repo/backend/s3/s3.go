// Package s3 stores a repository in an S3 bucket (AWS S3 or any compatible
// server: MinIO, versitygw, Ceph RGW...) through minio-go. It implements
// backend.Backend and, on buckets with object lock, backend.Retainer.
//
// # Layout
//
// Keys mirror the local directory layout under the location's prefix:
//
//	PREFIX/config
//	PREFIX/keys/NAME  PREFIX/index/NAME  PREFIX/snapshots/NAME  PREFIX/locks/NAME
//	PREFIX/data/ID[0:2]/ID  PREFIX/parity/ID[0:2]/ID
//
// so a repository copied between a directory and a bucket (aws s3 sync,
// rclone) stays valid. List reports keys the layout does not account for
// (an id in the wrong shard, a key below a deeper "directory", a name
// directly in data/) with their path relative to the type's prefix, as the
// local backend does.
//
// # What the contract becomes on S3
//
//   - Atomicity: an S3 PUT is atomic (readers see the old state or the whole
//     new object). Objects are at most about 20 MiB, so every write is one
//     PUT (multipart is disabled); a PUT carries Content-MD5, so a body
//     damaged in transit is refused by the server rather than stored.
//   - No overwrite: Save sends "If-None-Match: *" (a conditional PUT, on AWS
//     since 2024, MinIO, and versitygw v1.8.0, which the tests check with
//     eight writers racing for one name): the server, not the client,
//     decides the single winner; the others get 412 and ErrExists. A
//     server may answer 412 before reading the body and drop the
//     connection; see sendTracker for how Save still reports ErrExists.
//   - Durability: a PUT or DELETE is durable when the server acknowledges
//     it; that is the server's promise, not one Bulwark can add to.
//   - Missing objects: S3's DELETE of a missing key succeeds, so Remove
//     asks (HEAD) first to report ErrNotExist. Two processes removing one
//     object at once may both succeed; nothing depends on that.
//   - Load ranges are HTTP Range requests; a range outside the object gives
//     io.ErrUnexpectedEOF, never short data. A body cut short in transit is
//     a transient error (retried), never io.ErrUnexpectedEOF, which would
//     be mistaken for a bad range.
//
// # Errors and retries
//
// minio-go's own retries are off (MaxRetries 1): one layer decides, and
// that is retry.New, which the caller wraps around this backend (Open
// returns the bare backend so that its Retainer methods stay reachable).
// Server errors (5xx, SlowDown, RequestTimeout) and network failures are
// transient. Refusals are final (they implement Permanent() bool): 403
// AccessDenied wraps backend.ErrForbidden; rejected credentials
// (InvalidAccessKeyId, SignatureDoesNotMatch, ExpiredToken) and a missing
// bucket say so and what to do. A dropped upload is retried as a whole PUT,
// which is fine for objects of at most about 20 MiB: an earlier attempt
// that reached the server makes the retry meet ErrExists, which retry.Save
// accepts when the sizes match.
//
// # Object lock
//
// When the bucket has object lock enabled (detected once, in Open, with
// GetObjectLockConfiguration), every Save and Replace of anything but a
// lock file carries a retention: Config.Mode (COMPLIANCE by default) until
// now + Config.Retention. COMPLIANCE is the default because in GOVERNANCE
// mode anyone holding s3:BypassGovernanceRetention (which root or admin
// credentials have, and which a stolen backup credential often has) can
// delete the object at once; in COMPLIANCE mode nobody can delete the
// locked object version or shorten its lock, not even the bucket's owner,
// until it expires. Lock files are written without retention so that stale
// locks can be cleared.
//
// Remove of an object whose lock has not expired returns an error matching
// backend.ErrForbidden (final) without trying: a plain DELETE on a
// versioned bucket would "succeed" by adding a delete marker, which hides
// the object from every reader although the server keeps it. On a locked
// bucket Remove deletes the object's versions by id, which the server
// refuses while a version is locked. RetainUntil and ExtendRetention
// (never shortening) implement backend.Retainer for prune.
//
// What the lock does not stop: a client with write credentials can still
// add a delete marker (a plain DELETE) or a new version (a PUT) on top of a
// locked object; both hide the locked version from ordinary reads but
// cannot destroy it. docs/s3.md explains how to bring such a version back.
package s3

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/bulwarkhq/bulwark/internal/repo/backend"
)

// Mode is an object-lock retention mode.
type Mode string

// The two S3 retention modes.
const (
	// Compliance: nobody can delete the locked version or shorten its lock
	// before it expires. The default.
	Compliance Mode = "COMPLIANCE"
	// Governance: principals with s3:BypassGovernanceRetention can delete
	// the version or shorten the lock. Choose it only when no credential
	// that can reach the bucket has that permission.
	Governance Mode = "GOVERNANCE"
)

// DefaultRetention is how long a new object stays locked: the 30 days of
// the retention policy plus 10 days, so that a prune that runs weekly
// always extends a still-needed object's lock well before it expires.
const DefaultRetention = 40 * 24 * time.Hour

// maxObjectSize bounds what Load accepts from a server, far above the
// 20 MiB objects a repository writes, so a hostile server cannot make the
// client allocate without limit.
const maxObjectSize = 256 << 20

// Config says where the repository is and how to reach it.
type Config struct {
	// Location is s3:https://HOST[:PORT]/BUCKET[/PREFIX].
	Location string
	// Credentials. When AccessKeyID is empty, Open reads the shared
	// credentials file (CredentialsFile, profile Profile).
	AccessKeyID, SecretAccessKey, SessionToken string
	// CredentialsFile is the AWS shared credentials file (default
	// ~/.aws/credentials); Profile its section (default "default").
	CredentialsFile, Profile string
	// Region is the bucket's region (default us-east-1).
	Region string
	// CAFile is a PEM file of certificates to trust besides the system's,
	// for a server with a self-signed certificate.
	CAFile string
	// Insecure allows plain http://, and only to a loopback address.
	Insecure bool
	// Mode is the retention mode on a bucket with object lock (default
	// Compliance).
	Mode Mode
	// Retention is how long a new object stays locked (default
	// DefaultRetention).
	Retention time.Duration
	// Now returns the current time (default time.Now); tests set it.
	Now func() time.Time
	// Transport, when set, replaces the HTTP transport (tests use it to
	// inject faults); CAFile is then ignored.
	Transport http.RoundTripper
}

// ConfigFromEnv fills a Config's credentials and region from the usual AWS
// variables, read through getenv: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN, AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE, AWS_REGION
// and AWS_DEFAULT_REGION, with HOME for the default credentials file.
func ConfigFromEnv(location string, getenv func(string) string) Config {
	c := Config{
		Location:        location,
		AccessKeyID:     getenv("AWS_ACCESS_KEY_ID"),
		SecretAccessKey: getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken:    getenv("AWS_SESSION_TOKEN"),
		CredentialsFile: getenv("AWS_SHARED_CREDENTIALS_FILE"),
		Profile:         getenv("AWS_PROFILE"),
		Region:          getenv("AWS_REGION"),
	}
	if c.Region == "" {
		c.Region = getenv("AWS_DEFAULT_REGION")
	}
	if c.CredentialsFile == "" && getenv("HOME") != "" {
		c.CredentialsFile = getenv("HOME") + "/.aws/credentials"
	}
	return c
}

// Backend is a repository in an S3 bucket. It is safe for concurrent use.
type Backend struct {
	loc       Location
	client    *minio.Client
	core      minio.Core
	locked    bool // the bucket has object lock enabled
	mode      minio.RetentionMode
	retention time.Duration
	now       func() time.Time
	transport *http.Transport // closed by Close; nil when Config.Transport was given
}

var (
	_ backend.Backend  = (*Backend)(nil)
	_ backend.Retainer = (*Backend)(nil)
)

// Open returns a backend for the existing repository at c.Location: it
// checks the bucket is reachable with the credentials and that the
// repository's config object exists (else an error matching
// backend.ErrNotExist).
func Open(ctx context.Context, c Config) (*Backend, error) {
	b, err := connect(ctx, c)
	if err != nil {
		return nil, err
	}
	if _, err := b.Stat(ctx, backend.Handle{Type: backend.ConfigFile}); err != nil {
		b.Close()
		if errors.Is(err, backend.ErrNotExist) {
			return nil, fmt.Errorf("%s: open: not a repository (no config object; create one with `repo init`): %w", b.loc, backend.ErrNotExist)
		}
		return nil, fmt.Errorf("%s: open: %w", b.loc, err)
	}
	return b, nil
}

// Create returns a backend for a new repository at c.Location. The bucket
// must exist (Bulwark does not create buckets: a bucket's object lock,
// versioning and policies are the administrator's decisions). The prefix may
// be empty or hold a repository or a partly created one: as with the local
// backend, the caller's Save of the config object decides whether the
// repository is new. Keys under the prefix that are not part of the layout
// make Create refuse.
func Create(ctx context.Context, c Config) (*Backend, error) {
	b, err := connect(ctx, c)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	prefix := b.loc.key("")
	for obj := range b.client.ListObjects(ctx, b.loc.Bucket, minio.ListObjectsOptions{Prefix: prefix}) {
		if obj.Err != nil {
			b.Close()
			return nil, fmt.Errorf("%s: create: %w", b.loc, b.mapErr(obj.Err))
		}
		rel := strings.TrimSuffix(strings.TrimPrefix(obj.Key, prefix), "/")
		if !isLayoutName(rel) {
			b.Close()
			return nil, fmt.Errorf("%s: create: the prefix is not empty and not a repository (found %q); choose another prefix", b.loc, obj.Key)
		}
	}
	return b, nil
}

func isLayoutName(name string) bool {
	for _, t := range backend.Types() {
		if name == string(t) {
			return true
		}
	}
	return false
}

// connect builds the client, checks the bucket, and detects object lock.
func connect(ctx context.Context, c Config) (*Backend, error) {
	loc, err := ParseLocation(c.Location)
	if err != nil {
		return nil, err
	}
	if !loc.Secure {
		switch {
		case !c.Insecure:
			return nil, fmt.Errorf("%s: plain http:// is refused: use https://, or --insecure for a test server on a loopback address", loc)
		case !isLoopback(loc.Host):
			return nil, fmt.Errorf("%s: plain http:// is refused to %s even with --insecure: it is allowed only to a loopback address (127.0.0.1, ::1, localhost)", loc, loc.Host)
		}
	}
	creds, err := credentialsFor(c)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", loc, err)
	}
	b := &Backend{
		loc:       loc,
		mode:      minio.Compliance,
		retention: c.Retention,
		now:       c.Now,
	}
	switch c.Mode {
	case "", Compliance:
	case Governance:
		b.mode = minio.Governance
	default:
		return nil, fmt.Errorf("%s: retention mode %q: want %s or %s", loc, c.Mode, Compliance, Governance)
	}
	if b.retention == 0 {
		b.retention = DefaultRetention
	}
	if b.retention < 24*time.Hour {
		return nil, fmt.Errorf("%s: retention %v is shorter than one day; a lock must outlive the time between two prunes", loc, b.retention)
	}
	if b.now == nil {
		b.now = time.Now
	}
	rt := c.Transport
	if rt == nil {
		tr, err := newTransport(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", loc, err)
		}
		b.transport, rt = tr, tr
	}
	rt = sendTracker{rt}
	region := c.Region
	if region == "" {
		region = "us-east-1"
	}
	b.client, err = minio.New(loc.Host, &minio.Options{
		Creds:      creds,
		Secure:     loc.Secure,
		Region:     region,
		Transport:  rt,
		MaxRetries: 1, // retry.New decides about retries
	})
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("%s: %w", loc, err)
	}
	b.core = minio.Core{Client: b.client}
	if err := ctx.Err(); err != nil {
		b.Close()
		return nil, err
	}
	// A GET (list one key), not HEAD bucket: a HEAD error has no body, so
	// rejected credentials would look like a missing bucket.
	if err := b.probe(ctx); err != nil {
		b.Close()
		return nil, fmt.Errorf("%s: %w", loc, b.mapErr(err))
	}
	enabled, _, _, _, err := b.client.GetObjectLockConfig(ctx, loc.Bucket)
	switch {
	case err == nil:
		b.locked = enabled == "Enabled"
	case isLockConfigMissing(err):
	default:
		b.Close()
		return nil, fmt.Errorf("%s: reading the bucket's object lock configuration: %w", loc, b.mapErr(err))
	}
	return b, nil
}

// probe lists at most one key of the bucket, to check that it exists and
// that the credentials are accepted.
func (b *Backend) probe(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for obj := range b.client.ListObjects(ctx, b.loc.Bucket, minio.ListObjectsOptions{Prefix: b.loc.key(""), MaxKeys: 1}) {
		return obj.Err
	}
	return nil
}

func isLockConfigMissing(err error) bool {
	r := minio.ToErrorResponse(err)
	return r.Code == "ObjectLockConfigurationNotFoundError" || r.Code == "NoSuchObjectLockConfiguration"
}

// credentialsFor returns static credentials from c, or those of the shared
// credentials file.
func credentialsFor(c Config) (*credentials.Credentials, error) {
	if c.AccessKeyID != "" || c.SecretAccessKey != "" {
		if c.AccessKeyID == "" || c.SecretAccessKey == "" {
			return nil, errors.New("incomplete credentials: set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
		}
		return credentials.NewStaticV4(c.AccessKeyID, c.SecretAccessKey, c.SessionToken), nil
	}
	if c.CredentialsFile == "" {
		return nil, errors.New("no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_SHARED_CREDENTIALS_FILE (or ~/.aws/credentials) with AWS_PROFILE")
	}
	profile := c.Profile
	if profile == "" {
		profile = "default"
	}
	fc := credentials.NewFileAWSCredentials(c.CredentialsFile, profile)
	v, err := fc.Get()
	if err != nil {
		return nil, fmt.Errorf("no credentials: AWS_ACCESS_KEY_ID is not set and the credentials file %s (profile %q) could not be used: %w", c.CredentialsFile, profile, err)
	}
	if v.AccessKeyID == "" || v.SecretAccessKey == "" {
		return nil, fmt.Errorf("no credentials: profile %q of %s has no aws_access_key_id and aws_secret_access_key", profile, c.CredentialsFile)
	}
	return credentials.NewStaticV4(v.AccessKeyID, v.SecretAccessKey, v.SessionToken), nil
}

// newTransport is an HTTP transport that verifies TLS (with the system's
// roots plus caFile) and gives up on a server that stops answering.
func newTransport(caFile string) (*http.Transport, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificate in it", caFile)
		}
		tc.RootCAs = pool
	}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute, // after the request body is sent
		ExpectContinueTimeout: time.Second,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
	}, nil
}

// sendTracker notes whether the body of a conditional PUT was sent in
// full. Some servers (versitygw among them) answer 412 to "If-None-Match: *"
// as soon as they have read the headers and then close the connection (or,
// with keep-alive, parse the rest of the body as the next request). The
// client, still sending, sees only "broken pipe", a transient error that a
// retry would meet again and again. A PUT whose body was not sent in full
// cannot have stored the object (S3 stores a complete body or nothing, and
// Content-MD5 covers it), so Save may then ask whether the name exists: if
// it does, another writer holds it and the answer is ErrExists.
type sendTracker struct{ rt http.RoundTripper }

func (s sendTracker) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodPut || r.Header.Get("If-None-Match") == "" {
		return s.rt.RoundTrip(r)
	}
	var tb *trackedBody
	if r.Body != nil && r.ContentLength > 0 {
		tb = &trackedBody{rc: r.Body}
		tb.left.Store(r.ContentLength)
		r = r.Clone(r.Context())
		r.Body = tb
	}
	resp, err := s.rt.RoundTrip(r)
	if err != nil && (tb != nil && tb.left.Load() > 0 || writeFailed(err) || closedByUs(r, err)) {
		return nil, &unsentError{err}
	}
	return resp, err
}

// writeFailed reports whether err is a failed write to the connection: a
// write system call that fails means bytes after it never left, so the
// server did not receive the whole request.
func writeFailed(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "write"
}

// closedByUs reports whether err says the client closed the connection
// itself ("use of closed network connection") without r being cancelled:
// the transport does that when writing the request failed, and the
// failure then surfaces from the read of the response instead (seen with
// versitygw's early 412 once the whole body was in the client's buffer
// but not yet on the wire).
func closedByUs(r *http.Request, err error) bool {
	return errors.Is(err, net.ErrClosed) && r.Context().Err() == nil
}

type trackedBody struct {
	rc   io.ReadCloser
	left atomic.Int64
}

func (t *trackedBody) Read(p []byte) (int, error) {
	n, err := t.rc.Read(p)
	t.left.Add(-int64(n))
	return n, err
}

func (t *trackedBody) Close() error { return t.rc.Close() }

// unsentError is a failed PUT whose body was not sent in full.
type unsentError struct{ err error }

func (e *unsentError) Error() string { return e.err.Error() }
func (e *unsentError) Unwrap() error { return e.err }

// Location returns the repository's location, s3:https://HOST/BUCKET/PREFIX.
// UploadConcurrency lets a backup keep two pack uploads in flight: over a
// network the latency of one overlaps the next (see
// backend.UploadConcurrency).
func (b *Backend) UploadConcurrency() int { return 2 }

func (b *Backend) Location() string { return b.loc.String() }

// Locked reports whether the bucket has object lock enabled, so that Save
// writes every object but lock files with a retention.
func (b *Backend) Locked() bool { return b.locked }

// Close releases idle connections.
func (b *Backend) Close() error {
	if b.transport != nil {
		b.transport.CloseIdleConnections()
	}
	return nil
}

// key returns the object key of h.
func (b *Backend) key(h backend.Handle) string {
	switch {
	case h.Type == backend.ConfigFile:
		return b.loc.key(string(backend.ConfigFile))
	case h.Type.Sharded():
		return b.loc.key(string(h.Type) + "/" + h.Name[:2] + "/" + h.Name)
	}
	return b.loc.key(string(h.Type) + "/" + h.Name)
}

// check validates h and ctx before any request.
func check(ctx context.Context, op string, h backend.Handle) error {
	if err := h.Validate(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %s: %w", op, h, err)
	}
	return nil
}

// RetentionPeriod is how long new objects are locked (Config.Retention);
// prune extends locks of what kept snapshots need to the same horizon.
func (b *Backend) RetentionPeriod() time.Duration { return b.retention }

// retentionFor returns the put options that lock a new version of h.
func (b *Backend) retentionFor(h backend.Handle, opts *minio.PutObjectOptions) {
	if b.locked && h.Type != backend.LockFile {
		opts.Mode = b.mode
		opts.RetainUntilDate = b.now().Add(b.retention).UTC().Truncate(time.Second)
	}
}

func putOptions() minio.PutObjectOptions {
	return minio.PutObjectOptions{
		ContentType:      "application/octet-stream",
		DisableMultipart: true,
		SendContentMd5:   true,
	}
}

// Save stores data under h unless h exists; see backend.Backend and the
// package comment.
func (b *Backend) Save(ctx context.Context, h backend.Handle, data []byte) error {
	if err := check(ctx, "save", h); err != nil {
		return err
	}
	opts := putOptions()
	opts.SetMatchETagExcept("*")
	b.retentionFor(h, &opts)
	_, err := b.client.PutObject(ctx, b.loc.Bucket, b.key(h), bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		if r := minio.ToErrorResponse(err); r.StatusCode == http.StatusPreconditionFailed || r.Code == "PreconditionFailed" {
			return fmt.Errorf("save %s: %w", h, backend.ErrExists)
		}
		var ue *unsentError
		if errors.As(err, &ue) && ctx.Err() == nil {
			// Our PUT cannot have stored anything (see sendTracker).
			if _, serr := b.client.StatObject(ctx, b.loc.Bucket, b.key(h), minio.StatObjectOptions{}); serr == nil {
				return fmt.Errorf("save %s: %w", h, backend.ErrExists)
			}
		}
		return b.opError(ctx, "save", h, err)
	}
	return nil
}

// Replace overwrites h or creates it. On a versioned bucket (every bucket
// with object lock is one) the previous version stays, with its lock.
func (b *Backend) Replace(ctx context.Context, h backend.Handle, data []byte) error {
	if err := check(ctx, "replace", h); err != nil {
		return err
	}
	opts := putOptions()
	b.retentionFor(h, &opts)
	_, err := b.client.PutObject(ctx, b.loc.Bucket, b.key(h), bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		return b.opError(ctx, "replace", h, err)
	}
	return nil
}

// Load returns a range of h; see backend.Backend.
func (b *Backend) Load(ctx context.Context, h backend.Handle, offset int64, length int) ([]byte, error) {
	if err := check(ctx, "load", h); err != nil {
		return nil, err
	}
	if offset < 0 || length < 0 {
		return nil, fmt.Errorf("load %s: negative offset %d or length %d", h, offset, length)
	}
	var opts minio.GetObjectOptions
	ranged := offset > 0 || length > 0
	switch {
	case length > 0:
		_ = opts.SetRange(offset, offset+int64(length)-1)
	case offset > 0:
		_ = opts.SetRange(offset, 0)
	}
	rc, info, hdr, err := b.core.GetObject(ctx, b.loc.Bucket, b.key(h), opts)
	if err != nil {
		r := minio.ToErrorResponse(err)
		if r.StatusCode == http.StatusRequestedRangeNotSatisfiable || r.Code == "InvalidRange" {
			return b.outOfRange(ctx, h, offset, length)
		}
		return nil, b.opError(ctx, "load", h, err)
	}
	defer rc.Close()
	if info.Size < 0 || info.Size > maxObjectSize {
		return nil, fmt.Errorf("load %s: the server announced %d bytes", h, info.Size)
	}
	buf := make([]byte, info.Size)
	if _, err := io.ReadFull(rc, buf); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("load %s: %w", h, cerr)
		}
		// Not %w: io.ErrUnexpectedEOF here is a cut connection (transient),
		// not a range outside the object (final).
		return nil, fmt.Errorf("load %s: connection lost while reading (%v)", h, err)
	}
	if ranged && hdr.Get("Content-Range") == "" {
		// The server ignored Range and sent the whole object.
		return sliceRange(h, buf, offset, length)
	}
	if length > 0 && len(buf) != length {
		// A range that runs past the end: the server sends what there is.
		return nil, fmt.Errorf("load %s: %d bytes at offset %d: the object is shorter: %w", h, length, offset, io.ErrUnexpectedEOF)
	}
	return buf, nil
}

func sliceRange(h backend.Handle, buf []byte, offset int64, length int) ([]byte, error) {
	size := int64(len(buf))
	end := size
	if length > 0 {
		end = offset + int64(length)
	}
	if offset > size || end > size {
		return nil, fmt.Errorf("load %s: %d bytes at offset %d of %d: %w", h, length, offset, size, io.ErrUnexpectedEOF)
	}
	return buf[offset:end], nil
}

// outOfRange handles 416: the whole tail from offset == size is empty, not
// an error; anything else is outside the object (or the object is gone).
func (b *Backend) outOfRange(ctx context.Context, h backend.Handle, offset int64, length int) ([]byte, error) {
	fi, err := b.Stat(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", h, err)
	}
	if length == 0 && offset == fi.Size {
		return []byte{}, nil
	}
	return nil, fmt.Errorf("load %s: %d bytes at offset %d of %d: %w", h, length, offset, fi.Size, io.ErrUnexpectedEOF)
}

// Stat returns h's size.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	if err := check(ctx, "stat", h); err != nil {
		return backend.FileInfo{}, err
	}
	info, err := b.client.StatObject(ctx, b.loc.Bucket, b.key(h), minio.StatObjectOptions{})
	if err != nil {
		return backend.FileInfo{}, b.opError(ctx, "stat", h, err)
	}
	return backend.FileInfo{Name: h.Name, Size: info.Size}, nil
}

// Remove deletes h. On a bucket with object lock it refuses (ErrForbidden,
// final) an object whose lock has not expired, without asking the server
// to delete it, and otherwise deletes every version of h by id.
func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	if err := check(ctx, "remove", h); err != nil {
		return err
	}
	if !b.locked {
		if _, err := b.Stat(ctx, h); err != nil {
			if errors.Is(err, backend.ErrNotExist) {
				return fmt.Errorf("remove %s: %w", h, backend.ErrNotExist)
			}
			return err
		}
		if err := b.client.RemoveObject(ctx, b.loc.Bucket, b.key(h), minio.RemoveObjectOptions{}); err != nil {
			return b.opError(ctx, "remove", h, err)
		}
		return nil
	}
	versions, err := b.versions(ctx, h)
	if err != nil {
		return b.opError(ctx, "remove", h, err)
	}
	if len(versions) == 0 || versions[0].IsDeleteMarker {
		return fmt.Errorf("remove %s: %w", h, backend.ErrNotExist)
	}
	now := b.now()
	for _, v := range versions {
		if v.IsDeleteMarker {
			continue
		}
		until, err := b.retainUntil(ctx, h, v.VersionID)
		if err != nil {
			return b.opError(ctx, "remove", h, err)
		}
		if until.After(now) {
			return finalError{fmt.Errorf("remove %s: locked until %s (object lock): %w", h, until.UTC().Format(time.RFC3339), backend.ErrForbidden)}
		}
	}
	for _, v := range versions {
		err := b.client.RemoveObject(ctx, b.loc.Bucket, b.key(h), minio.RemoveObjectOptions{VersionID: v.VersionID})
		if err != nil {
			return b.opError(ctx, "remove", h, err)
		}
	}
	return nil
}

// versions returns h's versions and delete markers, newest first.
func (b *Backend) versions(ctx context.Context, h backend.Handle) ([]minio.ObjectInfo, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	key := b.key(h)
	var out []minio.ObjectInfo
	for obj := range b.client.ListObjects(ctx, b.loc.Bucket, minio.ListObjectsOptions{Prefix: key, WithVersions: true}) {
		if obj.Err != nil {
			return nil, obj.Err
		}
		if obj.Key != key {
			continue // a longer key with the same prefix
		}
		out = append(out, obj)
	}
	// Newest first: by IsLatest, then by modification time.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && newer(out[j], out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out, nil
}

func newer(a, b minio.ObjectInfo) bool {
	if a.IsLatest != b.IsLatest {
		return a.IsLatest
	}
	return a.LastModified.After(b.LastModified)
}

// List reports the objects of type t and foreign keys under its prefix.
func (b *Backend) List(ctx context.Context, t backend.Type, fn func(backend.FileInfo) error) error {
	if !t.Valid() {
		return fmt.Errorf("list %q: %w", string(t), backend.ErrInvalidName)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("list %s: %w", t, err)
	}
	if t == backend.ConfigFile {
		fi, err := b.Stat(ctx, backend.Handle{Type: t})
		if errors.Is(err, backend.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		return fn(fi)
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops minio-go's listing goroutine when fn fails
	prefix := b.loc.key(string(t) + "/")
	for obj := range b.client.ListObjects(lctx, b.loc.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("list %s: %w", t, err)
			}
			return fmt.Errorf("list %s: %w", t, b.mapErr(obj.Err))
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("list %s: %w", t, err)
		}
		rel := strings.TrimPrefix(obj.Key, prefix)
		if rel == "" {
			continue // a "directory" marker for the type itself
		}
		name := rel
		if t.Sharded() {
			if shard, id, ok := strings.Cut(rel, "/"); ok && backend.IsID(id) && shard == id[:2] {
				name = id
			}
		}
		if err := fn(backend.FileInfo{Name: name, Size: obj.Size}); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// RetainUntil returns when h's lock expires; the zero time if the bucket
// has no object lock or h has no retention.
func (b *Backend) RetainUntil(ctx context.Context, h backend.Handle) (time.Time, error) {
	if err := check(ctx, "retain-until", h); err != nil {
		return time.Time{}, err
	}
	if !b.locked {
		return time.Time{}, nil
	}
	until, err := b.retainUntil(ctx, h, "")
	if err != nil {
		return time.Time{}, b.opError(ctx, "retain-until", h, err)
	}
	return until, nil
}

// retainUntil reads a version's lock (the latest for versionID "") from
// the headers of a HEAD request, which AWS and compatible servers return
// to principals allowed s3:GetObjectRetention. (Not GetObjectRetention:
// versitygw v1.8.0 names that response's XML element ObjectLockRetention
// instead of Retention, which minio-go cannot parse.)
func (b *Backend) retainUntil(ctx context.Context, h backend.Handle, versionID string) (time.Time, error) {
	_, until, err := b.lockOf(ctx, h, versionID)
	return until, err
}

// lockOf returns a version's lock mode and expiry ("" and the zero
// time when it has none).
func (b *Backend) lockOf(ctx context.Context, h backend.Handle, versionID string) (minio.RetentionMode, time.Time, error) {
	info, err := b.client.StatObject(ctx, b.loc.Bucket, b.key(h), minio.StatObjectOptions{VersionID: versionID})
	if err != nil {
		return "", time.Time{}, err
	}
	v := info.Metadata.Get("X-Amz-Object-Lock-Retain-Until-Date")
	if v == "" {
		return "", time.Time{}, nil
	}
	until, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("the server sent an invalid retain-until date %q: %w", v, err)
	}
	return minio.RetentionMode(strings.ToUpper(info.Metadata.Get("X-Amz-Object-Lock-Mode"))), until, nil
}

// ExtendRetention moves h's lock expiry to until if that is later; it
// never shortens a lock. Lock files are never retained: extending one is an
// error, as it would keep a stale lock from being cleared.
func (b *Backend) ExtendRetention(ctx context.Context, h backend.Handle, until time.Time) error {
	if err := check(ctx, "extend-retention", h); err != nil {
		return err
	}
	if !b.locked {
		return finalError{fmt.Errorf("extend-retention %s: bucket %s has no object lock", h, b.loc.Bucket)}
	}
	if h.Type == backend.LockFile {
		return finalError{fmt.Errorf("extend-retention %s: lock files are written without retention so that stale locks can be removed", h)}
	}
	mode, cur, err := b.lockOf(ctx, h, "")
	if err != nil {
		return b.opError(ctx, "extend-retention", h, err)
	}
	until = until.UTC().Truncate(time.Second)
	if !until.After(cur) {
		return nil
	}
	m := b.mode
	if mode.IsValid() {
		m = mode // keep the object's own mode (COMPLIANCE cannot be changed anyway)
	}
	err = b.client.PutObjectRetention(ctx, b.loc.Bucket, b.key(h), minio.PutObjectRetentionOptions{Mode: &m, RetainUntilDate: &until})
	if err != nil {
		return b.opError(ctx, "extend-retention", h, err)
	}
	return nil
}

// opError names the operation and object, and maps the S3 error.
func (b *Backend) opError(ctx context.Context, op string, h backend.Handle, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%s %s: %w", op, h, cerr)
	}
	r := minio.ToErrorResponse(err)
	if r.StatusCode == http.StatusNotFound && (r.Code == "NoSuchKey" || r.Code == "NotFound" || r.Code == "NoSuchVersion" || r.Code == "") {
		return fmt.Errorf("%s %s: %w", op, h, backend.ErrNotExist)
	}
	return fmt.Errorf("%s %s: %w", op, h, b.mapErr(err))
}

// mapErr turns an S3 error response into an error that says what to do,
// and marks refusals final.
func (b *Backend) mapErr(err error) error {
	var fe finalError
	if errors.As(err, &fe) {
		return err
	}
	r := minio.ToErrorResponse(err)
	switch {
	case r.Code == "AccessDenied" || (r.StatusCode == http.StatusForbidden && r.Code == ""):
		return finalError{fmt.Errorf("the S3 server refused access (AccessDenied: %s): %w", r.Message, backend.ErrForbidden)}
	case r.Code == "InvalidAccessKeyId", r.Code == "SignatureDoesNotMatch", r.Code == "ExpiredToken",
		r.Code == "InvalidToken", r.Code == "TokenRefreshRequired",
		r.Code == "XAdminUserNotFound": // versitygw's answer to an unknown access key
		return finalError{fmt.Errorf("the S3 server rejected the credentials (%s: %s): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the credentials file and AWS_PROFILE)", r.Code, r.Message)}
	case r.Code == "NoSuchBucket":
		return finalError{fmt.Errorf("bucket %q does not exist on %s: create it first; Bulwark does not create buckets", b.loc.Bucket, b.loc.Host)}
	case r.Code == "SlowDown", r.Code == "RequestTimeout", r.Code == "InternalError", r.Code == "ServiceUnavailable",
		r.StatusCode >= 500 && r.StatusCode != http.StatusNotImplemented:
		return fmt.Errorf("S3 server error (%d %s: %s), will retry: %w", r.StatusCode, r.Code, r.Message, err)
	case r.StatusCode >= 400:
		return finalError{fmt.Errorf("the S3 server refused the request (%d %s: %s): %w", r.StatusCode, r.Code, r.Message, err)}
	}
	return err // network errors: transient
}

// finalError is an error retrying cannot fix (retry.IsPermanent).
type finalError struct{ err error }

func (e finalError) Error() string   { return e.err.Error() }
func (e finalError) Unwrap() error   { return e.err }
func (e finalError) Permanent() bool { return true }
