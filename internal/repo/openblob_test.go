package repo_test

import (
	"bytes"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/repotest"
)

// TestOpenBlob checks Repository.OpenBlob on a compressed and a stored
// (incompressible) blob: the plaintext comes back in dst when it fits and
// in a new slice when it does not, nothing is allocated once dst has room
// (a restore opens every blob this way), and a damaged body, a blob given
// the wrong id or the wrong length is refused without touching the stored
// bytes.
func TestOpenBlob(t *testing.T) {
	r, dir := repotest.New(t, repotest.Options{})
	rnd := rand.New(rand.NewPCG(7, 8))
	random := make([]byte, 300<<10)
	for i := range random {
		random[i] = byte(rnd.Uint32())
	}
	// Words drawn at random compress to about a third: the body is large
	// enough that a buffer of its size would show.
	words := strings.Fields("the quick brown fox jumps over a lazy dog while seven wizards box and vex one nymph")
	var text strings.Builder
	for text.Len() < 600<<10 {
		text.WriteString(words[rnd.IntN(len(words))])
		text.WriteByte(" \n"[rnd.IntN(2)])
	}
	blobs := map[string][]byte{
		"compressed": []byte(text.String()),
		"stored":     random,
	}
	ids := map[string]repo.ID{}
	for name, data := range blobs {
		id, _, err := r.SaveBlob(ctx, repo.DataBlob, data)
		must(t, err)
		ids[name] = id
	}
	must(t, r.Flush(ctx))
	r = repotest.Open(t, dir, repotest.Password)

	for name, want := range blobs {
		t.Run(name, func(t *testing.T) {
			id := ids[name]
			loc, ok := r.Index().Lookup(repo.DataBlob, id)
			if !ok {
				t.Fatal("blob not in the index")
			}
			if compressed := loc.Flags&1 != 0; compressed != (name == "compressed") {
				t.Fatalf("blob stored with compressed = %v", compressed)
			}
			aead, err := r.PackAEAD(ctx, loc.Pack)
			must(t, err)
			stored, err := r.Backend().Load(ctx, backend.Handle{Type: backend.PackFile, Name: repo.Hex(loc.Pack)}, int64(loc.Offset), int(loc.Length))
			must(t, err)
			pristine := bytes.Clone(stored)

			dst := make([]byte, 0, len(want)+16)
			out, err := r.OpenBlob(aead, loc, id, stored, dst)
			must(t, err)
			if !bytes.Equal(out, want) {
				t.Fatalf("OpenBlob returned %d bytes that differ from the %d saved", len(out), len(want))
			}
			if &out[0] != &dst[:1][0] {
				t.Error("OpenBlob did not write the plaintext into dst, which had room")
			}
			// A buffer for the body or the plaintext would be hundreds of
			// KiB; what remains is the nonce, which escapes through the AEAD
			// interface, and under the race detector the hashers its
			// sync.Pool drops at random.
			if perCall, limit := allocatedPerCall(t, 20, func() {
				if _, err := r.OpenBlob(aead, loc, id, stored, dst); err != nil {
					t.Fatal(err)
				}
			}), uint64(len(stored)/4); perCall > limit {
				t.Errorf("OpenBlob with room in dst allocates %d bytes per call (stored body %d bytes), want at most %d", perCall, len(stored), limit)
			}

			small := make([]byte, 0, 10)
			out, err = r.OpenBlob(aead, loc, id, stored, small)
			must(t, err)
			if !bytes.Equal(out, want) {
				t.Fatal("OpenBlob into a too-small dst returned the wrong plaintext")
			}

			wrongLen := loc
			wrongLen.RawLength++
			other := ids["compressed"]
			if name == "compressed" {
				other = ids["stored"]
			}
			tampered := bytes.Clone(stored)
			tampered[len(tampered)/2] ^= 1
			for what, open := range map[string]func() ([]byte, error){
				"a flipped bit": func() ([]byte, error) { return r.OpenBlob(aead, loc, id, tampered, dst) },
				"the wrong id":  func() ([]byte, error) { return r.OpenBlob(aead, loc, other, stored, dst) },
				"the wrong raw length": func() ([]byte, error) {
					return r.OpenBlob(aead, wrongLen, id, stored, dst)
				},
			} {
				if out, err := open(); err == nil {
					t.Errorf("OpenBlob with %s: %d bytes and no error", what, len(out))
				}
			}
			if !bytes.Equal(stored, pristine) {
				t.Error("OpenBlob changed the stored bytes it was given")
			}
		})
	}
}

// allocatedPerCall returns the bytes fn allocates per call, averaged over n
// calls after a first one (which may fill caches and free lists).
func allocatedPerCall(t *testing.T, n int, fn func()) uint64 {
	t.Helper()
	fn()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		fn()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(n)
}
