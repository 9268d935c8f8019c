// Package backend defines where a repository's objects are stored: the
// Backend interface, its contract, and the names of things.
//
// A repository is a flat set of immutable objects, each addressed by a
// Handle (a Type and a Name). Every storage transport (the local directory
// backend in ./local, and later Vault over HTTPS and S3) implements the one
// interface below and must pass the one conformance suite in ./backendtest,
// so the repository layer never needs to know which transport it talks to.
//
// # Contract
//
// Every Backend obeys these rules; backendtest checks each of them.
//
//   - Names. Handle.Validate decides which handles are valid. Every method
//     given an invalid handle (or List an unknown Type) does nothing and
//     returns an error matching ErrInvalidName.
//   - Atomicity. Readers see either no object or the whole object, never a
//     partial one, not even after a crash or power loss in the middle of a
//     write. A Save or Replace that returns an error leaves either no object
//     or a complete one (a transport may fail after the object was stored, so
//     callers that retry must accept ErrExists), never a partial one.
//   - Durability. When Save, Replace or Remove returns nil, the change
//     survives a crash or power loss of the machine that stores it.
//   - No overwrite. Save never replaces an existing object, even when
//     several processes on several machines save the same name at once:
//     exactly one of them succeeds, the others get ErrExists, and the stored
//     bytes are those of the winner.
//   - Ownership. Save and Replace do not retain data after they return;
//     Load returns a new slice that the caller owns.
//   - Context. Every method returns an error matching ctx.Err() when ctx is
//     done before it starts; a Save or Replace that is cancelled part way
//     leaves no object behind (or, as above, a complete one). List checks ctx
//     before each call of fn.
//   - Concurrency. A Backend is safe for concurrent use by several
//     goroutines, and several processes may use the same repository at once.
//   - Errors name the object (Handle.String) and the cause, and wrap the
//     sentinel errors below where one applies, so callers use errors.Is.
//   - Close releases the backend's resources; no method may be called after
//     it.
//
// # Sizes and streaming
//
// Objects are at most about 20 MiB (a pack is closed at pack_size, 16 MiB by
// default, and its parity is smaller), so Save takes and Load returns a
// []byte. A streaming Save would not help: an object's name is the SHA-256 of
// its bytes, so the whole object exists in memory before it can be named.
// Partial reads (restore fetching one blob from a pack) use Load's offset
// and length. Should pack_size ever grow well past 64 MiB, add an optional
// interface (for example Open(ctx, h, offset, length) (io.ReadCloser, error))
// rather than changing this one.
package backend

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"
	"unicode/utf8"
)

// Type is the kind of a repository object. Its value is the name of the
// directory (or key prefix) that holds objects of this type.
type Type string

// The object types of repository format version 1.
const (
	ConfigFile   Type = "config"    // the single config object; its Handle has an empty Name
	KeyFile      Type = "keys"      // key files
	PackFile     Type = "data"      // pack files, named by a 64-hex id, stored under id[0:2]/
	IndexFile    Type = "index"     // index files
	SnapshotFile Type = "snapshots" // snapshots
	LockFile     Type = "locks"     // locks
	ParityFile   Type = "parity"    // parity of the pack with the same id, stored under id[0:2]/
)

// Types returns every object type, config first.
func Types() []Type {
	return []Type{ConfigFile, KeyFile, PackFile, IndexFile, SnapshotFile, LockFile, ParityFile}
}

// Valid reports whether t is one of the object types.
func (t Type) Valid() bool {
	switch t {
	case ConfigFile, KeyFile, PackFile, IndexFile, SnapshotFile, LockFile, ParityFile:
		return true
	}
	return false
}

// Sharded reports whether objects of type t are stored under a directory
// named after the first two characters of their name (data and parity).
func (t Type) Sharded() bool { return t == PackFile || t == ParityFile }

// IDLen is the length of an object id in hex characters (a SHA-256).
const IDLen = 64

// MaxNameLen is the longest Name a Handle may have, in bytes (the common
// file-name limit of local file systems).
const MaxNameLen = 255

// IsID reports whether name is an object id: exactly IDLen lower-case hex
// characters.
func IsID(name string) bool {
	if len(name) != IDLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Handle names one object.
type Handle struct {
	Type Type
	Name string // empty for ConfigFile
}

// String returns the object's logical path, e.g. "config" or
// "data/3f2a…" (the full name; the shard directory of data and parity is a
// storage detail and not shown).
func (h Handle) String() string {
	if h.Type == ConfigFile {
		return string(ConfigFile)
	}
	return string(h.Type) + "/" + h.Name
}

// Validate returns nil if h is a valid handle, and otherwise an error that
// matches ErrInvalidName and says why. The rules:
//
//   - Type is one of the constants above.
//   - ConfigFile: Name is empty.
//   - PackFile and ParityFile: Name is an id (IsID).
//   - Every other type: Name is 1 to MaxNameLen bytes of valid UTF-8 with no
//     '/', '\\', NUL or other control characters, and does not start with
//     '.'. The last rule excludes "." and ".." and keeps dot files, which
//     backends use for in-flight writes, out of the object namespace.
func (h Handle) Validate() error {
	if !h.Type.Valid() {
		return fmt.Errorf("%w: unknown type %q", ErrInvalidName, string(h.Type))
	}
	if h.Type == ConfigFile {
		if h.Name != "" {
			return fmt.Errorf("%w: config: name must be empty, got %q", ErrInvalidName, h.Name)
		}
		return nil
	}
	if h.Type.Sharded() {
		if !IsID(h.Name) {
			return fmt.Errorf("%w: %s: name %q is not %d lower-case hex characters", ErrInvalidName, h.Type, h.Name, IDLen)
		}
		return nil
	}
	if err := checkName(h.Name); err != nil {
		return fmt.Errorf("%w: %s: name %q: %s", ErrInvalidName, h.Type, h.Name, err)
	}
	return nil
}

func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("empty")
	case len(name) > MaxNameLen:
		return fmt.Errorf("longer than %d bytes", MaxNameLen)
	case name[0] == '.':
		return errors.New("starts with '.'")
	case !utf8.ValidString(name):
		return errors.New("not valid UTF-8")
	}
	for _, r := range name {
		if r == '/' || r == '\\' || r < 0x20 || r == 0x7f {
			return fmt.Errorf("contains %q", r)
		}
	}
	return nil
}

// FileInfo describes one stored object.
type FileInfo struct {
	// Name is the Handle's Name for objects that are where the layout puts
	// them. List also reports foreign entries (see Backend.List), whose Name
	// is their path relative to the type's directory and may be invalid.
	Name string
	Size int64
}

// sentinel is an error that also matches a standard fs error, so that
// errors.Is(err, backend.ErrNotExist) and errors.Is(err, fs.ErrNotExist) both
// hold for a missing object.
type sentinel struct {
	msg string
	std error
}

func (e *sentinel) Error() string        { return e.msg }
func (e *sentinel) Is(target error) bool { return target == e.std }

// Sentinel errors. Backends wrap them (with the handle and cause) and callers
// test for them with errors.Is.
var (
	// ErrNotExist: the object does not exist. Also matches fs.ErrNotExist.
	ErrNotExist error = &sentinel{"object does not exist", fs.ErrNotExist}
	// ErrExists: Save found the object already stored. Also matches fs.ErrExist.
	ErrExists error = &sentinel{"object already exists", fs.ErrExist}
	// ErrForbidden: an append-only backend refused Replace or Remove. Also
	// matches fs.ErrPermission.
	ErrForbidden error = &sentinel{"forbidden by append-only backend", fs.ErrPermission}
	// ErrInvalidName: the handle or type is invalid (see Handle.Validate).
	// Also matches fs.ErrInvalid.
	ErrInvalidName error = &sentinel{"invalid object name", fs.ErrInvalid}
)

// Backend stores a repository's objects. See the package documentation for
// the contract that applies to every method.
type Backend interface {
	// Location describes where the repository is, for messages (the local
	// backend returns its absolute directory).
	Location() string

	// Save stores data under h atomically and durably: after it returns nil
	// the object survives a crash or power loss, and readers never see a
	// partial object. It never overwrites: if h exists it returns an error
	// matching ErrExists and the stored object is unchanged.
	Save(ctx context.Context, h Handle, data []byte) error

	// Replace atomically and durably overwrites h, or creates it if it does
	// not exist; readers see the old or the new bytes, never a mix.
	// Append-only backends return ErrForbidden. Only repair uses it (to
	// write back a pack reconstructed from parity).
	Replace(ctx context.Context, h Handle, data []byte) error

	// Load returns length bytes of h starting at offset; length 0 means up
	// to the end (so Load(ctx, h, 0, 0) is the whole object, and an offset
	// equal to the size returns no bytes). A range that does not fit the
	// object (offset > size, offset+length > size) returns an error matching
	// io.ErrUnexpectedEOF, never short data. Negative offset or length is an
	// error. A missing object returns ErrNotExist.
	Load(ctx context.Context, h Handle, offset int64, length int) ([]byte, error)

	// Stat returns h's size (FileInfo.Name is h.Name). A missing object
	// returns ErrNotExist.
	Stat(ctx context.Context, h Handle) (FileInfo, error)

	// Remove deletes h durably. A missing object returns ErrNotExist.
	// Append-only backends return ErrForbidden (they may allow removing
	// LockFile objects, so that stale locks can be cleared).
	Remove(ctx context.Context, h Handle) error

	// List calls fn for every object of type t, in unspecified order, and
	// stops at the first error fn returns, which List returns unchanged.
	// For ConfigFile it reports the config object (Name "") if it exists.
	// It also reports foreign entries, which the layout does not account for
	// (a file that is not an id in data/, an id in the wrong shard
	// directory, a stray directory); their Name is the path relative to the
	// type's directory, a directory's with a trailing '/', so that it is
	// never mistaken for an object. The repository layer reports those.
	// In-flight writes (dot files) are not listed. Objects saved or removed
	// while List runs may or may not be reported.
	List(ctx context.Context, t Type, fn func(FileInfo) error) error

	// Close releases the backend's resources.
	Close() error
}

// Retainer is implemented by backends that can put objects under a
// retention lock (S3 object lock): until a lock expires, nobody, whatever
// their credentials, can remove or overwrite the object. Prune uses it to
// leave locked objects alone and to extend the locks of objects that kept
// snapshots still need.
type Retainer interface {
	// RetainUntil returns when h's lock expires; the zero time means h is
	// not locked.
	RetainUntil(ctx context.Context, h Handle) (time.Time, error)
	// ExtendRetention moves h's lock expiry to until if that is later
	// (locks are never shortened).
	ExtendRetention(ctx context.Context, h Handle, until time.Time) error
}

// AsRetainer returns be as a Retainer, looking through wrappers (such as
// retry.Backend) that have an Unwrap() Backend method.
func AsRetainer(be Backend) (Retainer, bool) {
	for {
		if r, ok := be.(Retainer); ok {
			return r, true
		}
		u, ok := be.(interface{ Unwrap() Backend })
		if !ok {
			return nil, false
		}
		be = u.Unwrap()
	}
}

// EarlySaver is implemented by a Backend whose Save is done reading data
// well before it returns: the local backend has copied data into the file
// system once its writes return, and then waits for the disk (fsync) and
// links the file into place. A writer that reuses its buffers (the
// repository's pack buffers) gets each back that much sooner, so fewer
// buffers keep the disk busy.
type EarlySaver interface {
	// SaveEarly is Save, and it calls done exactly once, in the calling
	// goroutine: as soon as it will no longer read data (the caller may
	// then reuse data while the save goes on), and at the latest before it
	// returns, whether it succeeds or fails. done must not call the
	// Backend.
	SaveEarly(ctx context.Context, h Handle, data []byte, done func()) error
}

// SaveEarly saves data to be and calls done exactly once, when be no longer
// reads data: with be.SaveEarly when be itself is an EarlySaver, else when
// be.Save returns. It does not look through wrappers: a wrapper that
// retries a failed Save needs data until it returns.
func SaveEarly(ctx context.Context, be Backend, h Handle, data []byte, done func()) error {
	if es, ok := be.(EarlySaver); ok {
		return es.SaveEarly(ctx, h, data, done)
	}
	err := be.Save(ctx, h, data)
	done()
	return err
}

// Stager is implemented by a Backend that can take an object written piece
// by piece before its name is known. A repository names a pack by the hash
// of its bytes, so without a Stager it builds the whole pack in memory
// (16 MiB by default) before it can Save it; with one, the pack streams
// into the backend as its blobs are sealed and the writer holds only a
// small buffer. The local backend writes a temp file and links it into
// place on Commit. Like SaveEarly, it is not looked for through wrappers: a
// wrapper that retries a failed Save cannot retry a stream.
type Stager interface {
	// Stage starts an object of type t. The name is given to Commit.
	Stage(ctx context.Context, t Type) (Staged, error)
}

// Staged is an object being written (Stager). Its methods are not safe for
// concurrent use.
type Staged interface {
	// Write appends p to the object.
	Write(p []byte) (int, error)
	// Commit makes what was written the object named name, with the
	// guarantees of Save: durable when it returns nil, atomic, and never
	// over an existing object (ErrExists; the existing object is
	// unchanged). A cancelled ctx, an invalid name or an earlier failed
	// Write fail it and store nothing. The Staged is finished either way.
	Commit(ctx context.Context, name string) error
	// Abort discards what was written. It does nothing after Commit or
	// another Abort.
	Abort()
}

// LoaderInto is implemented by a Backend that can read into a buffer the
// caller owns and reuses, so that a reader of many ranges (a restore, a
// check) does not allocate, fault in and collect a new buffer for each.
type LoaderInto interface {
	// LoadInto is Load, except that when length > 0 and cap(buf) >= length
	// it returns buf[:length] holding the range. It may still return a new
	// slice (length 0: to the end of the object; buf too small). On error
	// buf's contents are undefined.
	LoadInto(ctx context.Context, h Handle, offset int64, length int, buf []byte) ([]byte, error)
}

// LoadInto returns the range of h that be.Load would, read into buf when
// be is a LoaderInto and buf has room, else as be.Load returns it. Like
// SaveEarly it does not look through wrappers: a wrapper may need its own
// copy of what it loads.
func LoadInto(ctx context.Context, be Backend, h Handle, offset int64, length int, buf []byte) ([]byte, error) {
	if li, ok := be.(LoaderInto); ok {
		return li.LoadInto(ctx, h, offset, length, buf)
	}
	return be.Load(ctx, h, offset, length)
}

// UploadConcurrency is how many objects a writer should upload at once
// to be: 1 unless be (or a backend it wraps) says otherwise with an
// UploadConcurrency() int method. Remote transports return more, so that
// the latency of one upload overlaps the next; a local disk gains nothing.
func UploadConcurrency(be Backend) int {
	for {
		if c, ok := be.(interface{ UploadConcurrency() int }); ok {
			return max(c.UploadConcurrency(), 1)
		}
		u, ok := be.(interface{ Unwrap() Backend })
		if !ok {
			return 1
		}
		be = u.Unwrap()
	}
}
