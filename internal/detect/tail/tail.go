// Package tail follows a growing log file the way `tail -F` does, delivering
// each complete line once, across log rotation and across restarts of the
// follower.
//
// # Design
//
// Follow polls (every Options.Poll): it reads the open file to its end,
// hands each newline-terminated line to the callback, then looks at what
// the path names now:
//
//   - the same file, no shorter than what was read and with the same first
//     bytes: nothing happened; wait for more.
//   - the same file, shorter, or with different first bytes (copytruncate,
//     or a truncate and rewrite between two polls): it was truncated; read
//     it again from byte 0.
//   - another file (rotation by rename, or delete and recreate): read the
//     old, still open file to its end, deliver its unterminated last line
//     if any, and continue with the new file from byte 0. The switch waits
//     until the new file has data: logrotate's `create` makes it empty
//     while the daemon keeps writing to the old file until it is told to
//     reopen its log, and those last lines must not be lost.
//   - nothing (renamed or deleted, not yet recreated): keep reading the old
//     file, which a writer may still hold open.
//
// The position (device, inode, byte offset after the last handled line, and
// a hash of the file's first min(256, offset) bytes, which tells the file
// from another that reuses its inode number) is saved through Offsets at
// most every Options.SaveEvery while lines flow, and when Follow returns.
// On start, a saved position resumes as follows:
//
//   - the path still names the saved file, at least offset bytes long with
//     the same head: continue at offset.
//   - the path names the saved inode but it is shorter or its head differs:
//     it was truncated or replaced while we were down; read from 0.
//   - the path names another file: the saved one was rotated while we were
//     down. Look for it among the siblings whose names start with the
//     path's base name (auth.log.1, auth.log-20261121; compressed ones are
//     skipped) by device, inode and head, read it from offset to its end,
//     then the new file from 0. If it is gone (compressed or deleted), the
//     lines after offset are lost and Follow logs so.
//
// So a line is neither re-read nor skipped across restarts and rotations,
// with these exceptions: after a crash (no final save) the lines handled
// since the last save, at most SaveEvery's worth, are delivered again;
// copytruncate loses the lines written between logrotate's copy and its
// truncate that were not read yet (inherent in copytruncate); lines a
// writer adds to the old file after the new one has data are not read
// (writers reopen before writing to the new file); and a file rotated
// twice while the follower was down loses the middle generation.
//
// Lines longer than MaxLine are cut to MaxLine bytes and counted; the rest
// of such a line is read and dropped, never buffered. The saved offset is
// always at a line boundary, so a partial line is read again, whole, after
// a restart.
package tail

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults of Options.
const (
	DefaultPoll      = 250 * time.Millisecond
	DefaultMaxLine   = 64 << 10
	DefaultSaveEvery = time.Second
)

// headSize is how many leading bytes of a file identify it.
const headSize = 256

// Position is where a file was read up to.
type Position struct {
	// Dev and Inode identify the file.
	Dev, Inode uint64
	// Offset is the byte after the last line handled.
	Offset int64
	// Head is the hex SHA-256 of the file's first min(256, Offset) bytes, to
	// tell a recycled inode from the file itself.
	Head string
}

// Stats counts what a follower did; read the fields at any time.
type Stats struct {
	// Lines handled (the callback returned nil), including cut ones.
	Lines atomic.Int64
	// CutLines were longer than MaxLine and delivered cut.
	CutLines atomic.Int64
	// Rotations are switches to a new file at the path.
	Rotations atomic.Int64
	// Truncations are restarts from byte 0 of the same file.
	Truncations atomic.Int64
}

// Options configure Follow.
type Options struct {
	// Path is the log file. Its directory must exist.
	Path string
	// Offsets saves and loads the position; nil follows without saving.
	Offsets Offsets
	// Poll is how often the file is checked (default 250ms).
	Poll time.Duration
	// StartAtEnd applies when no position was saved: true skips what the
	// file holds already (beginning with its unterminated last line, if
	// any), false reads it from the start. A file that appears after Follow
	// started is always read from the start.
	StartAtEnd bool
	// MaxLine is the longest line delivered (default 64 KiB); longer ones
	// are cut and counted in Stats.CutLines.
	MaxLine int
	// SaveEvery is the most often the position is saved while lines flow
	// (default 1s).
	SaveEvery time.Duration
	// Logger reports rotations, truncations and lost files (default: none).
	Logger *slog.Logger
	// Stats, if not nil, is updated as lines are handled.
	Stats *Stats
}

// Follow calls fn for each complete line of opt.Path, in order, without the
// newline, until ctx is done (it returns ctx.Err()), fn fails (it returns
// that error, wrapped, and the failed line is delivered again by the next
// Follow), or reading or loading the position fails. line is only valid
// during the call. An unterminated last line waits until it is completed,
// or until the file is rotated away, when it is delivered as it is. See the
// package comment for rotation, truncation and restarts.
func Follow(ctx context.Context, opt Options, fn func(line []byte) error) error {
	if opt.Path == "" {
		return errors.New("tail: no path to follow")
	}
	if opt.Poll <= 0 {
		opt.Poll = DefaultPoll
	}
	if opt.MaxLine <= 0 {
		opt.MaxLine = DefaultMaxLine
	}
	if opt.SaveEvery <= 0 {
		opt.SaveEvery = DefaultSaveEvery
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Stats == nil {
		opt.Stats = new(Stats)
	}
	dir := filepath.Dir(opt.Path)
	if fi, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("tail %s: directory %s does not exist; check the log path", opt.Path, dir)
		}
		return fmt.Errorf("tail %s: %w", opt.Path, err)
	} else if !fi.IsDir() {
		return fmt.Errorf("tail %s: %s is not a directory; check the log path", opt.Path, dir)
	}
	fl := &follower{opt: opt, fn: fn, log: opt.Logger.With("path", opt.Path), buf: make([]byte, 64<<10)}
	defer fl.close()
	err := fl.start(ctx)
	for err == nil {
		if err = fl.poll(ctx); err != nil {
			break
		}
		if err = fl.save(ctx, false); err != nil {
			break
		}
		t := time.NewTimer(opt.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			err = ctx.Err()
		case <-t.C:
		}
	}
	// Save what was handled even though ctx may be done.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if serr := fl.save(sctx, true); serr != nil {
		err = errors.Join(err, serr)
	}
	return err
}

// follower is the state of one Follow.
type follower struct {
	opt Options
	fn  func([]byte) error
	log *slog.Logger
	buf []byte // read buffer

	f        *os.File // nil while the path does not exist
	dev, ino uint64
	offset   int64  // after the last handled line
	readOff  int64  // bytes read from f: offset plus the pending line
	head     []byte // f's first min(headSize, readOff) bytes

	pending    []byte // the unterminated line, up to MaxLine bytes
	pendingRaw int64  // its length in the file
	cut        bool   // pending was cut at MaxLine
	skipLine   bool   // drop the current line: its start was never read

	saved    Position
	hasSaved bool
	lastSave time.Time
}

func (fl *follower) close() {
	if fl.f != nil {
		fl.f.Close() // read-only: nothing to lose
		fl.f = nil
	}
}

// start opens the file where the saved position, or StartAtEnd, says.
func (fl *follower) start(ctx context.Context) error {
	var saved Position
	var ok bool
	if fl.opt.Offsets != nil {
		var err error
		saved, ok, err = fl.opt.Offsets.Load(ctx, fl.opt.Path)
		if err != nil {
			return fmt.Errorf("tail %s: %w", fl.opt.Path, err)
		}
		if ok {
			fl.saved, fl.hasSaved = saved, true
		}
	}
	f, fi, err := openFile(fl.opt.Path)
	if err != nil {
		return err
	}
	if ok {
		if f != nil && sameFile(fi, saved.Dev, saved.Inode) {
			if fi.Size() >= saved.Offset && headMatches(f, saved) {
				return fl.use(f, fi, saved.Offset)
			}
			fl.log.Info("log file truncated or replaced while not followed; reading it from the start")
			fl.opt.Stats.Truncations.Add(1)
			return fl.use(f, fi, 0)
		}
		if rf, rfi := findRotated(fl.opt.Path, saved); rf != nil {
			fl.log.Info("log file rotated while not followed; finishing the rotated file first", "rotated", rf.Name(), "offset", saved.Offset)
			if f != nil {
				f.Close() // read-only; reopened once the rotated file is read
			}
			return fl.use(rf, rfi, saved.Offset)
		}
		fl.log.Warn("log file rotated while not followed and the old file is gone; lines after the saved offset are lost", "offset", saved.Offset)
	}
	if f == nil {
		// Wait for it; poll reads it from the start.
		fl.log.Info("log file does not exist yet; waiting for it")
		return nil
	}
	if ok {
		return fl.use(f, fi, 0)
	}
	if !fl.opt.StartAtEnd {
		return fl.use(f, fi, 0)
	}
	start, skip, err := lastLineStart(f, fi.Size(), fl.opt.MaxLine)
	if err != nil {
		f.Close()
		return fmt.Errorf("tail %s: %w", fl.opt.Path, err)
	}
	if err := fl.use(f, fi, start); err != nil {
		return err
	}
	fl.skipLine = skip
	return nil
}

// openFile opens path for reading; a missing file is (nil, nil, nil).
func openFile(path string) (*os.File, fs.FileInfo, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("tail: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("tail: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("tail: %s is not a regular file", path)
	}
	return f, fi, nil
}

// use makes f, positioned at off, the file being read.
func (fl *follower) use(f *os.File, fi fs.FileInfo, off int64) error {
	fl.close()
	fl.f = f
	fl.dev, fl.ino = fileID(fi)
	fl.offset, fl.readOff = off, off
	fl.pending, fl.pendingRaw, fl.cut, fl.skipLine = fl.pending[:0], 0, false, false
	fl.head = fl.head[:0]
	if off > 0 {
		h, err := readHead(f, min(off, headSize))
		switch {
		case err == io.EOF:
			// Truncated since it was looked at: it is all new.
			fl.opt.Stats.Truncations.Add(1)
			fl.offset, fl.readOff = 0, 0
			off = 0
		case err != nil:
			return fmt.Errorf("tail %s: %w", f.Name(), err)
		default:
			fl.head = append(fl.head, h...)
		}
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return fmt.Errorf("tail %s: %w", f.Name(), err)
	}
	return nil
}

// poll reads what is new and handles rotation and truncation.
func (fl *follower) poll(ctx context.Context) error {
	if fl.f == nil {
		f, fi, err := openFile(fl.opt.Path)
		if err != nil || f == nil {
			return err
		}
		fl.log.Info("log file appeared")
		if err := fl.use(f, fi, 0); err != nil {
			return err
		}
	}
	if err := fl.readAll(ctx); err != nil {
		return err
	}
	fi, err := os.Stat(fl.opt.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // moved or deleted: keep reading the open file
	}
	if err != nil {
		return fmt.Errorf("tail: %w", err)
	}
	if sameFile(fi, fl.dev, fl.ino) {
		intact, err := fl.intact(true)
		if err != nil || intact {
			return err
		}
		if err := fl.truncated(); err != nil {
			return err
		}
		return fl.readAll(ctx)
	}
	if fi.Size() == 0 {
		return nil // see the package comment: wait for the writer to switch
	}
	// Rotated: finish the old file (unless it was truncated meanwhile:
	// then there is nothing left to finish), then switch.
	if _, err := fl.drain(ctx); err != nil || ctx.Err() != nil {
		return err
	}
	if err := fl.flushPartial(); err != nil {
		return err
	}
	f, nfi, err := openFile(fl.opt.Path)
	if err != nil {
		return err
	}
	fl.opt.Stats.Rotations.Add(1)
	fl.log.Info("log file rotated; following the new file")
	if f == nil { // gone again between stat and open
		fl.close()
		return nil
	}
	if err := fl.use(f, nfi, 0); err != nil {
		return err
	}
	return fl.readAll(ctx)
}

// readAll reads the open file to its end, starting over from byte 0 when
// it turns out truncated.
func (fl *follower) readAll(ctx context.Context) error {
	for {
		trunc, err := fl.drain(ctx)
		if err != nil || !trunc {
			return err
		}
		if err := fl.truncated(); err != nil {
			return err
		}
	}
}

// truncated starts the open file over from byte 0.
func (fl *follower) truncated() error {
	if err := fl.flushPartial(); err != nil {
		return err
	}
	fi, err := fl.f.Stat()
	if err != nil {
		return fmt.Errorf("tail %s: %w", fl.f.Name(), err)
	}
	fl.opt.Stats.Truncations.Add(1)
	fl.log.Info("log file truncated; reading it from the start")
	f := fl.f
	fl.f = nil // keep it open across use
	return fl.use(f, fi, 0)
}

// intact reports whether the open file still starts with the bytes read
// from it and, if checkSize, is no shorter than what was read.
func (fl *follower) intact(checkSize bool) (bool, error) {
	if checkSize {
		fi, err := fl.f.Stat()
		if err != nil {
			return false, fmt.Errorf("tail %s: %w", fl.f.Name(), err)
		}
		if fi.Size() < fl.readOff {
			return false, nil
		}
	}
	if len(fl.head) == 0 {
		return true, nil
	}
	h, err := readHead(fl.f, int64(len(fl.head)))
	if err == io.EOF {
		return false, nil // shorter than its head
	}
	if err != nil {
		return false, fmt.Errorf("tail %s: %w", fl.f.Name(), err)
	}
	return bytes.Equal(h, fl.head), nil
}

// drain reads the open file to its end, handling complete lines. Each
// chunk is checked against the file's head after it is read and before its
// lines are handled: if the file was truncated and written again past the
// read offset, the chunk belongs to the new content at an arbitrary
// offset; drain then stops and reports true without handling it.
func (fl *follower) drain(ctx context.Context) (truncated bool, err error) {
	for ctx.Err() == nil {
		n, err := fl.f.Read(fl.buf)
		if n > 0 {
			intact, ierr := fl.intact(false)
			if ierr != nil {
				return false, ierr
			}
			if !intact {
				return true, nil
			}
			if err := fl.consume(fl.buf[:n]); err != nil {
				return false, err
			}
			if err := fl.save(ctx, false); err != nil {
				return false, err
			}
		}
		if err == io.EOF || (err == nil && n == 0) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("tail: read %s: %w", fl.f.Name(), err)
		}
	}
	return false, nil
}

// consume splits a chunk read at readOff into lines.
func (fl *follower) consume(chunk []byte) error {
	if len(fl.head) < headSize && fl.readOff == int64(len(fl.head)) {
		fl.head = append(fl.head, chunk[:min(len(chunk), headSize-len(fl.head))]...)
	}
	fl.readOff += int64(len(chunk))
	for len(chunk) > 0 {
		i := bytes.IndexByte(chunk, '\n')
		if i < 0 {
			fl.addPartial(chunk)
			return nil
		}
		seg := chunk[:i]
		chunk = chunk[i+1:]
		line := seg
		if fl.pendingRaw == 0 && len(seg) <= fl.opt.MaxLine {
			fl.pendingRaw = int64(len(seg)) // fast path: no copy
		} else {
			fl.addPartial(seg)
			line = fl.pending
		}
		if err := fl.deliver(line, fl.pendingRaw+1); err != nil {
			return err
		}
	}
	return nil
}

// addPartial appends part of a line, keeping at most MaxLine bytes.
func (fl *follower) addPartial(b []byte) {
	fl.pendingRaw += int64(len(b))
	if fl.skipLine {
		return
	}
	if room := fl.opt.MaxLine - len(fl.pending); len(b) > room {
		b = b[:room]
		fl.cut = true
	}
	fl.pending = append(fl.pending, b...)
}

// deliver hands line, which took raw bytes of the file, to the callback and
// moves the offset past it.
func (fl *follower) deliver(line []byte, raw int64) error {
	skip, cut := fl.skipLine, fl.cut
	fl.pending, fl.pendingRaw, fl.cut, fl.skipLine = fl.pending[:0], 0, false, false
	if !skip {
		if err := fl.fn(line); err != nil {
			return fmt.Errorf("tail %s: handling line at offset %d: %w", fl.opt.Path, fl.offset, err)
		}
		fl.opt.Stats.Lines.Add(1)
		if cut {
			fl.opt.Stats.CutLines.Add(1)
			fl.log.Warn("line longer than the limit cut", "offset", fl.offset, "bytes", raw, "limit", fl.opt.MaxLine)
		}
	}
	fl.offset += raw
	return nil
}

// flushPartial delivers the unterminated last line of a file being left.
func (fl *follower) flushPartial() error {
	if fl.pendingRaw == 0 {
		return nil
	}
	return fl.deliver(fl.pending, fl.pendingRaw)
}

// position is the current Position.
func (fl *follower) position() Position {
	sum := sha256.Sum256(fl.head[:min(int64(len(fl.head)), fl.offset)])
	return Position{Dev: fl.dev, Inode: fl.ino, Offset: fl.offset, Head: hex.EncodeToString(sum[:])}
}

// save stores the position if it changed and, unless force, SaveEvery has
// passed since the last save. A failed periodic save is logged and retried;
// a failed forced save is returned.
func (fl *follower) save(ctx context.Context, force bool) error {
	if fl.opt.Offsets == nil || fl.f == nil || (!force && ctx.Err() != nil) {
		return nil
	}
	if !force && time.Since(fl.lastSave) < fl.opt.SaveEvery {
		return nil
	}
	p := fl.position()
	if fl.hasSaved && p == fl.saved {
		return nil
	}
	fl.lastSave = time.Now()
	if err := fl.opt.Offsets.Save(ctx, fl.opt.Path, p); err != nil {
		if force {
			return fmt.Errorf("tail %s: %w", fl.opt.Path, err)
		}
		fl.log.Warn("saving the read position failed; retrying", "err", err)
		return nil
	}
	fl.saved, fl.hasSaved = p, true
	return nil
}

// lastLineStart finds where the unterminated last line of a file of size
// bytes starts, looking back at most maxLine bytes; skip reports that its
// start is further back, so the line must be dropped when it completes.
func lastLineStart(f *os.File, size int64, maxLine int) (start int64, skip bool, err error) {
	if size == 0 {
		return 0, false, nil
	}
	n := min(size, int64(maxLine)+1)
	b := make([]byte, n)
	if _, err := f.ReadAt(b, size-n); err != nil && err != io.EOF {
		return 0, false, err
	}
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return size - n + int64(i) + 1, false, nil
	}
	if n == size {
		return 0, false, nil
	}
	return size, true, nil
}

// readHead reads the first n bytes of f; io.EOF means f is shorter.
func readHead(f *os.File, n int64) ([]byte, error) {
	b := make([]byte, n)
	m, err := f.ReadAt(b, 0)
	if int64(m) == n {
		return b, nil
	}
	return b[:m], err
}

// headMatches reports whether f starts with the bytes p.Head hashes.
func headMatches(f *os.File, p Position) bool {
	h, err := readHead(f, min(p.Offset, headSize))
	if err != nil {
		return false
	}
	sum := sha256.Sum256(h)
	return hex.EncodeToString(sum[:]) == p.Head
}

func fileID(fi fs.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino)
	}
	return 0, 0
}

func sameFile(fi fs.FileInfo, dev, ino uint64) bool {
	d, i := fileID(fi)
	return d == dev && i == ino
}

// compressed are suffixes of rotated files that cannot be resumed.
var compressed = []string{".gz", ".bz2", ".xz", ".zst", ".lz4", ".zip", ".Z"}

// findRotated looks for the file of p among path's siblings whose names
// begin with its base name, and opens it if it is intact up to p.Offset.
func findRotated(path string, p Position) (*os.File, fs.FileInfo) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil
	}
	for _, e := range entries {
		name := e.Name()
		if name == base || !strings.HasPrefix(name, base) || !e.Type().IsRegular() {
			continue
		}
		if compressedSuffix(name) != "" {
			continue
		}
		f, fi, err := openFile(filepath.Join(dir, name))
		if err != nil || f == nil {
			continue
		}
		if sameFile(fi, p.Dev, p.Inode) && fi.Size() >= p.Offset && headMatches(f, p) {
			return f, fi
		}
		f.Close() // read-only
	}
	return nil, nil
}

func compressedSuffix(name string) string {
	for _, s := range compressed {
		if strings.HasSuffix(name, s) {
			return s
		}
	}
	return ""
}
