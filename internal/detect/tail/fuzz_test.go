package tail

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzConsume feeds arbitrary bytes, split into reads at arbitrary points,
// to the line splitter: the lines, cuts and offsets must equal those of a
// plain split of the whole input, whatever the read boundaries.
func FuzzConsume(f *testing.F) {
	f.Add([]byte("a\nb\npartial"), uint8(3), uint8(8))
	f.Add([]byte("\n\n\n"), uint8(1), uint8(1))
	f.Add(bytes.Repeat([]byte("z"), 300), uint8(7), uint8(16))
	f.Add([]byte("Nov 21 10:00:00 host sshd[1]: Invalid user x from 192.0.2.1 port 22\r\n"), uint8(10), uint8(200))
	f.Fuzz(func(t *testing.T, data []byte, step, maxLine uint8) {
		if step == 0 || maxLine == 0 {
			return
		}
		var got [][]byte
		fl := &follower{opt: Options{MaxLine: int(maxLine), Stats: new(Stats)}, log: slog.New(slog.DiscardHandler),
			fn: func(l []byte) error { got = append(got, bytes.Clone(l)); return nil }}
		for i := 0; i < len(data); i += int(step) {
			if err := fl.consume(data[i:min(i+int(step), len(data))]); err != nil {
				t.Fatal(err)
			}
		}
		wantOffset := int64(bytes.LastIndexByte(data, '\n') + 1)
		if fl.offset != wantOffset || fl.readOff != int64(len(data)) {
			t.Fatalf("offset %d, read %d; want %d, %d", fl.offset, fl.readOff, wantOffset, len(data))
		}
		if err := fl.flushPartial(); err != nil {
			t.Fatal(err)
		}
		var want [][]byte
		cuts := int64(0)
		segs := bytes.Split(data, []byte("\n"))
		if len(segs[len(segs)-1]) == 0 {
			segs = segs[:len(segs)-1]
		}
		for _, s := range segs {
			if len(s) > int(maxLine) {
				s = s[:maxLine]
				cuts++
			}
			want = append(want, s)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("lines mismatch (-want +got):\n%s", diff)
		}
		if c := fl.opt.Stats.CutLines.Load(); c != cuts {
			t.Fatalf("CutLines = %d, want %d", c, cuts)
		}
		if fl.offset != int64(len(data)) {
			t.Fatalf("offset after flush %d, want %d", fl.offset, len(data))
		}
		if !bytes.Equal(fl.head, data[:min(len(data), headSize)]) {
			t.Fatalf("head %q, want the first bytes of the input", fl.head)
		}
	})
}
