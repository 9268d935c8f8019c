package s3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/retry"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/s3/s3test"
)

// lockedBackend returns a backend on a new bucket with object lock, whose
// clock is fixed at now.
func lockedBackend(t *testing.T, s *s3test.Server, mode Mode, now time.Time) (*Backend, string) {
	t.Helper()
	bucket := s.Bucket(t, true)
	c := config(s, bucket, "repo")
	c.Mode = mode
	c.Retention = 2 * 24 * time.Hour
	c.Now = func() time.Time { return now }
	b := create(t, c)
	if !b.Locked() {
		t.Fatalf("bucket %s has object lock, but the backend did not detect it", bucket)
	}
	return b, bucket
}

func TestObjectLockDetected(t *testing.T) {
	s := s3test.Start(t)
	b := create(t, config(s, s.Bucket(t, false), "r"))
	if b.Locked() {
		t.Fatal("a bucket without object lock was detected as locked")
	}
	until, err := b.RetainUntil(context.Background(), backend.Handle{Type: backend.SnapshotFile, Name: "x"})
	if err != nil || !until.IsZero() {
		t.Fatalf("RetainUntil on an unlocked bucket = %v, %v; want the zero time", until, err)
	}
}

func TestObjectLockRetention(t *testing.T) {
	s := s3test.Start(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	b, _ := lockedBackend(t, s, Compliance, now)

	data := []byte("snapshot")
	h := backend.Handle{Type: backend.SnapshotFile, Name: id(data)}
	if err := b.Save(ctx, h, data); err != nil {
		t.Fatal(err)
	}
	want := now.Add(2 * 24 * time.Hour)
	until, err := b.RetainUntil(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if !until.Equal(want) {
		t.Fatalf("RetainUntil after Save = %v, want now + retention = %v", until, want)
	}

	// Extending moves the lock later.
	later := want.Add(10 * 24 * time.Hour)
	if err := b.ExtendRetention(ctx, h, later); err != nil {
		t.Fatalf("ExtendRetention: %v", err)
	}
	if until, _ = b.RetainUntil(ctx, h); !until.Equal(later) {
		t.Fatalf("RetainUntil after ExtendRetention = %v, want %v", until, later)
	}
	// Never shortens.
	if err := b.ExtendRetention(ctx, h, want); err != nil {
		t.Fatalf("ExtendRetention to an earlier time: %v, want nil (a no-op)", err)
	}
	if until, _ = b.RetainUntil(ctx, h); !until.Equal(later) {
		t.Fatalf("RetainUntil after an earlier ExtendRetention = %v, want it unchanged at %v", until, later)
	}

	// Remove refuses, with a final ErrForbidden, and the object stays.
	err = b.Remove(ctx, h)
	if !errors.Is(err, backend.ErrForbidden) || !retry.IsPermanent(ctx, err) {
		t.Fatalf("Remove of a locked object: err = %v, want a final ErrForbidden", err)
	}
	wantObject(t, b, h, data)

	// Lock files carry no retention and can be removed.
	lh := backend.Handle{Type: backend.LockFile, Name: "lock1"}
	if err := b.Save(ctx, lh, []byte("lock")); err != nil {
		t.Fatal(err)
	}
	if until, err := b.RetainUntil(ctx, lh); err != nil || !until.IsZero() {
		t.Fatalf("RetainUntil(lock file) = %v, %v; want the zero time", until, err)
	}
	if err := b.ExtendRetention(ctx, lh, later); err == nil {
		t.Fatal("ExtendRetention of a lock file succeeded; it would keep a stale lock")
	}
	if err := b.Remove(ctx, lh); err != nil {
		t.Fatalf("Remove(lock file): %v", err)
	}
	if _, err := b.Stat(ctx, lh); !errors.Is(err, backend.ErrNotExist) {
		t.Fatalf("Stat of a removed lock file: err = %v, want ErrNotExist", err)
	}
	if err := b.Remove(ctx, lh); !errors.Is(err, backend.ErrNotExist) {
		t.Fatalf("second Remove(lock file): err = %v, want ErrNotExist", err)
	}
}

// TestObjectLockExpired: once the lock has expired (the backend's clock
// is moved past it), Remove deletes the object for good.
func TestObjectLockExpired(t *testing.T) {
	s := s3test.Start(t)
	ctx := context.Background()
	bucket := s.Bucket(t, true)
	now := time.Now().UTC()
	c := config(s, bucket, "repo")
	c.Retention = 24 * time.Hour
	// Write with a clock 23 h 59 m 58 s in the past: the lock expires
	// 2 s from now (the server's lock, checked by the server).
	c.Now = func() time.Time { return now.Add(-24*time.Hour + 2*time.Second) }
	b := create(t, c)
	data := []byte("index")
	h := backend.Handle{Type: backend.IndexFile, Name: id(data)}
	if err := b.Save(ctx, h, data); err != nil {
		t.Fatal(err)
	}
	until, err := b.RetainUntil(ctx, h)
	if err != nil || until.IsZero() {
		t.Fatalf("RetainUntil = %v, %v", until, err)
	}
	c.Now = time.Now
	b2 := create(t, c)
	// Wait (bounded, about 3 s) for the server's clock to pass the lock.
	time.Sleep(time.Until(until) + 1100*time.Millisecond)
	if err := b2.Remove(ctx, h); err != nil {
		t.Fatalf("Remove after the lock expired: %v", err)
	}
	if _, err := b2.Stat(ctx, h); !errors.Is(err, backend.ErrNotExist) {
		t.Fatalf("Stat after Remove: err = %v, want ErrNotExist", err)
	}
	n := 0
	for obj := range s.Client.ListObjects(ctx, bucket, minio.ListObjectsOptions{WithVersions: true, Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		n++
		t.Logf("left: %s version %s delete marker %v", obj.Key, obj.VersionID, obj.IsDeleteMarker)
	}
	if n != 0 {
		t.Fatalf("%d versions left after Remove, want none (Remove deletes every version)", n)
	}
}

func wantObject(t *testing.T, b *Backend, h backend.Handle, data []byte) {
	t.Helper()
	got, err := b.Load(context.Background(), h, 0, 0)
	if err != nil {
		t.Fatalf("Load(%v): %v", h, err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("Load(%v) = %q, want %q", h, got, data)
	}
}

// TestAttackerCannotDeleteLockedBackup plays a client that holds the S3
// credentials (the server's root credentials, the most powerful there
// are) and talks to the bucket directly, bypassing Bulwark: it tries every
// way to destroy a locked backup object. None may destroy it: the
// object's data must stay readable.
func TestAttackerCannotDeleteLockedBackup(t *testing.T) {
	s := s3test.Start(t)
	ctx := context.Background()
	b, bucket := lockedBackend(t, s, Compliance, time.Now())
	data := bytes.Repeat([]byte("pack "), 1000)
	h := backend.Handle{Type: backend.PackFile, Name: id(data)}
	if err := b.Save(ctx, h, data); err != nil {
		t.Fatal(err)
	}
	key := b.key(h)
	info, err := s.Client.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	version := info.VersionID
	if version == "" {
		t.Fatal("the locked object has no version id")
	}
	attacker := s.Client

	// 1. Delete the version, with and without the governance bypass.
	for _, bypass := range []bool{false, true} {
		err := attacker.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{VersionID: version, GovernanceBypass: bypass})
		t.Logf("DELETE version (bypass %v): %v", bypass, err)
		if err == nil {
			t.Errorf("DELETE of the locked version (governance bypass %v) succeeded", bypass)
		}
	}
	// 2. Shorten the lock (to one second from now, so that the date is
	// valid), keeping or changing the mode, with the bypass header.
	soon := time.Now().Add(time.Second)
	for _, m := range []minio.RetentionMode{minio.Compliance, minio.Governance} {
		err := attacker.PutObjectRetention(ctx, bucket, key, minio.PutObjectRetentionOptions{Mode: &m, RetainUntilDate: &soon, VersionID: version, GovernanceBypass: true})
		t.Logf("shorten retention (%s): %v", m, err)
		if err == nil {
			t.Errorf("shortening the lock (mode %s, bypass) succeeded", m)
		}
	}
	if until, err := b.RetainUntil(ctx, h); err != nil || until.Before(time.Now().Add(24*time.Hour)) {
		t.Errorf("RetainUntil after the attempts = %v, %v; want the lock unchanged", until, err)
	}
	// 3. Through Bulwark's own Remove: refused without a request.
	if err := b.Remove(ctx, h); !errors.Is(err, backend.ErrForbidden) {
		t.Errorf("Remove: err = %v, want ErrForbidden", err)
	}
	// 4. A plain DELETE (no version) and an overwrite: S3 allows both on a
	// versioned bucket, but they only add a delete marker or a version on
	// top; the locked version stays.
	err = attacker.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{})
	t.Logf("plain DELETE: %v", err)
	_, err = attacker.PutObject(ctx, bucket, key, bytes.NewReader([]byte("garbage")), 7, minio.PutObjectOptions{})
	t.Logf("overwrite: %v", err)

	// The locked version is still there, with its data.
	obj, err := attacker.GetObject(ctx, bucket, key, minio.GetObjectOptions{VersionID: version})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(obj)
	obj.Close()
	if err != nil {
		t.Fatalf("reading the locked version after the attack: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("the locked version's data changed: %d bytes, want %d", len(got), len(data))
	}
}

// TestGovernanceIsBypassable records why COMPLIANCE is the default: in
// GOVERNANCE mode, credentials with the bypass permission (root here)
// delete a locked version at once.
func TestGovernanceIsBypassable(t *testing.T) {
	s := s3test.Start(t)
	ctx := context.Background()
	b, bucket := lockedBackend(t, s, Governance, time.Now())
	data := []byte("governance")
	h := backend.Handle{Type: backend.SnapshotFile, Name: id(data)}
	if err := b.Save(ctx, h, data); err != nil {
		t.Fatal(err)
	}
	info, err := s.Client.StatObject(ctx, bucket, b.key(h), minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Metadata.Get("X-Amz-Object-Lock-Mode"); got != "GOVERNANCE" {
		t.Fatalf("lock mode = %q, want GOVERNANCE", got)
	}
	// Without the bypass header the server refuses...
	err = s.Client.RemoveObject(ctx, bucket, b.key(h), minio.RemoveObjectOptions{VersionID: info.VersionID})
	if err == nil {
		t.Fatal("DELETE of a GOVERNANCE-locked version without bypass succeeded")
	}
	// ...with it, it deletes.
	err = s.Client.RemoveObject(ctx, bucket, b.key(h), minio.RemoveObjectOptions{VersionID: info.VersionID, GovernanceBypass: true})
	if err != nil {
		t.Fatalf("DELETE with governance bypass by root: %v (versitygw may have started to refuse it; then update docs/s3.md)", err)
	}
	if _, err := b.Stat(ctx, h); !errors.Is(err, backend.ErrNotExist) {
		t.Fatalf("Stat after the bypass DELETE: err = %v, want ErrNotExist", err)
	}
}
