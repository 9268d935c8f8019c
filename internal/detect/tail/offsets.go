package tail

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// Offsets keeps the Position of each followed path across restarts.
type Offsets interface {
	// Load returns the saved position of path, and false if there is none.
	Load(ctx context.Context, path string) (Position, bool, error)
	// Save records p as the position of path.
	Save(ctx context.Context, path string, p Position) error
}

// NewStoreOffsets keeps positions in db, in the table detect_log_offsets
// (created by the detect migrations, 00002_log_offsets.sql).
func NewStoreOffsets(db *store.DB) Offsets { return storeOffsets{db: db} }

type storeOffsets struct{ db *store.DB }

func (s storeOffsets) Load(ctx context.Context, path string) (Position, bool, error) {
	var dev, inode int64
	var p Position
	err := s.db.QueryRowContext(ctx, `SELECT dev, inode, file_offset, head FROM detect_log_offsets WHERE path = $1`, path).
		Scan(&dev, &inode, &p.Offset, &p.Head)
	if errors.Is(err, sql.ErrNoRows) {
		return Position{}, false, nil
	}
	if err != nil {
		return Position{}, false, fmt.Errorf("tail: load position of %s: %w", path, err)
	}
	// dev and inode are unsigned; stored bit for bit in signed columns.
	p.Dev, p.Inode = uint64(dev), uint64(inode)
	return p, true, nil
}

func (s storeOffsets) Save(ctx context.Context, path string, p Position) error {
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO detect_log_offsets (path, dev, inode, file_offset, head, updated)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (path) DO UPDATE SET dev = excluded.dev, inode = excluded.inode,
    file_offset = excluded.file_offset, head = excluded.head, updated = excluded.updated`,
			path, int64(p.Dev), int64(p.Inode), p.Offset, p.Head, store.Micros(time.Now()))
		return err
	})
	if err != nil {
		return fmt.Errorf("tail: save position of %s: %w", path, err)
	}
	return nil
}

// MemOffsets keeps positions in memory, for tests and for following without
// a database. The zero value is not usable; call NewMemOffsets.
type MemOffsets struct {
	mu sync.Mutex
	m  map[string]Position
}

// NewMemOffsets returns an empty in-memory Offsets.
func NewMemOffsets() *MemOffsets { return &MemOffsets{m: map[string]Position{}} }

// Load implements Offsets.
func (o *MemOffsets) Load(_ context.Context, path string) (Position, bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p, ok := o.m[path]
	return p, ok, nil
}

// Save implements Offsets.
func (o *MemOffsets) Save(_ context.Context, path string, p Position) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.m[path] = p
	return nil
}
