package repo

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/crypto"
)

// Summary is what a backup did.
type Summary struct {
	FilesNew        int64   `json:"files_new"`
	FilesChanged    int64   `json:"files_changed"`
	FilesUnmodified int64   `json:"files_unmodified"`
	Dirs            int64   `json:"dirs"`
	BytesAdded      int64   `json:"bytes_added"`
	BytesProcessed  int64   `json:"bytes_processed"`
	TotalFiles      int64   `json:"total_files"`
	TotalBytes      int64   `json:"total_bytes"`
	Duration        float64 `json:"duration_seconds"`
}

// Lost records what a salvaged snapshot no longer has.
type Lost struct {
	Chunks int      `json:"chunks"`
	Trees  int      `json:"trees"`
	Files  []string `json:"files"`
}

// Snapshot is one backup.
type Snapshot struct {
	Version        int       `json:"version"`
	Time           time.Time `json:"time"`
	Tree           ID        `json:"-"`
	TreeHex        string    `json:"tree"`
	Paths          []string  `json:"paths"`
	Hostname       string    `json:"hostname"`
	Username       string    `json:"username,omitempty"`
	Tags           []string  `json:"tags,omitempty"`
	Parent         string    `json:"parent,omitempty"`
	Excludes       []string  `json:"excludes,omitempty"`
	ProgramVersion string    `json:"program_version,omitempty"`
	Summary        *Summary  `json:"summary,omitempty"`
	Original       string    `json:"original,omitempty"`
	Lost           *Lost     `json:"lost,omitempty"`

	ID ID `json:"-"` // the object name; set by Load/Save
}

// HasTag reports whether s carries tag t.
func (s *Snapshot) HasTag(t string) bool {
	for _, x := range s.Tags {
		if x == t {
			return true
		}
	}
	return false
}

// SaveSnapshot seals s to the repository public key and stores it. It
// refuses when a lock this handle holds has lapsed (ErrLockLapsed): the
// data s refers to may have been pruned meanwhile.
func (r *Repository) SaveSnapshot(ctx context.Context, s *Snapshot) (ID, error) {
	if err := r.checkLocks(); err != nil {
		return ID{}, err
	}
	s.Version = 1
	s.TreeHex = Hex(s.Tree)
	plain, err := json.Marshal(s)
	if err != nil {
		return ID{}, err
	}
	aead, E, err := r.sec.SealTo(crypto.PurposeSnapshot)
	if err != nil {
		return ID{}, err
	}
	data := append(E[:], aead.Seal(nil, make([]byte, 12), plain, nil)...)
	id := ID(sha256.Sum256(data))
	if err := r.be.Save(ctx, backend.Handle{Type: backend.SnapshotFile, Name: Hex(id)}, data); err != nil {
		return ID{}, fmt.Errorf("writing snapshot: %w", err)
	}
	s.ID = id
	return id, nil
}

// LoadSnapshot reads one snapshot.
func (r *Repository) LoadSnapshot(ctx context.Context, id ID) (*Snapshot, error) {
	h := backend.Handle{Type: backend.SnapshotFile, Name: Hex(id)}
	data, err := r.be.Load(ctx, h, 0, 0)
	if err != nil {
		return nil, err
	}
	s, err := r.OpenSnapshot(id, data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h, err)
	}
	return s, nil
}

// OpenSnapshot checks, decrypts and decodes the bytes of snapshot object id.
func (r *Repository) OpenSnapshot(id ID, data []byte) (*Snapshot, error) {
	if sha256.Sum256(data) != id {
		return nil, errors.New("content does not match its name (corrupted)")
	}
	if len(data) < 32+16 {
		return nil, errors.New("truncated")
	}
	aead, err := r.sec.OpenFrom(crypto.PurposeSnapshot, [32]byte(data[:32]))
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, make([]byte, 12), data[32:], nil)
	if err != nil {
		return nil, crypto.ErrAuth
	}
	return DecodeSnapshot(id, plain)
}

// DecodeSnapshot parses and validates snapshot JSON.
func DecodeSnapshot(id ID, plain []byte) (*Snapshot, error) {
	var s Snapshot
	dec := json.NewDecoder(strings.NewReader(string(plain)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("snapshot json: %w", err)
	}
	if s.Version != 1 {
		return nil, fmt.Errorf("snapshot version %d not supported", s.Version)
	}
	t, err := ParseID(s.TreeHex)
	if err != nil {
		return nil, fmt.Errorf("snapshot tree: %w", err)
	}
	s.Tree, s.ID = t, id
	return &s, nil
}

// SnapshotIDs lists the names of all snapshot objects.
func (r *Repository) SnapshotIDs(ctx context.Context) ([]ID, []string, error) {
	var ids []ID
	var foreign []string
	err := r.be.List(ctx, backend.SnapshotFile, func(fi backend.FileInfo) error {
		id, err := ParseID(fi.Name)
		if err != nil {
			foreign = append(foreign, fi.Name)
			return nil
		}
		ids = append(ids, id)
		return nil
	})
	return ids, foreign, err
}

// SnapshotErr is a snapshot that could not be read.
type SnapshotErr struct {
	ID  ID
	Err error
}

// Snapshots loads every snapshot, oldest first. Unreadable ones are
// returned separately so listing never fails on one bad file.
func (r *Repository) Snapshots(ctx context.Context) ([]*Snapshot, []SnapshotErr, error) {
	if !r.CanRead() {
		return nil, nil, crypto.ErrWriteOnly
	}
	ids, _, err := r.SnapshotIDs(ctx)
	if err != nil {
		return nil, nil, err
	}
	out := make([]*Snapshot, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i], errs[i] = r.LoadSnapshot(ctx, id)
		}()
	}
	wg.Wait()
	var good []*Snapshot
	var bad []SnapshotErr
	for i := range ids {
		if errs[i] != nil {
			bad = append(bad, SnapshotErr{ids[i], errs[i]})
		} else {
			good = append(good, out[i])
		}
	}
	SortSnapshots(good)
	return good, bad, ctx.Err()
}

// SortSnapshots orders by time, then id.
func SortSnapshots(s []*Snapshot) {
	sort.Slice(s, func(i, j int) bool {
		if !s[i].Time.Equal(s[j].Time) {
			return s[i].Time.Before(s[j].Time)
		}
		return Hex(s[i].ID) < Hex(s[j].ID)
	})
}

// Filter selects snapshots by host, tags and paths (empty = any).
type Filter struct {
	Hosts []string
	Tags  []string // every tag must be present
	Paths []string // the snapshot's paths must equal these (as a set)
}

// Match reports whether s passes f.
func (f Filter) Match(s *Snapshot) bool {
	if len(f.Hosts) > 0 && !contains(f.Hosts, s.Hostname) {
		return false
	}
	for _, t := range f.Tags {
		if !s.HasTag(t) {
			return false
		}
	}
	if len(f.Paths) > 0 {
		if len(f.Paths) != len(s.Paths) {
			return false
		}
		for _, p := range f.Paths {
			if !contains(s.Paths, p) {
				return false
			}
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// FindSnapshot resolves "latest" (newest matching f) or an id prefix of at
// least 4 hex characters.
func (r *Repository) FindSnapshot(ctx context.Context, ref string, f Filter) (*Snapshot, error) {
	snaps, _, err := r.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	if ref == "latest" {
		for i := len(snaps) - 1; i >= 0; i-- {
			if f.Match(snaps[i]) {
				return snaps[i], nil
			}
		}
		return nil, errors.New("no snapshot matches (latest)")
	}
	ref = strings.ToLower(ref)
	if len(ref) < 4 {
		return nil, fmt.Errorf("snapshot id %q: give at least 4 hex characters or \"latest\"", ref)
	}
	var found []*Snapshot
	for _, s := range snaps {
		if strings.HasPrefix(Hex(s.ID), ref) {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("no snapshot %q", ref)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("snapshot prefix %q is ambiguous (%d snapshots)", ref, len(found))
}

// RemoveSnapshot deletes a snapshot object (full keys only).
func (r *Repository) RemoveSnapshot(ctx context.Context, id ID) error {
	if !r.CanRead() {
		return crypto.ErrWriteOnly
	}
	return r.be.Remove(ctx, backend.Handle{Type: backend.SnapshotFile, Name: Hex(id)})
}
