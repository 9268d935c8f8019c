package integrity

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var ctx = context.Background()

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, []byte(content), 0o644))
}

// sampleTree builds a small system-like tree in a temp directory.
func sampleTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	writeFile(t, root+"/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n")
	writeFile(t, root+"/etc/ssh/sshd_config", "PermitRootLogin no\n")
	writeFile(t, root+"/usr/bin/tool", "#!/bin/sh\necho tool\n")
	writeFile(t, root+"/usr/bin/other", "binary bytes")
	must(t, os.Symlink("tool", root+"/usr/bin/link"))
	must(t, syscall.Mkfifo(root+"/usr/bin/fifo", 0o600))
	must(t, os.MkdirAll(root+"/usr/lib/empty", 0o755))
	return root
}

func policyFor(root string) Policy {
	return Policy{Hash: SHA256, Rules: []Rule{{Path: root, Attrs: AllAttrs}}}
}

func scan(t *testing.T, p Policy) *Result {
	t.Helper()
	r, err := Scan(ctx, p, Options{})
	must(t, err)
	return r
}

func find(entries []Entry, p string) *Entry { return findEntry(entries, p) }

func TestScanRecords(t *testing.T) {
	root := sampleTree(t)
	r := scan(t, policyFor(root))
	if len(r.Errors) > 0 {
		t.Fatalf("errors: %v", r.Errors)
	}
	want := []string{"", "/etc", "/etc/passwd", "/etc/ssh", "/etc/ssh/sshd_config", "/usr", "/usr/bin", "/usr/bin/fifo",
		"/usr/bin/link", "/usr/bin/other", "/usr/bin/tool", "/usr/lib", "/usr/lib/empty"}
	var got []string
	for _, e := range r.Entries {
		got = append(got, strings.TrimPrefix(e.Path, root))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paths:\n got %q\nwant %q", got, want)
	}
	tool := find(r.Entries, root+"/usr/bin/tool")
	var st syscall.Stat_t
	must(t, syscall.Lstat(root+"/usr/bin/tool", &st))
	// Known answer: SHA-256 of the file's content.
	if h := tool.Hash; len(h) != 32 || !bytes.Equal(h, sha256Of("#!/bin/sh\necho tool\n")) {
		t.Errorf("hash %x", h)
	}
	if tool.Type != TypeFile || tool.Mode != 0o644 || tool.Size != 20 || tool.Inode != st.Ino || tool.Links != 1 ||
		tool.Mtime != st.Mtim.Nano() || tool.Ctime != st.Ctim.Nano() || tool.UID != st.Uid {
		t.Errorf("tool: %+v", tool)
	}
	if l := find(r.Entries, root+"/usr/bin/link"); l.Type != TypeSymlink || l.Target != "tool" || l.Hash != nil {
		t.Errorf("link: %+v", l)
	}
	if f := find(r.Entries, root+"/usr/bin/fifo"); f.Type != TypeFIFO || f.Hash != nil {
		t.Errorf("fifo: %+v (a FIFO is never opened)", f)
	}
	// BLAKE3 on request.
	p := policyFor(root)
	p.Hash = BLAKE3
	r3 := scan(t, p)
	if h := find(r3.Entries, root+"/usr/bin/tool").Hash; len(h) != 32 || bytes.Equal(h, tool.Hash) {
		t.Errorf("blake3 hash %x", h)
	}
}

// TestNoFalsePositive: an unchanged tree scanned twice differs in nothing,
// and scanning changes nothing a second scan would see (atime included).
func TestNoFalsePositive(t *testing.T) {
	root := sampleTree(t)
	a := scan(t, policyFor(root))
	var before syscall.Stat_t
	must(t, syscall.Lstat(root+"/usr/bin/tool", &before))
	b := scan(t, policyFor(root))
	if rep := Diff(a.Entries, b.Entries, Grading{}); !rep.Clean() {
		t.Fatalf("unchanged tree: %+v", rep)
	}
	var after syscall.Stat_t
	must(t, syscall.Lstat(root+"/usr/bin/tool", &after))
	if before.Atim != after.Atim {
		t.Errorf("hashing changed the access time (no O_NOATIME)")
	}
}

// TestEveryChangeDetected makes one change per case to a fresh tree and
// expects exactly that path reported with that attribute.
func TestEveryChangeDetected(t *testing.T) {
	acl := aclBytes()
	caps := capBytes()
	tests := []struct {
		name   string
		path   string // relative to the root
		change func(t *testing.T, p string)
		kind   string // "changed", "added", "removed"
		attrs  []string
	}{
		{"content, same size, mtime restored", "/usr/bin/tool", func(t *testing.T, p string) {
			var st syscall.Stat_t
			must(t, syscall.Lstat(p, &st))
			must(t, os.WriteFile(p, []byte("#!/bin/sh\necho TOOL\n"), 0o644))
			must(t, os.Chtimes(p, time.Unix(0, st.Atim.Nano()), time.Unix(0, st.Mtim.Nano())))
		}, "changed", []string{"ctime", "hash"}},
		{"mode (set-user-ID)", "/etc/passwd", func(t *testing.T, p string) { must(t, syscall.Chmod(p, 0o4644)) }, "changed", []string{"mode", "ctime"}},
		{"owner", "/etc/passwd", func(t *testing.T, p string) { must(t, os.Lchown(p, 1234, -1)) }, "changed", []string{"owner", "ctime"}},
		{"group", "/etc/passwd", func(t *testing.T, p string) { must(t, os.Lchown(p, -1, 4321)) }, "changed", []string{"group", "ctime"}},
		{"xattr", "/etc/passwd", func(t *testing.T, p string) { setxattr(t, p, "user.note", []byte("x")) }, "changed", []string{"xattrs", "ctime"}},
		{"acl", "/etc/passwd", func(t *testing.T, p string) { setxattr(t, p, xattrACLAccess, acl) }, "changed", []string{"acl", "ctime"}},
		{"capability", "/usr/bin/other", func(t *testing.T, p string) { setxattr(t, p, xattrCaps, caps) }, "changed", []string{"caps", "ctime"}},
		{"symlink retarget", "/usr/bin/link", func(t *testing.T, p string) {
			must(t, os.Remove(p))
			must(t, os.Symlink("other", p))
		}, "changed", []string{"size", "mtime", "ctime", "target"}}, // the inode may be reused
		{"hard-link count", "/usr/bin/other", func(t *testing.T, p string) {
			must(t, os.Link(p, filepath.Join(filepath.Dir(filepath.Dir(p)), "lib", "other-link")))
		}, "changed", []string{"ctime", "links"}},
		{"type file to dir", "/etc/passwd", func(t *testing.T, p string) {
			must(t, os.Remove(p))
			must(t, os.Mkdir(p, 0o644))
		}, "changed", []string{"type", "size", "mtime", "ctime", "links", "hash"}},
		{"added", "/usr/bin/new", func(t *testing.T, p string) { writeFile(t, p, "new") }, "added", nil},
		{"removed", "/etc/ssh/sshd_config", func(t *testing.T, p string) { must(t, os.Remove(p)) }, "removed", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := sampleTree(t)
			base := scan(t, policyFor(root))
			time.Sleep(10 * time.Millisecond) // a ctime after the baseline's
			tt.change(t, root+tt.path)
			cur := scan(t, policyFor(root))
			rep := Diff(base.Entries, cur.Entries, Grading{})
			var list []Finding
			switch tt.kind {
			case "changed":
				list = rep.Changed
			case "added":
				list = rep.Added
			case "removed":
				list = rep.Removed
			}
			var f *Finding
			for i := range list {
				if list[i].Path == root+tt.path {
					f = &list[i]
				}
			}
			if f == nil {
				t.Fatalf("%s not reported as %s: %+v", tt.path, tt.kind, rep)
			}
			for _, a := range tt.attrs {
				if !slices.Contains(f.Attributes, a) {
					t.Errorf("attributes %v lack %q", f.Attributes, a)
				}
			}
			for _, c := range f.Changes {
				if c.Old == c.New {
					t.Errorf("change %+v: old and new alike", c)
				}
			}
		})
	}
}

func setxattr(t *testing.T, p, name string, v []byte) {
	t.Helper()
	if err := unix.Lsetxattr(p, name, v, 0); err != nil {
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
			t.Skipf("setxattr %s here: %v", name, err)
		}
		t.Fatal(err)
	}
}

// aclBytes is a POSIX access ACL in the kernel's xattr encoding: user::rw-,
// user:1000:r--, group::r--, mask::r--, other::r--.
func aclBytes() []byte {
	b := binary.LittleEndian.AppendUint32(nil, 2) // version
	for _, e := range []struct {
		tag, perm uint16
		id        uint32
	}{{0x01, 6, 0xffffffff}, {0x02, 4, 1000}, {0x04, 4, 0xffffffff}, {0x10, 4, 0xffffffff}, {0x20, 4, 0xffffffff}} {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	return b
}

// capBytes is security.capability granting cap_net_raw (bit 13),
// effective: VFS_CAP_REVISION_2.
func capBytes() []byte {
	b := binary.LittleEndian.AppendUint32(nil, 0x02000000|1)
	b = binary.LittleEndian.AppendUint32(b, 1<<13) // permitted, low word
	b = binary.LittleEndian.AppendUint32(b, 0)     // inheritable
	b = binary.LittleEndian.AppendUint32(b, 0)
	return binary.LittleEndian.AppendUint32(b, 0)
}

// TestRules: the most specific rule decides below its root, exclusions
// by name and by path, globs in rule paths, a missing root is no error.
func TestRules(t *testing.T) {
	root := sampleTree(t)
	writeFile(t, root+"/home/ann/.ssh/authorized_keys", "ssh-ed25519 AAAA ann\n")
	writeFile(t, root+"/home/bob/.ssh/authorized_keys", "ssh-ed25519 AAAA bob\n")
	writeFile(t, root+"/home/bob/notes.txt", "not watched")
	writeFile(t, root+"/etc/skip.swp", "x")
	p := Policy{Hash: SHA256, Exclude: []string{"*.swp"}, Rules: []Rule{
		{Path: root + "/etc", Attrs: AllAttrs, Exclude: []string{root + "/etc/ssh"}},
		{Path: root + "/usr", Attrs: AllAttrs},
		{Path: root + "/usr/bin", Attrs: AttrType | AttrMode},
		{Path: root + "/home/*/.ssh/authorized_keys", Attrs: AllAttrs},
		{Path: root + "/missing", Attrs: AllAttrs},
	}}
	r := scan(t, p)
	if len(r.Errors) > 0 {
		t.Fatalf("errors: %v", r.Errors)
	}
	for _, q := range []string{"/etc/skip.swp", "/etc/ssh", "/etc/ssh/sshd_config", "/home/bob/notes.txt", "/missing"} {
		if find(r.Entries, root+q) != nil {
			t.Errorf("%s recorded", q)
		}
	}
	for _, q := range []string{"/home/ann/.ssh/authorized_keys", "/home/bob/.ssh/authorized_keys", "/etc/passwd"} {
		if e := find(r.Entries, root+q); e == nil || e.Hash == nil {
			t.Errorf("%s: %+v", q, e)
		}
	}
	if e := find(r.Entries, root+"/usr/bin/tool"); e == nil || e.Attrs != AttrType|AttrMode || e.Hash != nil || e.Size != 0 {
		t.Errorf("/usr/bin/tool under its own rule: %+v", e)
	}
	if e := find(r.Entries, root+"/usr/lib/empty"); e == nil || e.Attrs != AllAttrs {
		t.Errorf("/usr/lib/empty under /usr's rule: %+v", e)
	}
}

func TestParseAttrs(t *testing.T) {
	a, err := ParseAttrs([]string{"p+u+g+s+m+c+i+n+sha256"})
	must(t, err)
	if want := AttrMode | AttrOwner | AttrGroup | AttrSize | AttrMtime | AttrCtime | AttrInode | AttrLinks | AttrHash; a != want {
		t.Errorf("AIDE style: %s, want %s", a, want)
	}
	if a, _ := ParseAttrs([]string{"mode", "hash"}); a != AttrMode|AttrHash {
		t.Errorf("names: %s", a)
	}
	if a, _ := ParseAttrs([]string{"all"}); a != AllAttrs || len(a.Names()) != attrCount {
		t.Errorf("all: %s", a)
	}
	// In the baseline header and JSON, a set is its list of names.
	b, err := json.Marshal(Rule{Path: "/x", Attrs: AttrMode | AttrHash})
	must(t, err)
	if string(b) != `{"path":"/x","attrs":["mode","hash"]}` {
		t.Errorf("JSON: %s", b)
	}
	var back Rule
	if err := json.Unmarshal(b, &back); err != nil || back.Attrs != AttrMode|AttrHash {
		t.Errorf("JSON back: %+v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"attrs":["mode","colour"]}`), &back); err == nil {
		t.Error("unknown attribute in JSON accepted")
	}
	for _, bad := range [][]string{{"colour"}, {}, {"+"}} {
		if _, err := ParseAttrs(bad); err == nil {
			t.Errorf("ParseAttrs(%q): no error", bad)
		}
	}
}

func testKey(b byte) ed25519.PrivateKey { return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, 32)) }

// TestBaselineRoundTrip: what is written is read back alike, and any
// change to the file, another key, or a truncation is refused.
func TestBaselineRoundTrip(t *testing.T) {
	root := sampleTree(t)
	p := filepath.Join(root, "usr/bin/other")
	setxattr(t, p, "user.a", []byte("1"))
	r := scan(t, policyFor(root))
	r.Entries[1].setRare(&Rare{Error: "read: input/output error"})
	key := testKey(1)
	var b bytes.Buffer
	h := Header{Created: time.Unix(1700000000, 0).UTC(), Host: "h", Policy: policyFor(root)}
	digest, err := Encode(&b, h, r.Entries, key)
	must(t, err)
	data := b.Bytes()
	bl, err := Decode(data, key.Public().(ed25519.PublicKey))
	must(t, err)
	if bl.Digest != digest || bl.Header.Host != "h" || bl.Header.Entries != len(r.Entries) || !bl.Header.Created.Equal(h.Created) {
		t.Errorf("header: %+v", bl.Header)
	}
	if !reflect.DeepEqual(bl.Entries, r.Entries) {
		for i := range r.Entries {
			if !reflect.DeepEqual(bl.Entries[i], r.Entries[i]) {
				t.Fatalf("entry %d:\n got %+v\nwant %+v", i, bl.Entries[i], r.Entries[i])
			}
		}
		t.Fatal("entries differ")
	}
	// The one entry recorded as unreadable is reported until it reads.
	if rep := Diff(bl.Entries, r.Entries, Grading{}); len(rep.Changed) != 1 || rep.Changed[0].Path != r.Entries[1].Path || rep.Count() != 1 {
		t.Errorf("decoded baseline against the scan: %+v", rep)
	}

	// Every single-byte change is caught (a sample of positions).
	for i := 0; i < len(data); i += max(1, len(data)/97) {
		bad := bytes.Clone(data)
		bad[i] ^= 0x20
		if _, err := Decode(bad, key.Public().(ed25519.PublicKey)); err == nil {
			t.Fatalf("byte %d flipped: accepted", i)
		}
	}
	if _, err := Decode(data, testKey(2).Public().(ed25519.PublicKey)); !errors.Is(err, ErrTampered) {
		t.Errorf("another key: %v", err)
	}
	for _, n := range []int{0, 10, len(magic) + 3, len(data) - 1} {
		if _, err := Decode(data[:n], key.Public().(ed25519.PublicKey)); err == nil {
			t.Errorf("truncated to %d bytes: accepted", n)
		}
	}
	// An entry removed and the file re-signed by an intruder's own key is
	// refused with the real public key.
	var forged bytes.Buffer
	_, err = Encode(&forged, h, slices.Delete(slices.Clone(r.Entries), 2, 3), testKey(3))
	must(t, err)
	if _, err := Decode(forged.Bytes(), key.Public().(ed25519.PublicKey)); !errors.Is(err, ErrTampered) {
		t.Errorf("forged baseline: %v", err)
	}
}

// TestDecodeBodyRejects: a body signed correctly but malformed is still
// refused (a signing key used on a bad file, or a decoder bug).
func TestDecodeBodyRejects(t *testing.T) {
	key := testKey(1)
	h := Header{Policy: Policy{Hash: SHA256, Rules: []Rule{{Path: "/x", Attrs: AllAttrs}}}}
	good := []Entry{{Path: "/a", Attrs: AttrMode, Mode: 0o644}, {Path: "/b", Attrs: AttrMode, Mode: 0o600}}
	var b bytes.Buffer
	_, err := Encode(&b, h, good, key)
	must(t, err)
	body := b.Bytes()[:b.Len()-ed25519.SignatureSize]
	if _, err := decodeBody(body); err != nil {
		t.Fatal(err)
	}
	rec := func(e Entry) []byte { return appendRecord(nil, &e) }
	frame := func(recs ...[]byte) []byte {
		hj := body[len(magic):]
		n, k := binary.Uvarint(hj)
		out := append([]byte(magic), hj[:k+int(n)]...)
		for _, r := range recs {
			out = binary.AppendUvarint(out, uint64(len(r)))
			out = append(out, r...)
		}
		return append(out, 0)
	}
	for name, bad := range map[string][]byte{
		"unsorted":       frame(rec(good[1]), rec(good[0])),
		"duplicate":      frame(rec(good[0]), rec(good[0])),
		"relative path":  frame(rec(Entry{Path: "a", Attrs: AttrMode}), rec(good[1])),
		"mode too big":   frame(append(appendBytes(nil, []byte("/a")), byte(AttrMode), 0xff, 0xff, 0x03, 0), rec(good[1])),
		"unknown type":   frame(append(appendBytes(nil, []byte("/a")), byte(AttrType), 'z', 0), rec(good[1])),
		"count mismatch": frame(rec(good[0])),
		"trailing bytes": append(frame(rec(good[0]), rec(good[1])), 1),
		"record padding": frame(append(rec(good[0]), 0), rec(good[1])),
	} {
		if _, err := decodeBody(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzDecodeBody(f *testing.F) {
	key := testKey(1)
	var b bytes.Buffer
	h := Header{Policy: Policy{Hash: SHA256, Rules: []Rule{{Path: "/x", Attrs: AllAttrs}}}}
	_, err := Encode(&b, h, []Entry{
		{Path: "/a", Attrs: AllAttrs, Type: TypeFile, Mode: 0o644, Hash: make([]byte, 32), Rare: &Rare{Xattrs: []Xattr{{"user.a", []byte("v")}}, ACL: []byte{}}},
		{Path: "/b", Attrs: AttrTarget | AttrType, Type: TypeSymlink, Rare: &Rare{Target: "a", Error: "x"}},
	}, key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes()[:b.Len()-ed25519.SignatureSize])
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, body []byte) {
		bl, err := decodeBody(body)
		if err != nil {
			return
		}
		// What decodes encodes again to a record that decodes alike.
		for i := range bl.Entries {
			e2, err := decodeRecord(appendRecord(nil, &bl.Entries[i]))
			if err != nil || !reflect.DeepEqual(e2, bl.Entries[i]) {
				t.Fatalf("entry %d does not round-trip: %v\n%+v\n%+v", i, err, bl.Entries[i], e2)
			}
		}
		for _, e := range bl.Entries {
			if e.Attrs&^AllAttrs != 0 || !strings.HasPrefix(e.Path, "/") {
				t.Fatalf("bad entry accepted: %+v", e)
			}
		}
	})
}

// TestAccept folds chosen changes into the baseline.
func TestAccept(t *testing.T) {
	root := sampleTree(t)
	base := scan(t, policyFor(root))
	writeFile(t, root+"/etc/passwd", "changed\n")
	writeFile(t, root+"/usr/bin/new", "new")
	must(t, os.Remove(root+"/etc/ssh/sshd_config"))
	cur := scan(t, policyFor(root))
	if n := Diff(base.Entries, cur.Entries, Grading{}).Count(); n < 3 {
		t.Fatalf("%d findings", n)
	}
	next, n := Accept(base.Entries, cur.Entries, []string{root + "/etc"}, nil)
	rep := Diff(next, cur.Entries, Grading{})
	// /etc's changes (passwd, the removed sshd_config and /etc/ssh's own
	// times) are folded; /usr/bin's are not.
	if n < 2 || len(rep.Changed)+len(rep.Removed) > 1 || len(rep.Added) != 1 || rep.Added[0].Path != root+"/usr/bin/new" {
		t.Errorf("after accepting %s/etc (%d folded): %+v", root, n, rep)
	}
	all, _ := Accept(base.Entries, cur.Entries, nil, nil)
	if rep := Diff(all, cur.Entries, Grading{}); !rep.Clean() {
		t.Errorf("after accepting everything: %+v", rep)
	}
}

func sha256Of(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}
