package tree

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"
)

const (
	gib        = int64(1) << 30
	sparseSize = 5 * gib
	sparseFar  = 9 * gib / 2 // 4.5 GiB
)

func isRoot() bool { return os.Geteuid() == 0 }

// store stands in for the repository: chunks and tree blobs by SHA-256.
type store struct {
	t     *testing.T
	blobs map[ID][]byte
	names *NameCache
}

func newStore(t *testing.T) *store {
	return &store{t: t, blobs: map[ID][]byte{}, names: NewNameCache()}
}

func (s *store) put(b []byte) ID {
	id := ID(sha256.Sum256(b))
	s.blobs[id] = bytes.Clone(b)
	return id
}

// captureDir captures dir recursively as the archiver would and returns the
// id of its tree blob.
func (s *store) captureDir(dir string) ID {
	t := s.t
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var tr Tree
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		n, err := NodeFromPath(p, e.Name(), nil, CaptureOptions{Names: s.names})
		if err != nil {
			t.Fatalf("capture %q: %v", p, err)
		}
		switch n.Type {
		case TypeFile:
			n.Content = s.storeContent(p, int64(n.Size))
		case TypeDir:
			id := s.captureDir(p)
			n.Subtree = &id
		}
		tr.Nodes = append(tr.Nodes, n)
	}
	b, err := tr.Encode()
	if err != nil {
		t.Fatalf("encode %q: %v", dir, err)
	}
	return s.put(b)
}

// storeContent reads the data extents of a file in chunks of at most
// 1 MiB; the holes between them become hole refs.
func (s *store) storeContent(path string, size int64) []ContentRef {
	t := s.t
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ext, err := DataExtents(f, size)
	if err != nil {
		t.Fatal(err)
	}
	var refs []ContentRef
	pos := int64(0)
	buf := make([]byte, 1<<20)
	for _, e := range ext {
		if e.Off > pos {
			refs = append(refs, Hole(uint64(e.Off-pos)))
		}
		for off := e.Off; off < e.Off+e.Len; {
			k := min(int64(len(buf)), e.Off+e.Len-off)
			if _, err := f.ReadAt(buf[:k], off); err != nil {
				t.Fatal(err)
			}
			refs = append(refs, Chunk(s.put(buf[:k])))
			off += k
		}
		pos = e.Off + e.Len
	}
	if pos < size {
		refs = append(refs, Hole(uint64(size-pos)))
	}
	return refs
}

type inodeKey struct{ dev, ino uint64 }

// restoreDir restores the tree blob id into the existing directory dir.
func (s *store) restoreDir(id ID, dir string, links map[inodeKey]string) {
	t := s.t
	tr, err := Decode(s.blobs[id])
	if err != nil {
		t.Fatalf("decode tree of %q: %v", dir, err)
	}
	for _, n := range tr.Nodes {
		p := filepath.Join(dir, n.Name)
		switch n.Type {
		case TypeFile:
			key := inodeKey{n.Device, n.Inode}
			if first, ok := links[key]; ok && n.Links > 1 {
				if err := os.Link(first, p); err != nil {
					t.Fatal(err)
				}
				break
			}
			links[key] = p
			s.restoreFile(p, n)
		case TypeDir:
			if err := CreateSpecial(p, n); err != nil {
				t.Fatal(err)
			}
			s.restoreDir(*n.Subtree, p, links)
		default:
			if err := CreateSpecial(p, n); err != nil {
				t.Fatal(err)
			}
		}
		err := RestoreMetadataWith(p, n, RestoreOptions{AsRoot: isRoot(), Names: s.names})
		if err != nil {
			t.Fatalf("restore metadata of %q: %v", p, err)
		}
	}
}

func (s *store) restoreFile(path string, n Node) {
	t := s.t
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := NewSparseWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	off := int64(0)
	for _, r := range n.Content {
		if r.IsHole() {
			if err := w.WriteHole(off, int64(r.Hole)); err != nil {
				t.Fatal(err)
			}
			off += int64(r.Hole)
			continue
		}
		data, ok := s.blobs[r.ID]
		if !ok {
			t.Fatalf("%q: chunk %v missing", path, r.ID)
		}
		if _, err := w.WriteAt(data, off); err != nil {
			t.Fatal(err)
		}
		off += int64(len(data))
	}
	if err := w.Finish(int64(n.Size)); err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	must(t, os.WriteFile(path, []byte(data), 0o600))
	must(t, unix.Chmod(path, uint32(mode)))
}

// posixACL encodes a POSIX ACL in the kernel's xattr format (what setfacl
// writes): version 2, then (tag u16, perm u16, id u32) entries.
func posixACL(entries ...[3]uint32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, uint16(e[0]))
		b = binary.LittleEndian.AppendUint16(b, uint16(e[1]))
		b = binary.LittleEndian.AppendUint32(b, e[2])
	}
	return b
}

const (
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclMask     = 0x10
	aclOther    = 0x20
	aclNoID     = 0xffffffff
)

// capNetBindService is a VFS_CAP_REVISION_2 security.capability value
// granting cap_net_bind_service=ep.
func capNetBindService() []byte {
	b := binary.LittleEndian.AppendUint32(nil, 0x02000001)
	b = binary.LittleEndian.AppendUint32(b, 1<<10) // permitted[0]
	b = binary.LittleEndian.AppendUint32(b, 0)     // inheritable[0]
	b = binary.LittleEndian.AppendUint32(b, 0)
	return binary.LittleEndian.AppendUint32(b, 0)
}

// buildSource makes the test tree and returns the paths of entries whose
// restore needs a look beyond the metadata comparison.
func buildSource(t *testing.T, src string) {
	root := isRoot()
	if !root {
		t.Log("not root: leaving out chown, devices, trusted.* and security.capability xattrs")
	}
	j := func(names ...string) string { return filepath.Join(append([]string{src}, names...)...) }
	must(t, os.Mkdir(src, 0o755))
	writeFile(t, j("regular.txt"), "hello, world\n", 0o644)
	writeFile(t, j("empty"), "", 0o600)
	must(t, os.Mkdir(j("emptydir"), 0o755))
	writeFile(t, j("setuid"), "#!/bin/sh\necho hi\n", 0o4755)
	must(t, os.Mkdir(j("setgid-dir"), 0o755))
	writeFile(t, j("setgid-dir", "inner"), "inner", 0o640)
	must(t, os.Mkdir(j("setgid-dir", "sub"), 0o700))
	must(t, unix.Chmod(j("setgid-dir"), 0o2775))
	must(t, os.Mkdir(j("sticky"), 0o755))
	must(t, unix.Chmod(j("sticky"), 0o1777))
	must(t, os.Symlink("regular.txt", j("link")))
	must(t, os.Symlink("does/not/exist", j("dangling")))
	must(t, os.Symlink("\xff-target\nwith newline", j("odd-link")))
	must(t, unix.Mkfifo(j("fifo"), 0o640))
	must(t, unix.Mknod(j("socket"), unix.S_IFSOCK|0o755, 0))
	writeFile(t, j("hard1"), "linked content", 0o644)
	must(t, os.Link(j("hard1"), j("hard2")))
	writeFile(t, j("with space"), "space", 0o644)
	writeFile(t, j("line\nbreak"), "newline", 0o644)
	writeFile(t, j("-leading-dash"), "dash", 0o644)
	writeFile(t, j("\xff\xfe"), "not utf-8", 0o644)
	must(t, os.Mkdir(j("dir \xfe\n"), 0o750))
	writeFile(t, j("dir \xfe\n", "-x"), "x", 0o600)
	writeFile(t, j("readonly"), "ro", 0o644)

	writeFile(t, j("xattrs"), "x", 0o644)
	must(t, unix.Lsetxattr(j("xattrs"), "user.comment", []byte("hello \x00 binary \xff"), 0))
	must(t, unix.Lsetxattr(j("xattrs"), "user.empty", nil, 0))
	must(t, unix.Lsetxattr(j("readonly"), "user.note", []byte("ro"), 0))
	must(t, unix.Chmod(j("readonly"), 0o444)) // a non-root restore must still set user.note
	must(t, unix.Lsetxattr(j("emptydir"), "user.dir", []byte("d"), 0))

	// POSIX ACLs: an access ACL on a file, a default ACL on a directory.
	must(t, os.Mkdir(j("acl-dir"), 0o755))
	writeFile(t, j("acl-file"), "acl", 0o640)
	if _, err := exec.LookPath("setfacl"); err == nil {
		out, err := exec.Command("setfacl", "-m", "u:1234:rw", j("acl-file")).CombinedOutput()
		must(t, errOut(err, out))
		out, err = exec.Command("setfacl", "-d", "-m", "u:1234:rwx", j("acl-dir")).CombinedOutput()
		must(t, errOut(err, out))
	} else {
		t.Log("setfacl not installed: writing the ACL xattrs directly")
		must(t, unix.Lsetxattr(j("acl-file"), "system.posix_acl_access", posixACL(
			[3]uint32{aclUserObj, 6, aclNoID}, [3]uint32{aclUser, 6, 1234}, [3]uint32{aclGroupObj, 4, aclNoID},
			[3]uint32{aclMask, 6, aclNoID}, [3]uint32{aclOther, 0, aclNoID}), 0))
		must(t, unix.Lsetxattr(j("acl-dir"), "system.posix_acl_default", posixACL(
			[3]uint32{aclUserObj, 7, aclNoID}, [3]uint32{aclUser, 7, 1234}, [3]uint32{aclGroupObj, 5, aclNoID},
			[3]uint32{aclMask, 7, aclNoID}, [3]uint32{aclOther, 5, aclNoID}), 0))
	}
	// A file created in acl-dir inherits an access ACL from the default.
	writeFile(t, j("acl-dir", "inherited"), "i", 0o640)

	if root {
		must(t, unix.Lchown(j("setuid"), 1234, 5678))
		must(t, unix.Chmod(j("setuid"), 0o4755)) // chown cleared it
		must(t, unix.Lchown(j("setgid-dir", "inner"), 1234, 5678))
		must(t, unix.Lchown(j("link"), 1234, 5678))
		must(t, unix.Lchown(j("dir \xfe\n"), 1234, 5678))
		must(t, unix.Mknod(j("null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		must(t, unix.Mknod(j("loop"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 200))))
		must(t, unix.Lsetxattr(j("xattrs"), "trusted.secret", []byte("t"), 0))
		must(t, unix.Lsetxattr(j("link"), "trusted.on-symlink", []byte("s"), 0))
		// security.capability on a file owned by someone else: restoring it
		// needs chown before setxattr (chown drops capabilities).
		writeFile(t, j("cap"), "cap", 0o755)
		must(t, unix.Lchown(j("cap"), 1234, 5678))
		must(t, unix.Lsetxattr(j("cap"), "security.capability", capNetBindService(), 0))
	}

	// The sparse file: 5 GiB, a block of data at 0 and some at 4.5 GiB.
	f, err := os.Create(j("sparse"))
	must(t, err)
	must(t, f.Truncate(sparseSize))
	_, err = f.WriteAt(bytes.Repeat([]byte("A"), 4096), 0)
	must(t, err)
	_, err = f.WriteAt([]byte("far away data"), sparseFar)
	must(t, err)
	must(t, f.Close())

	// Times to the nanosecond, children before parents.
	i := 0
	var setTimes func(dir string)
	setTimes = func(dir string) {
		entries, err := os.ReadDir(dir)
		must(t, err)
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			if e.IsDir() {
				setTimes(p)
			}
			i++
			mt := time.Date(2019, 6, 1, 12, 0, i, 100000000+i*1111, time.UTC)
			must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{
				unix.NsecToTimespec(mt.Add(time.Hour).UnixNano()), unix.NsecToTimespec(mt.UnixNano()),
			}, unix.AT_SYMLINK_NOFOLLOW))
		}
	}
	setTimes(src)
}

func errOut(err error, out []byte) error {
	if err != nil {
		return errors.New(err.Error() + ": " + string(out))
	}
	return nil
}

// TestFilesystemRoundTrip captures a tree with every kind of entry, encodes
// and decodes it, restores it elsewhere and captures the copy: everything
// but inode, device and ctime must match.
func TestFilesystemRoundTrip(t *testing.T) {
	base := t.TempDir()
	src, dst := filepath.Join(base, "src"), filepath.Join(base, "dst")
	buildSource(t, src)

	s := newStore(t)
	srcID := s.captureDir(src)
	must(t, os.Mkdir(dst, 0o700))
	s.restoreDir(srcID, dst, map[inodeKey]string{})
	dstID := s.captureDir(dst)

	compareTrees(t, s, srcID, dstID, "")

	// What the comparison cannot see.
	srcTree, _ := Decode(s.blobs[srcID])
	byName := map[string]Node{}
	for _, n := range srcTree.Nodes {
		byName[n.Name] = n
	}
	for _, name := range []string{"with space", "line\nbreak", "-leading-dash", "\xff\xfe", "dir \xfe\n"} {
		if _, ok := byName[name]; !ok {
			t.Errorf("name %q not captured", name)
		}
	}
	if n := byName["odd-link"]; n.Target != "\xff-target\nwith newline" {
		t.Errorf("odd-link target %q", n.Target)
	}
	if !bytes.Contains(s.blobs[srcID], []byte(`"name_b64":"//4="`)) {
		t.Errorf("non-UTF-8 name not stored as name_b64")
	}
	if n := byName["hard1"]; n.Links != 2 {
		t.Errorf("hard1 links %d", n.Links)
	}
	var st1, st2 unix.Stat_t
	must(t, unix.Lstat(filepath.Join(dst, "hard1"), &st1))
	must(t, unix.Lstat(filepath.Join(dst, "hard2"), &st2))
	if st1.Ino != st2.Ino {
		t.Errorf("hard links restored as separate files")
	}
	for _, name := range []string{"regular.txt", "\xff\xfe", "hard2", "setuid"} {
		a, err1 := os.ReadFile(filepath.Join(src, name))
		b, err2 := os.ReadFile(filepath.Join(dst, name))
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Errorf("%q: content differs (%v, %v)", name, err1, err2)
		}
	}
	if n := byName["acl-file"]; !hasXattr(n, "system.posix_acl_access") {
		t.Errorf("acl-file: no ACL captured (xattrs %v)", xattrNames(n))
	}
	if isRoot() {
		if n := byName["cap"]; !hasXattr(n, "security.capability") || n.UID != 1234 {
			t.Errorf("cap: capability or owner not captured: uid %d xattrs %v", n.UID, xattrNames(n))
		}
		if n := byName["null"]; n.Type != TypeCharDev || unix.Major(n.Rdev) != 1 || unix.Minor(n.Rdev) != 3 {
			t.Errorf("null: %s rdev %d", n.Type, n.Rdev)
		}
		if n := byName["regular.txt"]; n.User != "root" || n.Group != "root" {
			t.Errorf("regular.txt owner names %q:%q", n.User, n.Group)
		}
	}

	// The sparse file: two extents found, and the copy stays sparse.
	sp := byName["sparse"]
	holes := 0
	for _, r := range sp.Content {
		if r.IsHole() {
			holes++
		}
	}
	if sp.Size != uint64(sparseSize) || holes != 2 {
		t.Errorf("sparse: size %d, content %v", sp.Size, sp.Content)
	}
	var sst unix.Stat_t
	must(t, unix.Stat(filepath.Join(dst, "sparse"), &sst))
	if sst.Size != sparseSize || sst.Blocks*512 > 1<<20 {
		t.Errorf("restored sparse file: size %d, %d bytes allocated", sst.Size, sst.Blocks*512)
	}
	f, err := os.Open(filepath.Join(dst, "sparse"))
	must(t, err)
	defer f.Close()
	buf := make([]byte, 13)
	_, err = f.ReadAt(buf, sparseFar)
	must(t, err)
	if string(buf) != "far away data" {
		t.Errorf("sparse: far data %q", buf)
	}
}

// compareTrees compares two captured trees recursively, ignoring what a
// restore cannot reproduce.
func compareTrees(t *testing.T, s *store, a, b ID, path string) {
	ta, err := Decode(s.blobs[a])
	must(t, err)
	tb, err := Decode(s.blobs[b])
	must(t, err)
	ignore := cmpopts.IgnoreFields(Node{}, "Inode", "Device", "ChangeTime", "Subtree")
	if d := cmp.Diff(ta, tb, ignore, cmpOpts); d != "" {
		t.Errorf("%s/: restored tree differs (-src +dst):\n%s", path, d)
	}
	if len(ta.Nodes) != len(tb.Nodes) {
		return
	}
	for i, n := range ta.Nodes {
		if n.Type == TypeDir && tb.Nodes[i].Type == TypeDir {
			compareTrees(t, s, *n.Subtree, *tb.Nodes[i].Subtree, path+"/"+n.Name)
		}
	}
}

func hasXattr(n Node, name string) bool {
	for _, x := range n.Xattrs {
		if x.Name == name {
			return true
		}
	}
	return false
}

func xattrNames(n Node) []string {
	var out []string
	for _, x := range n.Xattrs {
		out = append(out, x.Name)
	}
	return out
}

func TestDataExtents(t *testing.T) {
	dir := t.TempDir()
	const k = 1 << 10
	tests := []struct {
		name   string
		size   int64
		writes []int64 // offsets of 4 KiB data blocks
		want   []Extent
	}{
		{"empty", 0, nil, nil},
		{"all hole", 10 << 20, nil, nil},
		{"dense", 64 * k, []int64{0, 4 * k, 8 * k, 12 * k, 16 * k, 20 * k, 24 * k, 28 * k, 32 * k, 36 * k, 40 * k, 44 * k, 48 * k, 52 * k, 56 * k, 60 * k}, []Extent{{0, 64 * k}}},
		{"two far extents", 8 << 20, []int64{0, 4 << 20}, []Extent{{0, 4 * k}, {4 << 20, 4 * k}}},
		{"small hole merged", 8 << 20, []int64{0, 16 * k}, []Extent{{0, 20 * k}}},
		{"small leading hole merged", 8 << 20, []int64{32 * k}, []Extent{{0, 36 * k}}},
		{"large leading hole kept", 8 << 20, []int64{1 << 20}, []Extent{{1 << 20, 4 * k}}},
		{"small trailing hole merged", 1<<20 + 8*k, []int64{1 << 20}, []Extent{{1 << 20, 8 * k}}},
		{"size cuts data", 1 << 20, []int64{0, 4 << 20}, []Extent{{0, 4 * k}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(dir, tc.name))
			must(t, err)
			defer f.Close()
			must(t, f.Truncate(tc.size))
			for _, off := range tc.writes {
				_, err := f.WriteAt(bytes.Repeat([]byte{1}, 4*k), off)
				must(t, err)
			}
			_, err = f.Seek(123, io.SeekStart)
			must(t, err)
			got, err := DataExtents(f, tc.size)
			must(t, err)
			if !cmp.Equal(got, tc.want, cmpopts.EquateEmpty()) {
				t.Errorf("got %v want %v", got, tc.want)
			}
			if pos, _ := f.Seek(0, io.SeekCurrent); pos != 123 {
				t.Errorf("file offset moved to %d", pos)
			}
		})
	}
	// A pipe cannot seek: an error, not a guess.
	r, w, err := os.Pipe()
	must(t, err)
	defer r.Close()
	defer w.Close()
	if _, err := DataExtents(r, 10); err == nil {
		t.Error("DataExtents on a pipe: no error")
	}
}

func TestMergeExtents(t *testing.T) {
	tests := []struct {
		raw  []Extent
		size int64
		want []Extent
	}{
		{nil, 100, nil},
		{[]Extent{{0, 10}}, 10, []Extent{{0, 10}}},
		{[]Extent{{MinHole - 1, 1}}, 1 << 30, []Extent{{0, MinHole}}},
		{[]Extent{{MinHole, 1}}, 1 << 30, []Extent{{MinHole, 1}}},
		{[]Extent{{0, 1}, {MinHole, 1}}, 1 << 30, []Extent{{0, MinHole + 1}}},
		{[]Extent{{0, 1}, {MinHole + 1, 1}}, 1 << 30, []Extent{{0, 1}, {MinHole + 1, 1}}},
		{[]Extent{{0, 1}, {MinHole + 1, 1}}, 2*MinHole + 1, []Extent{{0, 1}, {MinHole + 1, MinHole}}},
		{[]Extent{{0, 1}, {2, 1}, {4, 1}, {1 << 20, 5}}, 1 << 21, []Extent{{0, 5}, {1 << 20, 5}}},
	}
	for i, tc := range tests {
		if got := mergeExtents(tc.raw, tc.size); !cmp.Equal(got, tc.want, cmpopts.EquateEmpty()) {
			t.Errorf("%d: mergeExtents(%v, %d) = %v, want %v", i, tc.raw, tc.size, got, tc.want)
		}
	}
}

func TestSparseWriter(t *testing.T) {
	dir := t.TempDir()
	const blk = SparseBlock
	data := func(n int, c byte) []byte { return bytes.Repeat([]byte{c}, n) }
	zeros := func(n int) []byte { return make([]byte, n) }
	type op struct {
		off  int64
		data []byte // nil: hole of n bytes
		n    int64
	}
	tests := []struct {
		name      string
		ops       []op
		size      int64
		maxBlocks int64 // most 4 KiB blocks the file may use
	}{
		{"zeros only", []op{{0, zeros(1 << 20), 0}}, 1 << 20, 0},
		{"data zeros data", []op{{0, append(append(data(100, 1), zeros(1<<20)...), data(100, 2)...), 0}}, 1<<20 + 200, 2},
		{"unaligned start", []op{{5, append(data(10, 3), zeros(3*blk)...), 0}}, 5 + 10 + 3*blk, 1},
		{"trailing hole by Finish", []op{{0, data(10, 4), 0}}, 1 << 30, 1},
		{"explicit hole", []op{{0, data(blk, 5), 0}, {blk, nil, 1 << 20}, {blk + 1<<20, data(blk, 6), 0}}, 2*blk + 1<<20, 2},
		{"zeros over data are written", []op{{0, data(3*blk, 7), 0}, {blk, zeros(blk), 0}}, 3 * blk, 3},
		{"hole over data punches", []op{{0, data(3*blk, 8), 0}, {blk, nil, blk}}, 3 * blk, 2},
		{"out of order", []op{{2 * blk, data(blk, 9), 0}, {0, append(zeros(blk), data(blk, 10)...), 0}}, 3 * blk, 3},
		{"Finish shortens", []op{{0, data(4*blk, 11), 0}}, blk + 7, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			want := make([]byte, tc.size)
			f, err := os.Create(path)
			must(t, err)
			defer f.Close()
			_, err = f.Write([]byte("old contents must go"))
			must(t, err)
			w, err := NewSparseWriter(f)
			must(t, err)
			for _, o := range tc.ops {
				if o.data == nil {
					must(t, w.WriteHole(o.off, o.n))
					for i := o.off; i < o.off+o.n && i < tc.size; i++ {
						want[i] = 0
					}
					continue
				}
				n, err := w.WriteAt(o.data, o.off)
				if err != nil || n != len(o.data) {
					t.Fatalf("WriteAt: %d, %v", n, err)
				}
				if o.off < tc.size {
					copy(want[o.off:], o.data)
				}
			}
			must(t, w.Finish(tc.size))
			got, err := os.ReadFile(path)
			must(t, err)
			if !bytes.Equal(got, want) {
				t.Fatalf("content differs (len %d, want %d)", len(got), len(want))
			}
			var st unix.Stat_t
			must(t, unix.Fstat(int(f.Fd()), &st))
			if used := st.Blocks * 512 / blk; used > tc.maxBlocks {
				t.Errorf("%d blocks allocated, want at most %d", used, tc.maxBlocks)
			}
		})
	}
	f, err := os.Create(filepath.Join(dir, "bad"))
	must(t, err)
	defer f.Close()
	w, err := NewSparseWriter(f)
	must(t, err)
	if _, err := w.WriteAt([]byte{1}, -1); err == nil {
		t.Error("negative offset accepted")
	}
	for _, r := range [][2]int64{{-1, 1}, {0, 0}, {0, -5}, {1, 1<<63 - 1}} {
		if err := w.WriteHole(r[0], r[1]); err == nil {
			t.Errorf("WriteHole(%d, %d) accepted", r[0], r[1])
		}
	}
}

func TestCreateSpecial(t *testing.T) {
	dir := t.TempDir()
	p := func(s string) string { return filepath.Join(dir, s) }
	// An existing directory is fine, anything else existing is not.
	must(t, CreateSpecial(p("d"), Node{Type: TypeDir}))
	must(t, CreateSpecial(p("d"), Node{Type: TypeDir}))
	must(t, os.WriteFile(p("f"), nil, 0o600))
	tests := []struct {
		path string
		n    Node
		want string
	}{
		{p("f"), Node{Type: TypeDir}, "file exists"},
		{p("f"), Node{Type: TypeFIFO}, "file exists"},
		{p("x"), Node{Type: TypeFile}, "not by CreateSpecial"},
		{p("x"), Node{Type: "door"}, "unknown node type"},
		{p("x"), Node{Type: TypeSymlink}, "without target"},
		{p("missing/x"), Node{Type: TypeSocket}, "no such file"},
	}
	for _, tc := range tests {
		err := CreateSpecial(tc.path, tc.n)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CreateSpecial(%s, %s) = %v, want %q", tc.path, tc.n.Type, err, tc.want)
		}
	}
	if !isRoot() {
		err := CreateSpecial(p("null"), Node{Type: TypeCharDev, Rdev: unix.Mkdev(1, 3)})
		if !errors.Is(err, unix.EPERM) {
			t.Errorf("mknod without root: %v, want EPERM", err)
		}
	}
}

func TestRestoreOwnerPrecedence(t *testing.T) {
	if !isRoot() {
		t.Skip("needs root: lchown to other users")
	}
	dir := t.TempDir()
	names := NewNameCache()
	tests := []struct {
		name       string
		user       string
		uid, gid   uint32
		group      string
		numeric    bool
		wantU, wan uint32
	}{
		{"name wins when known", "root", 1234, 5678, "root", false, 0, 0},
		{"id when name unknown", "no-such-user-bulwark", 1234, 5678, "no-such-group-bulwark", false, 1234, 5678},
		{"id without name", "", 1234, 5678, "", false, 1234, 5678},
		{"numeric ignores names", "root", 1234, 5678, "root", true, 1234, 5678},
	}
	for i, tc := range tests {
		p := filepath.Join(dir, string(rune('a'+i)))
		must(t, os.WriteFile(p, nil, 0o600))
		n := Node{Name: "x", Type: TypeFile, Mode: 0o6755, UID: tc.uid, GID: tc.gid, User: tc.user, Group: tc.group, ModTime: t0}
		must(t, RestoreMetadataWith(p, n, RestoreOptions{AsRoot: true, Names: names, NumericIDs: tc.numeric}))
		var st unix.Stat_t
		must(t, unix.Lstat(p, &st))
		if st.Uid != tc.wantU || st.Gid != tc.wan {
			t.Errorf("%s: owner %d:%d, want %d:%d", tc.name, st.Uid, st.Gid, tc.wantU, tc.wan)
		}
		if st.Mode&0o7777 != 0o6755 {
			t.Errorf("%s: mode %#o (chown after chmod?)", tc.name, st.Mode&0o7777)
		}
	}
}

func TestRestoreXattrs(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	must(t, os.WriteFile(p, nil, 0o600))
	must(t, unix.Lsetxattr(p, "user.old", []byte("o"), 0))
	must(t, unix.Lsetxattr(p, "user.keep", []byte("old value"), 0))
	n := Node{Name: "f", Type: TypeFile, Mode: 0o444, ModTime: t0,
		Xattrs: []Xattr{{Name: "user.keep", Value: []byte("new")}, {Name: "user.new", Value: []byte{}}}}
	must(t, RestoreMetadata(p, n, isRoot()))
	got, err := NodeFromPath(p, "", nil, CaptureOptions{})
	must(t, err)
	if d := cmp.Diff(n.Xattrs, got.Xattrs, cmpOpts); d != "" {
		t.Errorf("xattrs (-want +got):\n%s", d)
	}
	if got.Mode != 0o444 || !got.ModTime.Equal(t0) {
		t.Errorf("mode %#o mtime %v", got.Mode, got.ModTime)
	}

	// An xattr the file system refuses is a Warning; the rest is applied.
	// trusted.* needs CAP_SYS_ADMIN; a fifo takes no user.* attributes.
	fifo := filepath.Join(dir, "fifo")
	must(t, unix.Mkfifo(fifo, 0o600))
	fn := Node{Name: "fifo", Type: TypeFIFO, Mode: 0o640, ModTime: t1, Xattrs: []Xattr{{Name: "user.x", Value: []byte("v")}}}
	err = RestoreMetadata(fifo, fn, isRoot())
	if !IsWarning(err) {
		t.Fatalf("user.* on a fifo: %v, want a Warning", err)
	}
	var w *Warning
	if !errors.As(err, &w) || w.Op != "lsetxattr user.x" || w.Path != fifo {
		t.Errorf("warning %+v", w)
	}
	got, err = NodeFromPath(fifo, "", nil, CaptureOptions{})
	must(t, err)
	if got.Mode != 0o640 || !got.ModTime.Equal(t1) {
		t.Errorf("after a warning: mode %#o mtime %v, want the rest applied", got.Mode, got.ModTime)
	}
}

func TestRestoreSymlinkTimes(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	must(t, os.WriteFile(target, nil, 0o644))
	before, err := os.Stat(target)
	must(t, err)
	link := filepath.Join(dir, "link")
	n := Node{Name: "link", Type: TypeSymlink, Target: "target", Mode: 0o777, ModTime: t0}
	must(t, CreateSpecial(link, n))
	must(t, RestoreMetadata(link, n, isRoot()))
	got, err := NodeFromPath(link, "", nil, CaptureOptions{})
	must(t, err)
	if !got.ModTime.Equal(t0) || got.Target != "target" || got.Type != TypeSymlink {
		t.Errorf("symlink: %+v", got)
	}
	after, err := os.Stat(target)
	must(t, err)
	if !after.ModTime().Equal(before.ModTime()) || after.Mode() != before.Mode() {
		t.Errorf("restoring the symlink changed its target: %v %v", after.ModTime(), after.Mode())
	}
}

func TestNodeFromPathFileInfo(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	must(t, os.WriteFile(p, []byte("abc"), 0o640))
	fi, err := os.Lstat(p)
	must(t, err)
	a, err := NodeFromPath(p, "other-name", fi, CaptureOptions{NoXattrs: true})
	must(t, err)
	b, err := NodeFromPath(p, "", nil, CaptureOptions{})
	must(t, err)
	if a.Name != "other-name" || b.Name != "f" || a.Size != 3 || a.Mode != 0o640 || a.Links != 1 {
		t.Errorf("got %+v / %+v", a, b)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if a.Inode != st.Ino || a.Device != st.Dev || a.UID != st.Uid {
		t.Errorf("ids %+v", a)
	}
	if a.User != "" || b.User != "" {
		t.Errorf("names recorded without a NameCache")
	}
	if _, err := NodeFromPath(filepath.Join(dir, "missing"), "", nil, CaptureOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := NodeFromPath(p, "a/b", nil, CaptureOptions{}); err == nil {
		t.Error("name with a slash accepted")
	}
}

func TestNameCache(t *testing.T) {
	c := &NameCache{} // the zero value works
	done := make(chan bool)
	for i := 0; i < 8; i++ {
		go func() {
			defer func() { done <- true }()
			if c.User(0) != "root" || c.Group(0) != "root" {
				t.Error("uid/gid 0 is not root")
			}
			if id, ok := c.UID("root"); !ok || id != 0 {
				t.Error("UID(root)")
			}
			if id, ok := c.GID("root"); !ok || id != 0 {
				t.Error("GID(root)")
			}
			if c.User(4000000123) != "" {
				t.Error("unknown uid has a name")
			}
			if _, ok := c.UID("no-such-user-bulwark"); ok {
				t.Error("unknown user has an id")
			}
			if _, ok := c.GID(""); ok {
				t.Error("empty group has an id")
			}
		}()
	}
	for i := 0; i < 8; i++ {
		<-done
	}
}

func TestClampTime(t *testing.T) {
	lo := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)
	hi := time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	tests := []struct{ in, want time.Time }{
		{t0, t0},
		{lo, lo},
		{hi, hi},
		{lo.Add(-1), lo},
		{hi.Add(1), hi},
		{time.Unix(1<<40, 0), hi},
		{time.Unix(-1<<40, 0), lo},
	}
	for _, tc := range tests {
		got := clampTime(tc.in)
		if !got.Equal(tc.want) {
			t.Errorf("clampTime(%v) = %v, want %v", tc.in, got, tc.want)
		}
		// Whatever capture keeps, the encoding holds exactly.
		tr := &Tree{Nodes: []Node{{Name: "a", Type: TypeFIFO, ModTime: got, ChangeTime: got}}}
		b, err := tr.Encode()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Decode(b)
		if err != nil || !back.Nodes[0].ModTime.Equal(got) {
			t.Errorf("%v does not round-trip: %v %v", got, err, back)
		}
	}
}

// TestCapturePreviousXattrs: an entry whose type, inode, device and change
// time match the earlier node takes that node's attributes without reading
// them; any change of ctime (which setting an attribute causes) reads them.
func TestCapturePreviousXattrs(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	must(t, os.WriteFile(p, []byte("abc"), 0o600))
	must(t, unix.Lsetxattr(p, "user.a", []byte("1"), 0))
	prev, err := NodeFromPath(p, "", nil, CaptureOptions{})
	must(t, err)
	if !hasXattr(prev, "user.a") {
		t.Fatalf("first capture: %v", xattrNames(prev))
	}

	// A marker only the earlier node has proves the attributes were reused.
	marked := prev
	marked.Xattrs = []Xattr{{Name: "user.from-previous", Value: []byte("x")}}
	got, err := NodeFromPath(p, "", nil, CaptureOptions{Previous: &marked})
	must(t, err)
	if d := cmp.Diff(marked.Xattrs, got.Xattrs, cmpOpts); d != "" {
		t.Errorf("unchanged entry did not reuse the previous attributes (-want +got):\n%s", d)
	}

	for name, change := range map[string]func(*Node){
		"ctime":  func(n *Node) { n.ChangeTime = n.ChangeTime.Add(-time.Nanosecond) },
		"inode":  func(n *Node) { n.Inode++ },
		"device": func(n *Node) { n.Device++ },
		"type":   func(n *Node) { n.Type = TypeDir },
	} {
		other := marked
		change(&other)
		got, err := NodeFromPath(p, "", nil, CaptureOptions{Previous: &other})
		must(t, err)
		if hasXattr(got, "user.from-previous") || !hasXattr(got, "user.a") {
			t.Errorf("%s differs: got %v, want the file's own attributes", name, xattrNames(got))
		}
	}

	// Setting an attribute moves ctime, so the earlier node no longer applies.
	time.Sleep(10 * time.Millisecond) // coarse-ctime file systems
	must(t, unix.Lsetxattr(p, "user.b", []byte("2"), 0))
	got, err = NodeFromPath(p, "", nil, CaptureOptions{Previous: &marked})
	must(t, err)
	if !hasXattr(got, "user.b") || hasXattr(got, "user.from-previous") {
		t.Errorf("after setxattr: %v, want user.a and user.b read from the file", xattrNames(got))
	}
}

// TestRestoreFileMetadata: the descriptor variant sets what the path
// variant sets, removes attributes the node lacks, and takes only files.
func TestRestoreFileMetadata(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	must(t, os.WriteFile(p, []byte("data"), 0o600))
	must(t, unix.Lsetxattr(p, "user.stale", []byte("s"), 0))
	n := Node{Name: "f", Type: TypeFile, Mode: 0o4751, UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), ModTime: t1, Size: 4,
		Xattrs: []Xattr{{Name: "user.a", Value: []byte("1")}}}
	fh, err := os.OpenFile(p, os.O_WRONLY, 0)
	must(t, err)
	must(t, RestoreFileMetadata(int(fh.Fd()), p, n, RestoreOptions{AsRoot: isRoot(), NumericIDs: true}))
	must(t, fh.Close())
	got, err := NodeFromPath(p, "", nil, CaptureOptions{})
	must(t, err)
	if got.Mode != 0o4751 || !got.ModTime.Equal(t1) || got.UID != n.UID || got.GID != n.GID {
		t.Errorf("mode %#o mtime %v owner %d:%d, want %#o %v %d:%d", got.Mode, got.ModTime, got.UID, got.GID, n.Mode, t1, n.UID, n.GID)
	}
	if d := cmp.Diff(n.Xattrs, got.Xattrs, cmpOpts); d != "" {
		t.Errorf("xattrs (-want +got):\n%s", d)
	}
	if err := RestoreFileMetadata(int(fh.Fd()), p, Node{Name: "d", Type: TypeDir}, RestoreOptions{}); err == nil {
		t.Error("a directory node was accepted")
	}
}
