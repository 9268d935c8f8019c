package vault

// Streaming uploads. A PUT body is written to disk while it arrives instead
// of being read into memory and then handed to the local backend's Save:
// receiving (TLS decryption), hashing and writing then overlap, the kernel
// starts writing the file back while the rest is still arriving (so the
// final fsync has little left to wait for), and an upload holds one 1 MiB
// buffer instead of the whole object.
//
// The write protocol is the local backend's (internal/repo/backend/local),
// so that a repository stays one the local backend reads, lists and cleans:
//
//  1. create ".tmp-<random>" (O_EXCL, 0600) in the object's directory, or
//     for data and parity in the type directory above the shard, so that a
//     refused upload leaves no new shard directory behind (the local backend
//     skips dot files in listings and its CleanTemp covers both places);
//  2. copy the body into it, 1 MiB at a time, through SHA-256 when the name
//     must be checked, asking the kernel (sync_file_range) to start writing
//     back every full chunk;
//  3. if the body was short or its hash is not the name: remove the temporary
//     file and fail (nothing is stored);
//  4. fsync the file, make a missing shard directory (fsyncing its parent,
//     as local.Save does), then link(2) it to its final name, which fails with
//     EEXIST rather than replace an object (renameat2(RENAME_NOREPLACE) where
//     the file system has no hard links), remove the temporary name and fsync
//     the directory. A replace renames the file over the final name instead.
//
// Only then does the vault answer 201, so an acknowledged object is durable
// (the backend contract's durability rule). A vault killed at any point
// leaves at most a temporary file, which New removes after an hour, the
// same as local.CleanTemp.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/local"
)

const (
	// tempPrefix starts every temporary file; it is the local backend's, so
	// that its CleanTemp removes what a crashed upload left.
	tempPrefix = ".tmp-"
	// copyChunk is the unit of reading, hashing and writing an upload.
	copyChunk = 1 << 20
	// writebackEvery is how many written bytes start a writeback request.
	writebackEvery = 4 << 20
)

// bufPool holds the copy buffers of uploads in progress.
var bufPool = sync.Pool{New: func() any { b := make([]byte, copyChunk); return &b }}

// errShortBody: the client sent fewer bytes than its Content-Length.
var errShortBody = errors.New("incomplete body")

// hashMismatchError: the content of a content-addressed object does not
// hash to its name.
type hashMismatchError struct{ sum string }

func (e *hashMismatchError) Error() string {
	return "content does not match its name (the SHA-256 of the content is " + e.sum + ")"
}

// objectPath returns where the local backend keeps h in repository dir
// (see the layout in internal/repo/backend/local). h must be valid.
func objectPath(dir string, h backend.Handle) string {
	switch {
	case h.Type == backend.ConfigFile:
		return filepath.Join(dir, string(backend.ConfigFile))
	case h.Type.Sharded():
		return filepath.Join(dir, string(h.Type), h.Name[:2], h.Name)
	default:
		return filepath.Join(dir, string(h.Type), h.Name)
	}
}

// storeObject streams size bytes of body into object h of rs (see the top of
// this file). checkName makes it refuse content whose SHA-256 is not h.Name
// (a *hashMismatchError); replace overwrites an existing object, otherwise
// an existing one is backend.ErrExists. A body shorter than size is
// errShortBody.
func storeObject(ctx context.Context, rs *repoState, h backend.Handle, body io.Reader, size int64, checkName, replace bool) error {
	final := objectPath(rs.dir, h)
	dir := filepath.Dir(final)
	tmpDir := dir
	if h.Type.Sharded() {
		tmpDir = filepath.Dir(dir)
	}
	f, err := os.CreateTemp(tmpDir, tempPrefix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	var sum hash.Hash
	if checkName {
		sum = sha256.New()
	}
	err = copyBody(ctx, f, body, size, sum)
	if err == nil && sum != nil {
		if got := hex.EncodeToString(sum.Sum(nil)); got != h.Name {
			err = &hashMismatchError{sum: got}
		}
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = ctx.Err() // last chance to give up before the object appears
	}
	if err == nil && h.Type.Sharded() {
		err = mkShard(dir)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if replace {
		err = os.Rename(tmp, final)
	} else {
		err = local.LinkNew(tmp, final)
	}
	if err != nil {
		_ = os.Remove(tmp)
		if errors.Is(err, fs.ErrExist) {
			return backend.ErrExists
		}
		return err
	}
	return syncDir(dir)
}

// copyBody copies exactly size bytes from body to f, through sum if it is
// not nil, and asks for writeback of every writebackEvery bytes written.
func copyBody(ctx context.Context, f *os.File, body io.Reader, size int64, sum hash.Hash) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var off, flushed int64
	for off < size {
		if err := ctx.Err(); err != nil {
			// The client went away (the request's context ends with it).
			return fmt.Errorf("%w: %d of %d bytes arrived: %w", errShortBody, off, size, err)
		}
		n := int(min(int64(len(buf)), size-off))
		if _, err := io.ReadFull(body, buf[:n]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%w: %d of %d bytes arrived", errShortBody, off, size)
			}
			return fmt.Errorf("%w: %v", errShortBody, err)
		}
		if sum != nil {
			sum.Write(buf[:n])
		}
		if _, err := f.Write(buf[:n]); err != nil {
			return err
		}
		off += int64(n)
		if off-flushed >= writebackEvery {
			startWriteback(f, flushed, off-flushed)
			flushed = off
		}
	}
	return nil
}

// mkShard creates the shard directory dir (one level, as local.Save does)
// and makes the new entry durable.
func mkShard(dir string) error {
	err := os.Mkdir(dir, 0o700)
	if errors.Is(err, fs.ErrExist) {
		return nil // a concurrent upload created it
	}
	if err != nil {
		return err
	}
	return syncDir(filepath.Dir(dir))
}
