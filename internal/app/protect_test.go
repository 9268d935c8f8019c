//go:build linux

package app

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/firewall/netnstest"
)

// TestSSHLogToNftablesDrop runs `bulwark up`'s edge parts end to end: an
// sshd log in the format Debian's rsyslog writes is tailed, the built-in
// ssh-bruteforce scenario overflows on the sixth failed password from one
// address, the ban is stored, and the firewall (in a network namespace of
// the test's) drops that address's packets while another address of the
// same client network still connects. Lifting the ban restores access.
func TestSSHLogToNftablesDrop(t *testing.T) {
	srv, cli := netnstest.New(t), netnstest.New(t)
	netnstest.Link(t, srv, cli, []string{"10.202.0.1/24"}, []string{"10.202.0.2/24", "10.202.0.3/24"})
	const port = 2222
	srv.Listen(t, port)
	dst := netip.MustParseAddrPort(fmt.Sprintf("10.202.0.1:%d", port))
	attacker, neighbour := netip.MustParseAddr("10.202.0.2"), netip.MustParseAddr("10.202.0.3")
	if err := cli.Dial(attacker, dst, 5*time.Second); err != nil {
		t.Fatalf("before any ban the attacker's address cannot connect: %v", err)
	}

	dir := t.TempDir()
	logPath := filepath.Join(dir, "auth.log")
	if err := os.WriteFile(logPath, []byte("2026-11-21T10:00:00.000000+00:00 web1 sshd[100]: Server listening on 0.0.0.0 port 22.\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "bulwark.yaml")
	cfg := fmt.Sprintf("detect:\n  logs:\n    - path: %s\n      parser: sshd\n      start_at: start\nfirewall:\n  enabled: true\n  reconcile: 2s\n", logPath)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := Open(ctx, Options{ConfigPath: cfgPath, DataDir: filepath.Join(dir, "data"), Listen: "127.0.0.1:0", LogLevel: "error",
		Stderr: io.Discard, Getenv: func(string) string { return "" }, FirewallNetNS: srv.Fd()})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	up := make(chan struct{})
	go func() {
		served <- a.Serve(ctx, ServeOptions{Out: io.Discard, Stdout: io.Discard, OnListen: func(string) { close(up) }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		a.Close()
	})
	select {
	case <-up:
	case err := <-served:
		t.Fatalf("Serve: %v", err)
	}
	// The attack, appended while the follower runs (start_at: start, so
	// whenever it opens the file it reads these lines).
	f, err := os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		fmt.Fprintf(f, "2026-11-21T10:00:%02d.123456+00:00 web1 sshd[%d]: Failed password for root from %s port %d ssh2\n", i+1, 200+i, attacker, 40000+i)
	}
	f.Close()

	// The ban reaches the kernel: the attacker's packets are dropped
	// (a time-out, not a refusal), the neighbour still connects.
	dropped := false
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		if err := cli.Dial(attacker, dst, 500*time.Millisecond); err != nil && strings.Contains(err.Error(), "timeout") {
			dropped = true
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !dropped {
		t.Fatalf("the attacker still connects; bans: %+v", a.Bans.Active())
	}
	if err := cli.Dial(neighbour, dst, 5*time.Second); err != nil {
		t.Errorf("the neighbour cannot connect: %v", err)
	}
	active := a.Bans.Active()
	if len(active) != 1 || active[0].Scenario != "ssh-bruteforce" || active[0].Net.String() != "10.202.0.2/32" {
		t.Fatalf("bans = %+v", active)
	}
	if set := srv.NftSet(t, "bulwark", "ban4"); len(set) != 1 || set[0] != "10.202.0.2" {
		t.Errorf("nft set ban4 = %v", set)
	}

	// Lifted: the kernel lets the attacker in again.
	if _, err := a.Bans.Remove(ctx, active[0].Net, "user:tester"); err != nil {
		t.Fatal(err)
	}
	var last error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if last = cli.Dial(attacker, dst, 500*time.Millisecond); last == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Errorf("after lifting the ban the address still cannot connect: %v", last)
}
