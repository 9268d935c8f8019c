package tree

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func idOf(b byte) ID {
	var id ID
	for i := range id {
		id[i] = b + byte(i)
	}
	return id
}

func ptr(id ID) *ID { return &id }

var (
	t0 = time.Date(2026, 11, 21, 10, 0, 0, 123456789, time.UTC)
	t1 = time.Date(2026, 11, 21, 10, 0, 1, 5, time.UTC)
)

// sampleTree has one node of every type and every optional member.
func sampleTree() *Tree {
	return &Tree{Nodes: []Node{
		{Name: "-dash", Type: TypeFIFO, Mode: 0o644, ModTime: t0, ChangeTime: t1, Links: 1},
		{Name: "a\nb \"q\"\\", Type: TypeFile, Mode: 0o4755, UID: 1234, GID: 5678, Size: 8192 + 3,
			ModTime: t0, ChangeTime: t1, Inode: 77, Device: 64769, Links: 2,
			Content: []ContentRef{Chunk(idOf(1)), Hole(8192), Chunk(idOf(2))},
			Xattrs:  []Xattr{{Name: "security.capability", Value: []byte{1, 0, 0, 2}}, {Name: "user.empty", Value: []byte{}}}},
		{Name: "dev", Type: TypeCharDev, Mode: 0o666, User: "root", Group: "root", ModTime: t0, ChangeTime: t1, Rdev: 259},
		{Name: "dir", Type: TypeDir, Mode: 0o3777, ModTime: t0, ChangeTime: t1, Links: 3, Subtree: ptr(idOf(9))},
		{Name: "lnk", Type: TypeSymlink, Mode: 0o777, Size: 2, ModTime: t0, ChangeTime: t1, Target: "\xff\xfe"},
		{Name: "sock", Type: TypeSocket, Mode: 0o755, ModTime: t0, ChangeTime: t1, Xattrs: []Xattr{{Name: "trusted.\xff", Value: []byte("v")}}},
		{Name: "zz\u00e9\u2028<&>", Type: TypeFile, Mode: 0o644, User: "jürgen", Group: "staff", ModTime: t0, ChangeTime: t1, Size: 0},
		{Name: "zz\xff\xfe", Type: TypeBlockDev, Mode: 0o600, ModTime: t0, ChangeTime: t1, Rdev: 0},
	}}
}

// TestEncodeGolden pins the canonical form byte for byte: changing it would
// change every tree id, so any change here is a format change.
func TestEncodeGolden(t *testing.T) {
	tr := &Tree{Nodes: []Node{
		{Name: "a.txt", Type: TypeFile, Mode: 0o644, UID: 0, GID: 0, User: "root", Group: "root", Size: 123,
			ModTime: t0, ChangeTime: t1, Inode: 1234, Device: 64769, Links: 1,
			Content: []ContentRef{Chunk(idOf(0)), Hole(4096)}},
		{Name: "d", Type: TypeDir, Mode: 0o755, ModTime: t0, ChangeTime: t0, Links: 2, Subtree: ptr(idOf(0xa0)),
			Xattrs: []Xattr{{Name: "user.x", Value: []byte("hi")}}},
		{Name: "l\xff", Type: TypeSymlink, Mode: 0o777, Size: 3, ModTime: t0, ChangeTime: t0, Links: 1, Target: "a\tb"},
		{Name: "n", Type: TypeCharDev, Mode: 0o666, ModTime: t0, ChangeTime: t0, Links: 1, Rdev: 259},
	}}
	want := `{"nodes":[` +
		`{"name":"a.txt","type":"file","mode":420,"uid":0,"gid":0,"user":"root","group":"root","size":123,` +
		`"mtime":"2026-11-21T10:00:00.123456789Z","ctime":"2026-11-21T10:00:01.000000005Z","inode":1234,"dev":64769,"links":1,` +
		`"content":["000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f","z:4096"]},` +
		`{"name":"d","type":"dir","mode":493,"uid":0,"gid":0,"size":0,"mtime":"2026-11-21T10:00:00.123456789Z",` +
		`"ctime":"2026-11-21T10:00:00.123456789Z","inode":0,"dev":0,"links":2,` +
		`"subtree":"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf","xattrs":[{"name":"user.x","value":"aGk="}]},` +
		`{"name_b64":"bP8=","type":"symlink","mode":511,"uid":0,"gid":0,"size":3,"mtime":"2026-11-21T10:00:00.123456789Z",` +
		`"ctime":"2026-11-21T10:00:00.123456789Z","inode":0,"dev":0,"links":1,"target":"a\tb"},` +
		`{"name":"n","type":"chardev","mode":438,"uid":0,"gid":0,"size":0,"mtime":"2026-11-21T10:00:00.123456789Z",` +
		`"ctime":"2026-11-21T10:00:00.123456789Z","inode":0,"dev":0,"links":1,"rdev":259}]}`
	got, err := tr.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("encoding differs\n got %s\nwant %s", got, want)
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for name, tr := range map[string]*Tree{
		"sample": sampleTree(),
		"empty":  {},
		"random": randomTree(rand.New(rand.NewPCG(1, 2)), 500),
	} {
		t.Run(name, func(t *testing.T) {
			b, err := tr.Encode()
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("decode: %v\n%s", err, b)
			}
			if d := cmp.Diff(tr, got, cmpOpts); d != "" {
				t.Fatalf("round trip (-want +got):\n%s", d)
			}
			b2, err := got.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, b2) {
				t.Fatalf("re-encoding differs:\n%s\n%s", b, b2)
			}
		})
	}
}

// cmpOpts treat nil and empty slices alike (a decoded empty content list
// is nil, an empty xattr value is empty).
var cmpOpts = cmp.Options{cmp.Comparer(func(a, b []byte) bool { return bytes.Equal(a, b) }),
	cmp.Comparer(func(a, b []ContentRef) bool {
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if a[i] != b[i] {
				return false
			}
		}
		return true
	})}

func TestEncodeDeterministic(t *testing.T) {
	a := sampleTree()
	b := sampleTree()
	// Same instants in other time zones, and slices with spare capacity.
	loc := time.FixedZone("X", 5*3600+1800)
	for i := range b.Nodes {
		b.Nodes[i].ModTime = b.Nodes[i].ModTime.In(loc)
		b.Nodes[i].ChangeTime = b.Nodes[i].ChangeTime.In(time.Local)
		b.Nodes[i].Content = append(make([]ContentRef, 0, 64), b.Nodes[i].Content...)
	}
	ea, err := a.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		eb, err := b.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ea, eb) {
			t.Fatalf("equal trees encode differently:\n%s\n%s", ea, eb)
		}
	}
	// And a different tree encodes differently.
	b.Nodes[0].ModTime = b.Nodes[0].ModTime.Add(1)
	if eb, _ := b.Encode(); bytes.Equal(ea, eb) {
		t.Fatal("a 1 ns mtime change did not change the encoding")
	}
}

// TestDecodeAcceptsJSON: any valid JSON spelling decodes to the same tree.
func TestDecodeAcceptsJSON(t *testing.T) {
	canonical := `{"nodes":[{"name":"a/b","type":"file","mode":420,"uid":0,"gid":0,"size":0,` +
		`"mtime":"2026-11-21T10:00:00.123456789Z","ctime":"2026-11-21T10:00:00.123456789Z","inode":0,"dev":0,"links":1}]}`
	_, err := Decode([]byte(canonical))
	if err == nil || !strings.Contains(err.Error(), `node 0 "a/b"`) {
		t.Fatalf("slash in name: got %v", err)
	}
	base := strings.Replace(canonical, "a/b", "a\\u00e9\\u2028", 1)
	want, err := Decode([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if want.Nodes[0].Name != "a\u00e9\u2028" {
		t.Fatalf("name %q", want.Nodes[0].Name)
	}
	variants := map[string]string{
		"white space": " {\n\t\"nodes\" : [ { \"name\" : \"a\u00e9\u2028\" , \"type\":\"file\",\"mode\":420,\"uid\":0,\"gid\":0,\"size\":0," +
			"\"mtime\":\"2026-11-21T10:00:00.123456789Z\",\"ctime\":\"2026-11-21T10:00:00.123456789Z\",\"inode\":0,\"dev\":0,\"links\":1 } ] }\r\n",
		"member order": `{"nodes":[{"links":1,"dev":0,"inode":0,"ctime":"2026-11-21T10:00:00.123456789Z","mtime":"2026-11-21T10:00:00.123456789Z",` +
			`"size":0,"gid":0,"uid":0,"mode":420,"type":"file","name":"a\u00e9\u2028"}]}`,
		"escaped key and surrogate-free escapes": `{"n\u006fdes":[{"name":"a\u00E9\u2028","t\u0079pe":"f\u0069le","mode":420,"uid":0,"gid":0,"size":0,` +
			`"mtime":"2026-11-21T10:00:00.123456789Z","ctime":"2026-11-21T10:00:00.123456789Z","inode":0,"dev":0,"links":1,"content":[],"rdev":0,"user":""}]}`,
	}
	for name, v := range variants {
		got, err := Decode([]byte(v))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if d := cmp.Diff(want, got, cmpOpts); d != "" {
			t.Errorf("%s: (-want +got)\n%s", name, d)
		}
	}
	// A surrogate pair decodes to the one rune.
	got, err := Decode([]byte(strings.Replace(base, `a\u00e9\u2028`, `\ud83d\ude00`, 1)))
	if err != nil || got.Nodes[0].Name != "\U0001F600" {
		t.Fatalf("surrogate pair: %v %+v", err, got)
	}
}

const (
	okNode  = `"type":"file","mode":420,"uid":0,"gid":0,"size":0,"mtime":"2026-11-21T10:00:00.123456789Z","ctime":"2026-11-21T10:00:00.123456789Z","inode":0,"dev":0,"links":1`
	okDir   = `"type":"dir","mode":493,"uid":0,"gid":0,"size":0,"mtime":"2026-11-21T10:00:00.123456789Z","ctime":"2026-11-21T10:00:00.123456789Z","inode":0,"dev":0,"links":2`
	okID    = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	okTimes = `"mtime":"2026-11-21T10:00:00.123456789Z","ctime":"2026-11-21T10:00:00.123456789Z"`
)

func one(members string) string { return `{"nodes":[{` + members + `}]}` }

func TestDecodeRejects(t *testing.T) {
	node := func(name, extra string) string { return `{"name":"` + name + `",` + okNode + extra + `}` }
	tests := []struct {
		name, in, want string
	}{
		{"empty input", ``, "expected '{'"},
		{"not an object", `[]`, "expected '{'"},
		{"no nodes", `{}`, `no "nodes"`},
		{"nodes not array", `{"nodes":{}}`, "expected '['"},
		{"nodes null", `{"nodes":null}`, "expected '['"},
		{"unknown top member", `{"nodes":[],"x":1}`, `unknown member "x"`},
		{"repeated nodes", `{"nodes":[],"nodes":[]}`, "repeated"},
		{"trailing data", `{"nodes":[]} x`, "data after the tree"},
		{"trailing comma", `{"nodes":[` + node("a", "") + `,]}`, "node 1"},
		{"duplicate names", `{"nodes":[` + node("a", "") + `,` + node("a", "") + `]}`, `node 1 "a": duplicate name`},
		{"unsorted", `{"nodes":[` + node("b", "") + `,` + node("a", "") + `]}`, `node 1 "a": not sorted`},
		{"unsorted bytes", `{"nodes":[` + node("\u00e9", "") + `,` + node("z", "") + `]}`, `node 1 "z": not sorted`},
		{"bad type", one(`"name":"a",` + strings.Replace(okNode, `"file"`, `"door"`, 1)), `node 0 "a": type: offset`},
		{"type not string", one(`"name":"a",` + strings.Replace(okNode, `"file"`, `1`, 1)), `node 0 "a": type`},
		{"dotdot", `{"nodes":[` + node("..", "") + `]}`, `node 0 "..": name is . or ..`},
		{"dot", `{"nodes":[` + node(".", "") + `]}`, `name is . or ..`},
		{"slash", `{"nodes":[` + node("a/b", "") + `]}`, `node 0 "a/b": name contains '/'`},
		{"NUL", `{"nodes":[` + node(`a\u0000`, "") + `]}`, `name contains '/' or NUL`},
		{"empty name", `{"nodes":[` + node("", "") + `]}`, "empty name"},
		{"missing name", one(okNode), `missing member "name"`},
		{"missing mtime", one(`"name":"a","type":"file","mode":420,"uid":0,"gid":0,"size":0,"ctime":"2026-11-21T10:00:00.123456789Z","inode":0,"dev":0,"links":1`), `node 0 "a": missing member "mtime"`},
		{"unknown member", `{"nodes":[` + node("a", `,"colour":"red"`) + `]}`, `node 0 "a": offset`},
		{"repeated member", `{"nodes":[` + node("a", `,"mode":420`) + `]}`, `repeated member "mode"`},
		{"name and name_b64", `{"nodes":[` + node("a", `,"name_b64":"/w=="`) + `]}`, "repeated member"},
		{"name_b64 of UTF-8", one(`"name_b64":"YQ==",` + okNode), "base64 form of a UTF-8 string"},
		{"name_b64 bad", one(`"name_b64":"/w",` + okNode), "bad base64"},
		{"name_b64 non-canonical bits", one(`"name_b64":"/x==",` + okNode), "bad base64"},
		{"zero hole", `{"nodes":[` + node("a", `,"content":["z:0"]`) + `]}`, `node 0 "a": content: [0]`},
		{"negative hole", `{"nodes":[` + node("a", `,"content":["z:-1"]`) + `]}`, "hole"},
		{"leading zero hole", `{"nodes":[` + node("a", `,"content":["z:01"]`) + `]}`, "hole"},
		{"huge hole", `{"nodes":[` + node("a", `,"content":["z:9223372036854775808"]`) + `]}`, "hole"},
		{"hole no digits", `{"nodes":[` + node("a", `,"content":["z:"]`) + `]}`, "hole"},
		{"upper hex", `{"nodes":[` + node("a", `,"content":["`+strings.ToUpper(okID)+`"]`) + `]}`, "not lower-case hex"},
		{"short hex", `{"nodes":[` + node("a", `,"content":["abcd"]`) + `]}`, "want 64 hex digits"},
		{"non-hex", `{"nodes":[` + node("a", `,"content":["`+strings.Repeat("g", 64)+`"]`) + `]}`, "not lower-case hex"},
		{"content not string", `{"nodes":[` + node("a", `,"content":[1]`) + `]}`, "expected a string"},
		{"bad subtree", one(`"name":"d",` + okDir + `,"subtree":"xyz"`), `node 0 "d": subtree`},
		{"dir without subtree", one(`"name":"d",` + okDir), "dir without subtree"},
		{"subtree on file", `{"nodes":[` + node("a", `,"subtree":"`+okID+`"`) + `]}`, "subtree on a file"},
		{"content on dir", one(`"name":"d",` + okDir + `,"subtree":"` + okID + `","content":["z:1"]`), "content on a dir"},
		{"symlink without target", one(`"name":"l",` + strings.Replace(okNode, `"file"`, `"symlink"`, 1)), "symlink without target"},
		{"empty target", one(`"name":"l","target":"",` + strings.Replace(okNode, `"file"`, `"symlink"`, 1)), "target: empty"},
		{"target on file", `{"nodes":[` + node("a", `,"target":"x"`) + `]}`, "target on a file"},
		{"rdev on file", `{"nodes":[` + node("a", `,"rdev":5`) + `]}`, "rdev on a file"},
		{"mode too big", one(`"name":"a",` + strings.Replace(okNode, `"mode":420`, `"mode":4096`, 1)), "4096 is more than 4095"},
		{"uid too big", one(`"name":"a",` + strings.Replace(okNode, `"uid":0`, `"uid":4294967296`, 1)), "uid"},
		{"negative number", one(`"name":"a",` + strings.Replace(okNode, `"size":0`, `"size":-1`, 1)), "expected an unsigned integer"},
		{"fraction", one(`"name":"a",` + strings.Replace(okNode, `"size":0`, `"size":1.5`, 1)), "expected an unsigned integer"},
		{"exponent", one(`"name":"a",` + strings.Replace(okNode, `"size":0`, `"size":1e3`, 1)), "expected an unsigned integer"},
		{"leading zero", one(`"name":"a",` + strings.Replace(okNode, `"size":0`, `"size":07`, 1)), "leading zero"},
		{"overflow", one(`"name":"a",` + strings.Replace(okNode, `"size":0`, `"size":18446744073709551616`, 1)), "overflows"},
		{"number as string", one(`"name":"a",` + strings.Replace(okNode, `"size":0`, `"size":"0"`, 1)), "size"},
		{"time without fraction", one(`"name":"a",` + strings.Replace(okNode, "10:00:00.123456789Z", "10:00:00Z", 1)), "mtime"},
		{"time with offset", one(`"name":"a",` + strings.Replace(okNode, "10:00:00.123456789Z", "10:00:00.123456789+01:00", 1)), "mtime"},
		{"time Feb 30", one(`"name":"a",` + strings.Replace(okNode, "2026-11-21", "2026-02-30", 1)), "not of the form"},
		{"time hour 24", one(`"name":"a",` + strings.Replace(okNode, "T10:", "T24:", 1)), "not of the form"},
		{"invalid UTF-8 string", `{"nodes":[` + node("a\xff", "") + `]}`, "not valid UTF-8"},
		{"lone surrogate", `{"nodes":[` + node(`a\ud800`, "") + `]}`, "lone surrogate"},
		{"bad escape", `{"nodes":[` + node(`a\x`, "") + `]}`, "bad escape"},
		{"control char", `{"nodes":[` + node("a\nb", "") + `]}`, "control character"},
		{"unterminated", `{"nodes":[{"name":"a`, "unterminated string"},
		{"truncated", `{"nodes":[` + node("a", ""), "expected ',' or ']'"},
		{"xattrs unsorted", `{"nodes":[` + node("a", `,"xattrs":[{"name":"user.b","value":""},{"name":"user.a","value":""}]`) + `]}`, `xattr "user.a": not sorted or duplicate`},
		{"xattrs duplicate", `{"nodes":[` + node("a", `,"xattrs":[{"name":"user.a","value":""},{"name":"user.a","value":""}]`) + `]}`, "not sorted or duplicate"},
		{"xattr without value", `{"nodes":[` + node("a", `,"xattrs":[{"name":"user.a"}]`) + `]}`, "xattrs: [0]: xattr needs name and value"},
		{"xattr bad value", `{"nodes":[` + node("a", `,"xattrs":[{"name":"user.a","value":"!"}]`) + `]}`, "bad base64"},
		{"xattr empty name", `{"nodes":[` + node("a", `,"xattrs":[{"name":"","value":""}]`) + `]}`, "empty name"},
		{"user with NUL", `{"nodes":[` + node("a", `,"user":"r\u0000"`) + `]}`, "not UTF-8 or contains NUL"},
		{"name too long", `{"nodes":[` + node(strings.Repeat("a", MaxNameLen+1), "") + `]}`, "more than 4096"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode([]byte(tc.in))
			if err == nil {
				t.Fatalf("accepted: %+v", got)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestEncodeRejects(t *testing.T) {
	ok := func() Node {
		return Node{Name: "a", Type: TypeFile, Mode: 0o644, ModTime: t0, ChangeTime: t0}
	}
	tests := []struct {
		name  string
		nodes func() []Node
		want  string
	}{
		{"unsorted", func() []Node { a, b := ok(), ok(); a.Name = "b"; return []Node{a, b} }, `node 1 "a": not sorted`},
		{"duplicate", func() []Node { return []Node{ok(), ok()} }, "duplicate name"},
		{"year 10000", func() []Node { n := ok(); n.ModTime = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC); return []Node{n} }, `node 0 "a": mtime: year 10000`},
		{"negative year", func() []Node { n := ok(); n.ChangeTime = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC); return []Node{n} }, "ctime: year -1"},
		{"mode bits", func() []Node { n := ok(); n.Mode = 0o10644; return []Node{n} }, "more than the low 12 bits"},
		{"bad type", func() []Node { n := ok(); n.Type = "door"; return []Node{n} }, `type "door": unknown`},
		{"hole and id", func() []Node { n := ok(); n.Content = []ContentRef{{ID: idOf(1), Hole: 3}}; return []Node{n} }, "both a hole and a chunk id"},
		{"user not UTF-8", func() []Node { n := ok(); n.User = "\xff"; return []Node{n} }, "user"},
		{"xattr NUL", func() []Node { n := ok(); n.Xattrs = []Xattr{{Name: "user.\x00"}}; return []Node{n} }, "contains NUL"},
		{"target NUL", func() []Node {
			n := ok()
			n.Type, n.Target = TypeSymlink, "a\x00"
			return []Node{n}
		}, "target contains NUL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := &Tree{Nodes: tc.nodes()}
			_, err := tr.Encode()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want error containing %q", err, tc.want)
			}
		})
	}
}

func TestSort(t *testing.T) {
	tr := &Tree{Nodes: []Node{{Name: "\xff"}, {Name: "b"}, {Name: "B"}, {Name: "a b"}, {Name: "-x"}}}
	tr.Sort()
	var got []string
	for _, n := range tr.Nodes {
		got = append(got, n.Name)
	}
	if want := []string{"-x", "B", "a b", "b", "\xff"}; !cmp.Equal(got, want) {
		t.Fatalf("got %q want %q", got, want)
	}
}

func TestID(t *testing.T) {
	id := idOf(0xf0)
	s := id.String()
	if s != "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f" {
		t.Fatalf("String %s", s)
	}
	got, err := ParseID(s)
	if err != nil || got != id {
		t.Fatalf("ParseID: %v %v", got, err)
	}
	text, _ := id.MarshalText()
	var back ID
	if err := back.UnmarshalText(text); err != nil || back != id {
		t.Fatalf("UnmarshalText: %v %v", back, err)
	}
	if id.IsZero() || !(ID{}).IsZero() {
		t.Fatal("IsZero")
	}
	for _, bad := range []string{"", s[:63], s + "0", strings.ToUpper(s), "g" + s[1:], " " + s[1:]} {
		if _, err := ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) accepted", bad)
		}
		if err := back.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) accepted", bad)
		}
	}
}

func TestContentRefString(t *testing.T) {
	if s := Hole(42).String(); s != "z:42" {
		t.Fatal(s)
	}
	if s := Chunk(idOf(0)).String(); s != okID {
		t.Fatal(s)
	}
}

func TestIsWarning(t *testing.T) {
	w := &Warning{Path: "p", Op: "op", Err: fmt.Errorf("x")}
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{w, true},
		{fmt.Errorf("x"), false},
		{joinErrs(w, w), true},
		{joinErrs(w, fmt.Errorf("real")), false},
		{joinErrs(joinErrs(w), w), true},
	}
	for i, tc := range tests {
		if got := IsWarning(tc.err); got != tc.want {
			t.Errorf("%d: IsWarning(%v) = %v", i, tc.err, got)
		}
	}
}

// randomTree makes a valid tree of n nodes with arbitrary bytes in names,
// targets and xattrs.
func randomTree(r *rand.Rand, n int) *Tree {
	types := []NodeType{TypeFile, TypeDir, TypeSymlink, TypeFIFO, TypeCharDev, TypeBlockDev, TypeSocket}
	// randBytes returns min to max arbitrary bytes but NUL and '/', or
	// runes of alphabet.
	randBytes := func(min, max int, alphabet string) string {
		k := min + r.IntN(max-min+1)
		if alphabet != "" {
			runes := []rune(alphabet)
			out := make([]rune, k)
			for i := range out {
				out[i] = runes[r.IntN(len(runes))]
			}
			return string(out)
		}
		b := make([]byte, k)
		for i := range b {
			b[i] = byte(1 + r.IntN(255))
			if b[i] == '/' {
				b[i] = '_'
			}
		}
		return string(b)
	}
	seen := map[string]bool{}
	tr := &Tree{}
	for len(tr.Nodes) < n {
		name := randBytes(1, 30, "")
		if r.IntN(2) == 0 {
			name = randBytes(1, 30, "abc é\n\"\\-_.\u2028")
		}
		if seen[name] || name == "." || name == ".." {
			continue
		}
		seen[name] = true
		nd := Node{
			Name: name, Type: types[r.IntN(len(types))], Mode: uint32(r.IntN(0o10000)),
			UID: r.Uint32(), GID: r.Uint32(), Size: r.Uint64(), Inode: r.Uint64(), Device: r.Uint64(), Links: r.Uint64(),
			ModTime:    time.Unix(r.Int64N(1<<35)-1<<34, r.Int64N(1e9)).UTC(),
			ChangeTime: time.Unix(r.Int64N(1<<33), r.Int64N(1e9)).UTC(),
		}
		if r.IntN(2) == 0 {
			nd.User, nd.Group = randBytes(0, 10, "abcdefgh-é"), randBytes(0, 10, "xyz_")
		}
		switch nd.Type {
		case TypeFile:
			for k := r.IntN(5); k > 0; k-- {
				if r.IntN(3) == 0 {
					nd.Content = append(nd.Content, Hole(1+r.Uint64N(maxHole)))
				} else {
					var id ID
					for i := range id {
						id[i] = byte(r.Uint32())
					}
					nd.Content = append(nd.Content, Chunk(id))
				}
			}
		case TypeDir:
			nd.Subtree = ptr(idOf(byte(r.Uint32())))
		case TypeSymlink:
			nd.Target = randBytes(1, 40, "")
		case TypeCharDev, TypeBlockDev:
			nd.Rdev = r.Uint64()
		}
		for k := r.IntN(3); k > 0; k-- {
			v := []byte(randBytes(0, 20, ""))
			nd.Xattrs = append(nd.Xattrs, Xattr{Name: fmt.Sprintf("user.%c%d", 'a'+k, r.IntN(9)) + randBytes(0, 3, ""), Value: v})
		}
		// xattrs must be sorted: names start with a distinct descending letter.
		for i, j := 0, len(nd.Xattrs)-1; i < j; i, j = i+1, j-1 {
			nd.Xattrs[i], nd.Xattrs[j] = nd.Xattrs[j], nd.Xattrs[i]
		}
		tr.Nodes = append(tr.Nodes, nd)
	}
	tr.Sort()
	return tr
}

func FuzzDecode(f *testing.F) {
	for _, tr := range []*Tree{sampleTree(), {}, randomTree(rand.New(rand.NewPCG(3, 4)), 5)} {
		b, err := tr.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"nodes":[{"links":1,"dev":0,"inode":0,` + okTimes + `,"size":0,"gid":0,"uid":0,"mode":420,"type":"file","name":"\ud83d\ude00"}]}`))
	f.Add([]byte(`{"nodes":[{"name_b64":"/w==",` + okNode + `,"content":["z:1","` + okID + `"],"xattrs":[{"name_b64":"dXNlci7/","value":"AA=="}]}]}`))
	f.Add([]byte(`{"nodes":[{"name":"d",` + okDir + `,"subtree":"` + okID + `"}]}`))
	f.Add([]byte(`{"nodes":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := Decode(data)
		if err != nil {
			return
		}
		enc, err := tr.Encode()
		if err != nil {
			t.Fatalf("decoded tree does not encode: %v", err)
		}
		back, err := Decode(enc)
		if err != nil {
			t.Fatalf("re-encoding does not decode: %v\n%s", err, enc)
		}
		if d := cmp.Diff(tr, back, cmpOpts); d != "" {
			t.Fatalf("re-decoded tree differs:\n%s", d)
		}
		if enc2, _ := back.Encode(); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable")
		}
	})
}

// benchTree is a directory of 10,000 typical files: ASCII names, owner
// names, one to three chunks each.
func benchTree() *Tree {
	tr := &Tree{}
	for i := 0; i < 10000; i++ {
		n := Node{Name: fmt.Sprintf("file-%05d.dat", i), Type: TypeFile, Mode: 0o644, UID: 1000, GID: 1000,
			User: "alice", Group: "staff", Size: uint64(1 << 20 * (1 + i%3)),
			ModTime: t0.Add(time.Duration(i) * time.Second), ChangeTime: t1.Add(time.Duration(i)), Inode: uint64(100000 + i),
			Device: 64769, Links: 1}
		for k := 0; k <= i%3; k++ {
			n.Content = append(n.Content, Chunk(idOf(byte(i+k))))
		}
		tr.Nodes = append(tr.Nodes, n)
	}
	return tr
}

func BenchmarkEncode10k(b *testing.B) {
	tr := benchTree()
	enc, _ := tr.Encode()
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tr.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode10k(b *testing.B) {
	enc, err := benchTree().Encode()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func joinErrs(errs ...error) error { return errors.Join(errs...) }
