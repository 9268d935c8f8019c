package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bulwarkhq/bulwark/internal/repo/backend"
)

// TestFullDisk fills a real 4 MiB tmpfs with Saves until the disk is full.
// The failing Save must say so and name its object, leave no temp file, and
// leave every earlier object intact; once space is freed, Save works again.
func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	mnt := t.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=4m,mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs on %s (%v); not testing a full disk", mnt, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	ctx := context.Background()
	b, err := Create(filepath.Join(mnt, "repo"))
	if err != nil {
		t.Fatal(err)
	}

	const size = 300 << 10
	var saved []backend.Handle
	contents := map[backend.Handle][]byte{}
	var failed backend.Handle
	var saveErr error
	for i := 0; i < 100; i++ { // 4 MiB / 300 KiB: full after about 13
		data := bytes.Repeat([]byte(fmt.Sprintf("object %04d ", i)), size/12)
		h := pack(data)
		if i%2 == 1 {
			h = backend.Handle{Type: backend.IndexFile, Name: h.Name}
		}
		if saveErr = b.Save(ctx, h, data); saveErr != nil {
			failed = h
			contents[h] = data
			break
		}
		saved = append(saved, h)
		contents[h] = data
	}
	if saveErr == nil {
		t.Fatal("saved 100 objects of 300 KiB on a 4 MiB tmpfs without an error")
	}
	t.Logf("Save %d failed: %v", len(saved)+1, saveErr)
	if !errors.Is(saveErr, syscall.ENOSPC) || !strings.Contains(saveErr.Error(), "no space left") ||
		!strings.Contains(saveErr.Error(), failed.String()) {
		t.Fatalf("Save on a full disk: err = %v, want ENOSPC saying \"no space left\" and naming %s", saveErr, failed)
	}
	if len(saved) < 5 {
		t.Fatalf("only %d objects fit before ENOSPC", len(saved))
	}
	if tmp := tempFiles(t, b.dir); len(tmp) > 0 {
		t.Fatalf("temp files left after ENOSPC: %v", tmp)
	}
	if _, err := b.Stat(ctx, failed); !errors.Is(err, backend.ErrNotExist) {
		t.Fatalf("Stat of the object whose Save failed: %v, want ErrNotExist", err)
	}
	for _, h := range saved {
		got, err := b.Load(ctx, h, 0, 0)
		if err != nil || !bytes.Equal(got, contents[h]) {
			t.Fatalf("Load(%v) after ENOSPC: %d bytes, %v", h, len(got), err)
		}
	}
	// Replace on a full disk fails the same way (an object of the size that
	// just failed still does not fit) and keeps the old object.
	if err := b.Replace(ctx, saved[0], contents[failed]); !errors.Is(err, syscall.ENOSPC) ||
		!strings.Contains(err.Error(), saved[0].String()) {
		t.Fatalf("Replace on a full disk: err = %v, want ENOSPC naming %s", err, saved[0])
	}
	if got, err := b.Load(ctx, saved[0], 0, 0); err != nil || !bytes.Equal(got, contents[saved[0]]) {
		t.Fatalf("Load(%v) after Replace on a full disk: %d bytes, %v", saved[0], len(got), err)
	}
	if tmp := tempFiles(t, b.dir); len(tmp) > 0 {
		t.Fatalf("temp files left after Replace on a full disk: %v", tmp)
	}

	// Free space; the failed Save now succeeds.
	for _, h := range saved[:2] {
		if err := b.Remove(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Save(ctx, failed, contents[failed]); err != nil {
		t.Fatalf("Save after freeing space: %v", err)
	}
	if got, err := b.Load(ctx, failed, 0, 0); err != nil || !bytes.Equal(got, contents[failed]) {
		t.Fatalf("Load(%v) after freeing space: %d bytes, %v", failed, len(got), err)
	}
}
