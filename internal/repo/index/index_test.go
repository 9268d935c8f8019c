package index

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/repo/crypto"
)

func rid() (id ID) {
	_, _ = rand.Read(id[:])
	return id
}

func sampleFile() *File {
	f := &File{KeyID: rid(), Supersedes: []ID{rid(), rid()}}
	for p := 0; p < 3; p++ {
		pk := Pack{ID: rid()}
		off := uint32(0)
		for b := 0; b < 5; b++ {
			bl := Blob{Type: uint8(b % 2), Flags: uint8(b % 2), ID: rid(), Offset: off, Length: 100 + uint32(b), RawLength: 300}
			off += bl.Length
			pk.Blobs = append(pk.Blobs, bl)
		}
		f.Packs = append(f.Packs, pk)
	}
	return f
}

func equalFiles(t *testing.T, a, b *File) {
	t.Helper()
	if a.KeyID != b.KeyID || len(a.Supersedes) != len(b.Supersedes) || len(a.Packs) != len(b.Packs) {
		t.Fatalf("files differ: %+v vs %+v", a, b)
	}
	for i := range a.Packs {
		if a.Packs[i].ID != b.Packs[i].ID || len(a.Packs[i].Blobs) != len(b.Packs[i].Blobs) {
			t.Fatalf("pack %d differs", i)
		}
		for j := range a.Packs[i].Blobs {
			if a.Packs[i].Blobs[j] != b.Packs[i].Blobs[j] {
				t.Fatalf("pack %d blob %d: %+v vs %+v", i, j, a.Packs[i].Blobs[j], b.Packs[i].Blobs[j])
			}
		}
	}
}

func TestSealOpen(t *testing.T) {
	full, _ := crypto.NewSecrets(nil)
	wo := full.WriteOnlyCopy()
	for _, s := range []*crypto.Secrets{full, wo} {
		f := sampleFile()
		data, err := f.Seal(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, reader := range []*crypto.Secrets{full, wo} {
			g, err := Open(reader, data)
			if err != nil {
				t.Fatalf("%s written, %s reading: %v", s.Kind, reader.Kind, err)
			}
			equalFiles(t, f, g)
			if g.Signed != (s.Kind == crypto.Full) {
				t.Fatalf("%s-written index: Signed=%v", s.Kind, g.Signed)
			}
		}
		if bytes.Contains(data, f.Packs[0].ID[:]) {
			t.Fatal("pack id readable in the sealed index")
		}
		other, _ := crypto.NewSecrets(nil)
		if _, err := Open(other, data); err == nil {
			t.Fatal("foreign key opened the index")
		}
	}
}

func TestForgedSignature(t *testing.T) {
	full, _ := crypto.NewSecrets(nil)
	f := sampleFile()
	plain, err := f.Encode(full)
	if err != nil {
		t.Fatal(err)
	}
	// A write-only attacker edits a signed index (moving a blob to another
	// pack) and keeps the flag: the signature no longer verifies.
	bad := bytes.Clone(plain)
	copy(bad[2+32+1+64:], make([]byte, 32))
	if _, err := Decode(full, bad); err == nil {
		t.Fatal("edited signed index accepted")
	}
	// Signing with another repository's key does not help.
	other, _ := crypto.NewSecrets(nil)
	plain2, _ := f.Encode(other)
	if _, err := Decode(full, plain2); err == nil {
		t.Fatal("index signed by a foreign key accepted")
	}
	// Without the flag it decodes, but unsigned.
	unsigned := bytes.Clone(plain[:len(plain)-64])
	unsigned[1] = 0
	g, err := Decode(full, unsigned)
	if err != nil || g.Signed {
		t.Fatalf("unsigned: %v signed=%v", err, g != nil && g.Signed)
	}
}

func TestDecodeRejects(t *testing.T) {
	wo, _ := crypto.NewSecrets(nil)
	wo = wo.WriteOnlyCopy()
	good, _ := sampleFile().Encode(wo)
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	blob0 := 2 + 32 + 1 + 64 + 1 + 32 + 1 // first blob's type byte
	cases := map[string][]byte{
		"empty":                         nil,
		"version":                       mut(func(b []byte) []byte { b[0] = 2; return b }),
		"unknown flags":                 mut(func(b []byte) []byte { b[1] = 4; return b }),
		"truncated":                     good[:len(good)-1],
		"trailing":                      append(bytes.Clone(good), 0),
		"blob type":                     mut(func(b []byte) []byte { b[blob0] = 7; return b }),
		"blob flags":                    mut(func(b []byte) []byte { b[blob0+1] = 2; return b }),
		"huge count":                    mut(func(b []byte) []byte { return append(b[:2+32], 0xff, 0xff, 0xff, 0xff, 0x0f) }),
		"signed flag without signature": mut(func(b []byte) []byte { b[1] = 1; return b }),
	}
	for name, b := range cases {
		if _, err := Decode(wo, b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Overlapping blobs within a pack.
	f := sampleFile()
	f.Packs[0].Blobs[1].Offset = 0
	b, _ := f.Encode(wo)
	if _, err := Decode(wo, b); err == nil {
		t.Error("overlapping blobs accepted")
	}
}

func TestIndexTrust(t *testing.T) {
	x := New()
	f := sampleFile()
	x.AddFile(rid(), f, false)
	b := f.Packs[0].Blobs[0]
	if _, ok := x.Lookup(b.Type, b.ID); !ok {
		t.Fatal("untrusted entry not readable")
	}
	if x.Has(b.Type, b.ID) {
		t.Fatal("untrusted entry used for dedup")
	}
	// A trusted copy in another pack wins; a later untrusted one does not
	// replace it.
	p := Pack{ID: rid(), Blobs: []Blob{b}}
	x.AddPack(p)
	if loc, _ := x.Lookup(b.Type, b.ID); loc.Pack != p.ID || !x.Has(b.Type, b.ID) {
		t.Fatal("trusted copy did not take over")
	}
	x.AddFile(rid(), &File{Packs: []Pack{{ID: rid(), Blobs: []Blob{b}}}}, false)
	if loc, _ := x.Lookup(b.Type, b.ID); loc.Pack != p.ID {
		t.Fatal("untrusted copy replaced a trusted one")
	}
	if x.Has(1-b.Type, b.ID) {
		t.Fatal("blob types not kept apart")
	}
	if x.Len() != 15 || len(x.Packs()) != 5 || len(x.Files()) != 2 {
		t.Fatalf("len %d packs %d files %d", x.Len(), len(x.Packs()), len(x.Files()))
	}
}

func FuzzDecode(f *testing.F) {
	s, _ := crypto.NewSecrets(nil)
	wo := s.WriteOnlyCopy()
	good, _ := sampleFile().Encode(wo)
	signed, _ := sampleFile().Encode(s)
	f.Add(good)
	f.Add(signed)
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := Decode(s, b)
		if err != nil {
			return
		}
		// What decodes re-encodes to something that decodes the same.
		again, err := g.Encode(wo)
		if err != nil {
			t.Fatal(err)
		}
		h, err := Decode(s, again)
		if err != nil {
			t.Fatalf("re-encoded index does not decode: %v", err)
		}
		equalFiles(t, g, h)
	})
}
