package parity

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
)

// FuzzParse decodes arbitrary parity objects. Anything accepted must be
// self-consistent, and Check must then run on it without panicking.
func FuzzParse(f *testing.F) {
	for _, tc := range []struct {
		p Params
		n int
	}{{Params{2, 1}, 13}, {Params{4, 2}, 1000}, {Params{1, 1}, 0}, {Params{3, 3}, 5000}} {
		obj, err := Encode(tc.p, randomPack(1, tc.n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(obj)
		f.Add(obj[:len(obj)-1])
	}
	f.Add([]byte{})
	f.Add([]byte{1, 255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, obj []byte) {
		h, err := Parse(obj)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		if err := h.Params.Validate(); err != nil {
			t.Fatalf("accepted invalid params: %v", err)
		}
		if ObjectSize(h.Params, h.PackLength) != int64(len(obj)) || int64(h.ShardSize) != ShardSize(h.PackLength, h.DataShards) {
			t.Fatalf("accepted inconsistent header %+v for a %d-byte object", h, len(obj))
		}
		if len(h.ShardHashes) != h.DataShards+h.ParityShards {
			t.Fatalf("%d shard hashes for %d+%d shards", len(h.ShardHashes), h.DataShards, h.ParityShards)
		}
		if h.PackLength <= 1<<16 {
			if _, err := Check(make([]byte, h.PackLength), obj); err != nil {
				t.Fatalf("Check after a successful Parse: %v", err)
			}
		}
	})
}

// FuzzRepair damages a pack arbitrarily (the fuzzer's bytes are XORed in at
// an offset, and may cut or extend it). Repair must either fail or return
// the original pack exactly, and Check must find nothing only when the
// damaged pack is the original.
func FuzzRepair(f *testing.F) {
	p := Params{8, 2}
	orig := randomPack(2, 20000)
	obj, err := Encode(p, orig)
	if err != nil {
		f.Fatal(err)
	}
	c, err := NewCoder(p)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{1}, uint16(0), int16(0))
	f.Add([]byte{0xff, 0xff}, uint16(19999), int16(0))
	f.Add(bytes.Repeat([]byte{1}, 5000), uint16(100), int16(-3))
	f.Add([]byte{}, uint16(0), int16(5))
	f.Add([]byte{}, uint16(0), int16(-20000))
	f.Fuzz(func(t *testing.T, x []byte, at uint16, grow int16) {
		d := bytes.Clone(orig)
		for i, b := range x {
			if k := int(at) + i; k < len(d) {
				d[k] ^= b
			}
		}
		switch n := len(d) + int(grow); {
		case n < 0:
			d = d[:0]
		case n < len(d):
			d = d[:n]
		default:
			d = append(d, make([]byte, n-len(d))...)
			for i := len(orig); i < len(d); i++ {
				d[i] = byte(i)
			}
		}
		bad, err := Check(d, obj)
		if err != nil {
			t.Fatal(err)
		}
		if (len(bad) == 0) != bytes.Equal(d, orig) {
			t.Fatalf("Check = %v for a pack that is equal: %v", bad, bytes.Equal(d, orig))
		}
		fixed, rep, err := c.Repair(d, obj)
		if err != nil {
			if !errors.Is(err, ErrTooDamaged) || len(bad) <= p.ParityShards {
				t.Fatalf("Repair with %v bad: %v", bad, err)
			}
			return
		}
		if sha256.Sum256(fixed) != sha256.Sum256(orig) || len(rep) != len(bad) {
			t.Fatalf("Repair returned a different pack (repaired %v, bad %v)", rep, bad)
		}
	})
}
