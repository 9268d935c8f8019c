// Package repo is Bulwark's backup repository: opening one with a
// password, its configuration, storing and loading blobs through packs and
// indexes, snapshots and locks. The format is specified in
// docs/repository-format.md; the subpackages hold its pieces (crypto,
// chunker, pack, index, tree, parity) and the operations built on it
// (archiver, restorer, checker, prune).
package repo

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/chunker"
	"github.com/bulwarkhq/bulwark/internal/repo/crypto"
	"github.com/bulwarkhq/bulwark/internal/repo/index"
	"github.com/bulwarkhq/bulwark/internal/repo/parity"
)

// ID names a blob or an object.
type ID = index.ID

// Blob types.
const (
	DataBlob = index.DataBlob
	TreeBlob = index.TreeBlob
)

// DefaultPackSize is the size at which a pack is closed.
const DefaultPackSize = 16 << 20

// Config is the repository's sealed configuration (the config object).
type Config struct {
	Version  int            `json:"version"`
	ID       string         `json:"id"`
	Created  time.Time      `json:"created"`
	Chunker  chunker.Params `json:"chunker"`
	PackSize int            `json:"pack_size"`
	Parity   *parity.Params `json:"parity,omitempty"`
}

const configAAD = "bulwark config v1"

// Errors callers test for.
var (
	ErrNoKey       = errors.New("no key in the repository opens with this password")
	ErrNotRepo     = errors.New("not a bulwark repository")
	ErrNeedFullKey = crypto.ErrWriteOnly
)

// Repository is an open repository. Safe for concurrent use.
type Repository struct {
	be    backend.Backend
	sec   *crypto.Secrets
	keyID ID
	cfg   Config
	table *chunker.Table
	idx   *index.Index
	cache *Cache

	Now func() time.Time

	// CheckpointPacks: while saving, an index file is written as soon as
	// this many uploaded packs are in none yet, so that an interrupted
	// session loses little (checkpoint.go). 0: as many packs as make
	// DefaultCheckpointBytes; negative: never by count. Set it before the
	// first save.
	CheckpointPacks int
	// CheckpointInterval: a checkpoint is also written when the oldest
	// uploaded pack in no index file finished this long ago (checked as
	// packs finish). 0: DefaultCheckpointInterval; negative: never by time.
	CheckpointInterval time.Duration

	mu      sync.Mutex
	packers [2]*packer
	free    []*packer // finished packers whose buffers are reused

	pendingPacks int        // full packs whose buffers their upload still uses
	maxPending   int        // the most pendingPacks before savers wait (maxPending)
	packCond     *sync.Cond // signalled when pendingPacks drops or an upload fails
	packBuffers  int        // packers with buffers allocated (the free list reuses them)
	stager       backend.Stager
	waiting      int // savers waiting for a pending slot

	coderOnce sync.Once
	coder     *parity.Coder
	coderErr  error
	inflight  map[blobKey]bool // blobs in an open packer or an upload in flight
	copied    map[blobKey]bool // blobs stored by SaveBlobCopy in this session

	treesMu      sync.Mutex
	sessionTrees map[ID][]byte // write-only keys: trees written or loaded from the cache
	savedTrees   map[ID]bool   // the trees this session wrote
	written      []index.Pack  // packs uploaded in this session, not yet in an index file
	uploads      sync.WaitGroup
	upErr        error
	upSem        chan struct{}
	stats        SaveStats
	aeads        aeadCache

	// uncoveredSince is when the oldest pack of written finished uploading.
	uncoveredSince time.Time

	// indexNames are the index files the loaded index was built from,
	// and those this handle wrote since (RefreshIndex).
	indexMu    sync.Mutex
	indexNames map[ID]bool

	locksMu sync.Mutex
	locks   map[*Lock]bool // held by this handle (see checkLocks)
}

type blobKey struct {
	id ID
	t  uint8
}

// InitOptions tunes repo init.
type InitOptions struct {
	KDF      crypto.KDFParams
	Chunker  chunker.Params
	PackSize int
	Parity   *parity.Params
	CopyFrom *Repository // share chunker seed, id key and chunker sizes
	KeyMeta  crypto.KeyFile
	CacheDir string // "" = default, "-" = none
}

// Backend returns the repository's storage.
func (r *Repository) Backend() backend.Backend { return r.be }

// Secrets returns the opened key's secrets.
func (r *Repository) Secrets() *crypto.Secrets { return r.sec }

// Config returns the configuration.
func (r *Repository) Config() Config { return r.cfg }

// KeyID is the name of the key file that opened the repository.
func (r *Repository) KeyID() ID { return r.keyID }

// Index returns the loaded index.
func (r *Repository) Index() *index.Index { return r.idx }

// ChunkerTable returns the repository's secret gear table.
func (r *Repository) ChunkerTable() *chunker.Table { return r.table }

// CanRead reports whether the key can read existing data.
func (r *Repository) CanRead() bool { return r.sec.CanRead() }

// Init creates a repository on an empty backend.
func Init(ctx context.Context, be backend.Backend, password []byte, o InitOptions) (*Repository, error) {
	if _, err := be.Stat(ctx, backend.Handle{Type: backend.ConfigFile}); err == nil {
		return nil, fmt.Errorf("%s: a repository already exists here", be.Location())
	} else if !errors.Is(err, backend.ErrNotExist) {
		return nil, err
	}
	var sec *crypto.Secrets
	var err error
	cfg := Config{Version: 1, Created: time.Now().UTC(), Chunker: o.Chunker, PackSize: o.PackSize, Parity: o.Parity}
	if o.CopyFrom != nil {
		if !o.CopyFrom.CanRead() {
			return nil, fmt.Errorf("--copy-params-from needs a full key: %w", crypto.ErrWriteOnly)
		}
		sec, err = crypto.WithChunking(nil, o.CopyFrom.sec)
		cfg.Chunker = o.CopyFrom.cfg.Chunker
	} else {
		sec, err = crypto.NewSecrets(nil)
	}
	if err != nil {
		return nil, err
	}
	if cfg.Chunker == (chunker.Params{}) {
		cfg.Chunker = chunker.DefaultParams()
	}
	if err := cfg.Chunker.Validate(); err != nil {
		return nil, err
	}
	if cfg.PackSize == 0 {
		cfg.PackSize = DefaultPackSize
	}
	if cfg.PackSize < 1<<20 || cfg.PackSize > 128<<20 {
		return nil, fmt.Errorf("pack size %d outside 1 MiB..128 MiB", cfg.PackSize)
	}
	if cfg.Parity != nil {
		if err := cfg.Parity.Validate(); err != nil {
			return nil, err
		}
	}
	var rid [32]byte
	if _, err := rand.Read(rid[:]); err != nil {
		return nil, err
	}
	cfg.ID = hex.EncodeToString(rid[:])
	if o.KDF == (crypto.KDFParams{}) {
		o.KDF = crypto.DefaultKDF
	}
	// Key first, then config: a crash in between leaves no config, so the
	// directory is not yet a repository and init can be re-run.
	keyID, err := addKey(ctx, be, sec, password, o.KDF, o.KeyMeta)
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	sealed, err := sec.SealShared(configAAD, plain)
	if err != nil {
		return nil, err
	}
	if err := be.Save(ctx, backend.Handle{Type: backend.ConfigFile}, sealed); err != nil {
		return nil, fmt.Errorf("writing config: %w", err)
	}
	r := newRepository(be, sec, keyID, cfg)
	r.cache = openCache(o.CacheDir, cfg.ID)
	return r, nil
}

func newRepository(be backend.Backend, sec *crypto.Secrets, keyID ID, cfg Config) *Repository {
	r := &Repository{
		be: be, sec: sec, keyID: keyID, cfg: cfg,
		table:      chunker.NewTable(sec.ChunkerSeed),
		idx:        index.New(),
		inflight:   make(map[blobKey]bool),
		upSem:      make(chan struct{}, backend.UploadConcurrency(be)),
		maxPending: maxPending(be),
		Now:        time.Now,
		aeads:      aeadCache{m: make(map[ID]cipher.AEAD)},
	}
	r.packCond = sync.NewCond(&r.mu)
	r.stager, _ = be.(backend.Stager)
	return r
}

func hostUser() (string, string) {
	h, _ := os.Hostname()
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return h, name
}

func addKey(ctx context.Context, be backend.Backend, sec *crypto.Secrets, password []byte, kdf crypto.KDFParams, meta crypto.KeyFile) (ID, error) {
	if meta.Created.IsZero() {
		meta.Created = time.Now().UTC()
	}
	if meta.Host == "" && meta.Username == "" {
		meta.Host, meta.Username = hostUser()
	}
	data, err := crypto.SealKeyFile(sec, password, kdf, meta)
	if err != nil {
		return ID{}, err
	}
	id := ID(sha256.Sum256(data))
	if err := be.Save(ctx, backend.Handle{Type: backend.KeyFile, Name: hex.EncodeToString(id[:])}, data); err != nil {
		return ID{}, fmt.Errorf("writing key: %w", err)
	}
	return id, nil
}

// OpenOptions tunes Open.
type OpenOptions struct {
	CacheDir string // "" = default, "-" = none
	KeyHint  string // a key id (or prefix) to try first
}

// Open finds a key that opens with password and reads the config. It does
// not load the index (LoadIndex).
func Open(ctx context.Context, be backend.Backend, password []byte, o OpenOptions) (*Repository, error) {
	cfgData, err := be.Load(ctx, backend.Handle{Type: backend.ConfigFile}, 0, 0)
	if errors.Is(err, backend.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w (no config; run `bulwark repo init`)", be.Location(), ErrNotRepo)
	}
	if err != nil {
		return nil, err
	}
	var names []string
	err = be.List(ctx, backend.KeyFile, func(fi backend.FileInfo) error {
		if backend.IsID(fi.Name) {
			names = append(names, fi.Name)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: no key files", be.Location())
	}
	if o.KeyHint != "" {
		for i, n := range names {
			if len(o.KeyHint) <= len(n) && n[:len(o.KeyHint)] == o.KeyHint {
				names[0], names[i] = names[i], names[0]
				break
			}
		}
	}
	var lastErr error
	for _, name := range names {
		data, err := be.Load(ctx, backend.Handle{Type: backend.KeyFile, Name: name}, 0, 0)
		if err != nil {
			lastErr = err
			continue
		}
		if sha256.Sum256(data) != mustID(name) {
			lastErr = fmt.Errorf("keys/%s: content does not match its name (corrupted)", name)
			continue
		}
		sec, _, err := crypto.OpenKeyFile(data, password)
		if errors.Is(err, crypto.ErrWrongPassword) {
			continue
		}
		if err != nil {
			lastErr = fmt.Errorf("keys/%s: %w", name, err)
			continue
		}
		plain, err := sec.OpenShared(configAAD, cfgData)
		if err != nil {
			return nil, fmt.Errorf("config: %w (the key opened but the config does not: corrupted config or a key from another repository)", err)
		}
		var cfg Config
		if err := json.Unmarshal(plain, &cfg); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if cfg.Version != 1 {
			return nil, fmt.Errorf("config: repository version %d not supported", cfg.Version)
		}
		if err := cfg.Chunker.Validate(); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if cfg.PackSize < 1<<20 || cfg.PackSize > 128<<20 {
			return nil, fmt.Errorf("config: pack size %d out of range", cfg.PackSize)
		}
		if cfg.Parity != nil {
			if err := cfg.Parity.Validate(); err != nil {
				return nil, fmt.Errorf("config: %w", err)
			}
		}
		r := newRepository(be, sec, mustID(name), cfg)
		r.cache = openCache(o.CacheDir, cfg.ID)
		return r, nil
	}
	if lastErr != nil {
		return nil, fmt.Errorf("%w (also: %v)", ErrNoKey, lastErr)
	}
	return nil, ErrNoKey
}

func mustID(s string) (id ID) {
	_, _ = hex.Decode(id[:], []byte(s))
	return id
}

// ParseID parses a 64-character hex id.
func ParseID(s string) (ID, error) {
	var id ID
	if !backend.IsID(s) {
		return id, fmt.Errorf("%q is not a 64-character hex id", s)
	}
	_, err := hex.Decode(id[:], []byte(s))
	return id, err
}

// Hex formats an id.
func Hex(id ID) string { return hex.EncodeToString(id[:]) }

// Short formats an id's first 8 hex characters.
func Short(id ID) string { return hex.EncodeToString(id[:4]) }

// Close flushes nothing: call Flush first when writing.
func (r *Repository) Close() error {
	// Packs still open were never flushed (a failed backup): their staged
	// objects go.
	r.mu.Lock()
	ps := r.packers
	r.packers = [2]*packer{}
	r.mu.Unlock()
	for _, p := range ps {
		if p != nil && p.out != nil {
			p.out.abort()
		}
	}
	compressBufs.Drain() // a daemon between backups keeps none of their buffers
	return r.be.Close()
}
