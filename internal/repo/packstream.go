package repo

// Streaming packs into a backend.Stager.
//
// A pack is named by the SHA-256 of its bytes, so a backend that can only
// Save a whole object makes the repository build each pack in a buffer of
// pack_size (16 MiB) and keep a second one filling while the first is
// written: 32 MiB of a backup's heap, live for the whole backup. Under the
// memory limit the backup sets (cmd/bulwark/repoflags.go), that left the
// collector only a few MiB of headroom for everything else, so it ran
// every few tens of milliseconds, and the kernel copied each pack out of
// a buffer long since evicted from the CPU's caches.
//
// With a Stager (the local backend) a data pack streams instead: the
// packer seals blobs into a buffer of streamPiece bytes, hands the full
// buffer to the stream's goroutine, which hashes it and writes it to the
// staged object, and goes on sealing into a second buffer. Finish's tail
// (the rest, the header and the trailer) is written last; the hash is then
// the pack's name and Commit links the staged object into place. The pack's
// bytes are in the page cache, where they would have gone anyway, and the
// heap holds two pieces instead of two packs. Tree packs, small and
// written at the end, and packs with parity (the coder needs the whole
// pack) are still built in memory.
//
// Measured on the benchmark corpus (docs/benchmarks.md), first backup,
// medians of 8 alternating runs on a 2-core VM: wall 1.32 s -> 1.23 s,
// CPU 2.29 s -> 2.15 s, peak RSS unchanged (104-106 MiB: the collector now
// uses the headroom), 35 collections -> 15, live heap after a collection
// 66-69 MB -> 42-44 MB.

import (
	"context"
	"crypto/sha256"
	"hash"

	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/pack"
)

// streamPiece is the capacity of a streaming packer's two buffers: large
// enough that a pack takes few writes, small enough to stay in the CPU's
// caches between sealing and writing. A blob larger than that grows the
// buffer to hold it.
const streamPiece = 1 << 20

// packStream is one pack on its way into a staged object. The packer's
// Writer holds one of its two buffers; the other is in spares, or in
// pieces or being written by run.
type packStream struct {
	st     backend.Staged
	pieces chan []byte // sealed bytes in pack order, for run
	spares chan []byte // buffers run is done with
	done   chan struct{}
	sum    hash.Hash // SHA-256 of what run wrote
	err    error     // run's first failed write; read after done
	closed bool
}

// newPackStream starts streaming into st, with spare as the buffer the
// Writer takes into next.
func newPackStream(st backend.Staged, spare []byte) *packStream {
	s := &packStream{
		st:     st,
		pieces: make(chan []byte, 1),
		spares: make(chan []byte, 2),
		done:   make(chan struct{}),
		sum:    sha256.New(),
	}
	s.spares <- spare
	go s.run()
	return s
}

func (s *packStream) run() {
	defer close(s.done)
	for b := range s.pieces {
		if s.err == nil {
			s.sum.Write(b)
			_, s.err = s.st.Write(b)
		}
		s.spares <- b
	}
}

// flushFor hands w's sealed bytes to the stream when a body of n bytes
// would not fit in w's buffer beside them, so that the buffers keep their
// size. It waits for the spare buffer when the previous piece is still
// being written.
func (s *packStream) flushFor(w *pack.Writer, n int) {
	if w.Buffered() == 0 || w.Buffered()+n+pack.TagSize <= cap(w.Bytes()) {
		return
	}
	s.pieces <- w.Take(<-s.spares)
}

// finish writes the rest of the finished pack (tail, from w.Finish) and
// returns the pack's id and the buffer that is not w's, for the packer's
// next stream. On error the staged object is aborted.
func (s *packStream) finish(tail []byte) (ID, []byte, error) {
	spare := s.stop()
	if s.err == nil {
		s.sum.Write(tail)
		_, s.err = s.st.Write(tail)
	}
	if s.err != nil {
		s.st.Abort()
		return ID{}, spare, s.err
	}
	var id ID
	s.sum.Sum(id[:0])
	return id, spare, nil
}

// abort discards the staged object and returns the spare buffer. It does
// nothing the second time.
func (s *packStream) abort() []byte {
	if s.closed {
		return nil
	}
	spare := s.stop()
	s.st.Abort()
	return spare
}

// stop waits for the pieces handed over so far to be written and returns
// the spare buffer.
func (s *packStream) stop() []byte {
	s.closed = true
	close(s.pieces)
	<-s.done
	return <-s.spares
}

// stage starts a stream for a data packer, when the repository streams
// packs (streams). Called with r.mu held.
func (r *Repository) stage(ctx context.Context, p *packer) error {
	st, err := r.stager.Stage(ctx, backend.PackFile)
	if err != nil {
		return err
	}
	spare := p.spare
	if spare == nil {
		spare = make([]byte, 0, streamPiece)
	}
	p.spare = nil
	p.out = newPackStream(st, spare)
	return nil
}

// streams reports whether data packs stream into the backend: it is a
// Stager and the repository writes no parity.
func (r *Repository) streams() bool {
	return r.stager != nil && r.cfg.Parity == nil
}
