package vault_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/archiver"
	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/retry"
	vclient "github.com/bulwarkhq/bulwark/internal/repo/backend/vault"
	"github.com/bulwarkhq/bulwark/internal/repo/checker"
	"github.com/bulwarkhq/bulwark/internal/repo/repotest"
	"github.com/bulwarkhq/bulwark/internal/vault"
	"github.com/bulwarkhq/bulwark/internal/vault/vaulttest"
)

// proxy forwards TCP connections to a vault and can cut them: the first
// cutConns connections are dropped after cutAfter bytes from the client,
// and the function set with setOnUp sees the running total of bytes from
// clients. A test may swap that function while connections from an earlier
// phase are still open, so it is held atomically.
type proxy struct {
	ln       net.Listener
	target   string
	cutAfter int64
	cutConns int64
	onUp     atomic.Pointer[func(total int64)]
	n        atomic.Int64 // connections accepted
	up       atomic.Int64
	cuts     atomic.Int64
	wg       sync.WaitGroup
}

func startProxy(t *testing.T, target string, p *proxy) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.ln, p.target = ln, target
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() { p.handle(c) })
		}
	})
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) setOnUp(f func(total int64)) { p.onUp.Store(&f) }

func (p *proxy) handle(c net.Conn) {
	defer c.Close()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer s.Close()
	idx := p.n.Add(1)
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(c, s)
		done <- struct{}{}
	}()
	go func() {
		buf := make([]byte, 32<<10)
		var sent int64
		for {
			n, err := c.Read(buf)
			if n > 0 {
				if idx <= p.cutConns && sent+int64(n) > p.cutAfter {
					p.cuts.Add(1)
					break // drop the connection mid-transfer
				}
				if _, werr := s.Write(buf[:n]); werr != nil {
					break
				}
				sent += int64(n)
				total := p.up.Add(int64(n))
				if f := p.onUp.Load(); f != nil {
					(*f)(total)
				}
			}
			if err != nil {
				break
			}
		}
		done <- struct{}{}
	}()
	<-done
}

// randomTree writes files of random (incompressible) bytes, mib MiB in all.
func randomTree(t *testing.T, mib int) string {
	dir := t.TempDir()
	for i := range mib {
		b := make([]byte, 1<<20)
		rand.Read(b)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%02d", i)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// initRepo makes repository name on v with a full token and 1 MiB packs.
func initRepo(t *testing.T, v *vaulttest.Vault, tok, name string) {
	be, err := vclient.Create(context.Background(), v.URL+"/"+name, vclient.Options{Token: tok, CAFile: v.CertFile})
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Init(context.Background(), be, []byte(repotest.Password), repo.InitOptions{KDF: repotest.FastKDF, PackSize: 1 << 20, CacheDir: "-"})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
}

// openRepo opens name at base (the vault or a proxy) with tok.
func openRepo(t *testing.T, v *vaulttest.Vault, base, tok, name string, p retry.Policy) *repo.Repository {
	t.Helper()
	be, err := vclient.Open(base+"/"+name, vclient.Options{Token: tok, CAFile: v.CertFile, Retry: p})
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(context.Background(), be, []byte(repotest.Password), repo.OpenOptions{CacheDir: "-"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.LoadIndex(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func backup(r *repo.Repository, src string) error {
	_, err := archiver.Backup(context.Background(), r, []string{src}, archiver.Options{NoParent: true})
	return err
}

// verifyClean checks, directly and with a full token, that the repository
// lists wantSnaps snapshots, that every object is whole (check reads every
// pack and verifies its hash and blobs) and that no temporary file is left.
func verifyClean(t *testing.T, v *vaulttest.Vault, tok, name string, wantSnaps int) {
	t.Helper()
	r := openRepo(t, v, v.URL, tok, name, fastRetry)
	rep, err := checker.Check(context.Background(), r, checker.Options{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK {
		t.Fatalf("check: %+v", rep.Errors)
	}
	if rep.Stats.Snapshots != wantSnaps {
		t.Fatalf("check saw %d snapshots, want %d", rep.Stats.Snapshots, wantSnaps)
	}
	filepath.WalkDir(filepath.Join(v.Data, "repos", name), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
}

func TestFaultConnectionCut(t *testing.T) {
	v := vaulttest.Start(t, vault.Options{})
	tok := v.Token(t, vault.TokenSpec{Name: "client", Mode: vault.ModeAppendOnly})
	initRepo(t, v, tok, "web")
	p := startProxy(t, v.Addr, &proxy{cutAfter: 1500 << 10, cutConns: 4})
	src := randomTree(t, 6)
	r := openRepo(t, v, "https://"+p.addr(), tok, "web", retry.Policy{Attempts: 10, Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond})
	if err := backup(r, src); err != nil {
		t.Fatalf("backup through a connection cut %d times: %v", p.cuts.Load(), err)
	}
	if p.cuts.Load() == 0 {
		t.Fatal("test premise: no connection was cut")
	}
	verifyClean(t, v, tok, "web", 1)
	if err := backup(r, src); err != nil {
		t.Fatalf("next backup: %v", err)
	}
	verifyClean(t, v, tok, "web", 2)
}

func TestFaultVaultKilledMidUpload(t *testing.T) {
	v := vaulttest.Start(t, vault.Options{})
	tok := v.Token(t, vault.TokenSpec{Name: "client", Mode: vault.ModeAppendOnly})
	initRepo(t, v, tok, "web")
	src := randomTree(t, 6)

	// Killed and not back in time: the backup fails, nothing partial.
	var once sync.Once
	p := startProxy(t, v.Addr, &proxy{})
	p.setOnUp(func(total int64) {
		if total > 2<<20 {
			once.Do(func() { go v.Kill() })
		}
	})
	r := openRepo(t, v, "https://"+p.addr(), tok, "web", retry.Policy{Attempts: 2, Initial: 10 * time.Millisecond, Max: 10 * time.Millisecond})
	if err := backup(r, src); err == nil {
		t.Fatal("backup succeeded though the vault was killed")
	}
	v.Restart(t)
	verifyClean(t, v, tok, "web", 0)

	// Killed and restarted during the backup: the retries carry it.
	var once2 sync.Once
	p.up.Store(0)
	p.setOnUp(func(total int64) {
		if total > 2<<20 {
			once2.Do(func() {
				go func() {
					v.Kill()
					time.Sleep(100 * time.Millisecond)
					v.Restart(t)
				}()
			})
		}
	})
	r = openRepo(t, v, "https://"+p.addr(), tok, "web", retry.Policy{Attempts: 12, Initial: 50 * time.Millisecond, Max: 500 * time.Millisecond})
	if err := backup(r, src); err != nil {
		t.Fatalf("backup across a vault restart: %v", err)
	}
	verifyClean(t, v, tok, "web", 1)
}

func TestFaultTokenRevokedMidBackup(t *testing.T) {
	v := vaulttest.Start(t, vault.Options{})
	tok := v.Token(t, vault.TokenSpec{Name: "client", Mode: vault.ModeAppendOnly})
	initRepo(t, v, tok, "web")
	src := randomTree(t, 6)
	var once sync.Once
	p := startProxy(t, v.Addr, &proxy{})
	p.setOnUp(func(total int64) {
		if total > 2<<20 {
			once.Do(func() {
				if err := vault.RevokeToken(v.Data, "client"); err != nil {
					t.Error(err)
				}
			})
		}
	})
	r := openRepo(t, v, "https://"+p.addr(), tok, "web", fastRetry)
	start := time.Now()
	err := backup(r, src)
	if !errors.Is(err, vclient.ErrTokenRejected) {
		t.Fatalf("backup with a token revoked mid-way: err = %v, want ErrTokenRejected", err)
	}
	if !retry.IsPermanent(context.Background(), err) {
		t.Error("a rejected token is retried")
	}
	t.Logf("failed after %v: %v", time.Since(start), err)
	tok2 := v.Token(t, vault.TokenSpec{Name: "client2", Mode: vault.ModeAppendOnly})
	verifyClean(t, v, tok2, "web", 0)
	if err := backup(openRepo(t, v, v.URL, tok2, "web", fastRetry), src); err != nil {
		t.Fatalf("next backup: %v", err)
	}
	verifyClean(t, v, tok2, "web", 1)
}

func TestFaultDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	data := filepath.Join(t.TempDir(), "vault")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", data).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", data).CombinedOutput(); err != nil {
			t.Errorf("umount: %v %s", err, out)
		}
	})
	v := vaulttest.Start(t, vault.Options{Data: data})
	tok := v.Token(t, vault.TokenSpec{Name: "client", Mode: vault.ModeAppendOnly})
	initRepo(t, v, tok, "web")
	src := randomTree(t, 12)
	r := openRepo(t, v, v.URL, tok, "web", fastRetry)
	err := backup(r, src)
	var ve *vclient.Error
	if !errors.As(err, &ve) || ve.Status != 507 || !strings.Contains(err.Error(), "disk is full") {
		t.Fatalf("backup onto a full vault: err = %v, want 507 disk full", err)
	}
	if !strings.Contains(v.Log.String(), "disk is full") {
		t.Error("disk full not logged")
	}
	verifyClean(t, v, tok, "web", 0)
	if out, err := exec.Command("mount", "-o", "remount,size=64m", data).CombinedOutput(); err != nil {
		t.Fatalf("grow tmpfs: %v %s", err, out)
	}
	if err := backup(openRepo(t, v, v.URL, tok, "web", fastRetry), src); err != nil {
		t.Fatalf("backup after space was freed: %v", err)
	}
	verifyClean(t, v, tok, "web", 1)
}

// Ensure the fixture names stay used.
var _ = backend.Types
