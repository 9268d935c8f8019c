//go:build linux

package firewall

// Test helpers: network namespaces made with `ip netns add`, code run
// inside them by switching one locked OS thread, and the nft command.
// Every nftables call of these tests goes to a namespace they created.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var nsSeq atomic.Int64

type netns struct {
	name string
	file *os.File
}

func (n *netns) fd() int { return int(n.file.Fd()) }

// requireRoot skips when the tests cannot make namespaces and fails when
// the tools they drive are missing.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: firewall tests need root to create network namespaces and nftables tables in them")
	}
	for _, bin := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not found: the firewall tests need iproute2 and nftables installed: %v", bin, err)
		}
	}
}

func command(t testing.TB, stdin string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newNetNS creates a namespace with loopback up, deleted at cleanup, and
// skips the test when nftables cannot be used in it.
func newNetNS(t testing.TB) *netns {
	t.Helper()
	requireRoot(t)
	name := fmt.Sprintf("bwfw-%d-%d", os.Getpid(), nsSeq.Add(1))
	command(t, "", "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", name, err, out)
		}
	})
	f, err := os.Open("/run/netns/" + name)
	if err != nil {
		t.Fatalf("open namespace %s: %v", name, err)
	}
	t.Cleanup(func() { f.Close() })
	n := &netns{name: name, file: f}
	n.ip(t, "link", "set", "lo", "up")
	if err := availableIn(n.fd()); err != nil {
		if errors.Is(err, ErrUnavailable) {
			t.Skipf("skipping: %v", err)
		}
		t.Fatalf("availableIn(%s): %v", name, err)
	}
	return n
}

func (n *netns) ip(t testing.TB, args ...string) string {
	t.Helper()
	return command(t, "", "ip", append([]string{"-n", n.name}, args...)...)
}

func (n *netns) nft(t testing.TB, args ...string) string {
	t.Helper()
	return command(t, "", "ip", append([]string{"netns", "exec", n.name, "nft"}, args...)...)
}

func (n *netns) nftFile(t testing.TB, script string) {
	t.Helper()
	command(t, script, "ip", "netns", "exec", n.name, "nft", "-f", "-")
}

// openFW opens a Firewall in n, closed at cleanup.
func openFW(t testing.TB, n *netns, opt Options) *Firewall {
	t.Helper()
	opt.NetNS = n.fd()
	f, err := Open(opt)
	if err != nil {
		t.Fatalf("Open in %s: %v", n.name, err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return f
}

// do runs fn on an OS thread switched into n. Sockets made there stay in
// n. If the thread cannot switch back it is left locked, so the runtime
// discards it instead of reusing it in the wrong namespace.
func (n *netns) do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := unix.Setns(n.fd(), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", n.name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("setns back: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// listen serves "ok\n" to every TCP connection on port in n, until cleanup.
func (n *netns) listen(t testing.TB, port int) {
	t.Helper()
	var ln net.Listener
	err := n.do(func() (err error) {
		ln, err = net.Listen("tcp", fmt.Sprintf("[::]:%d", port))
		return err
	})
	if err != nil {
		t.Fatalf("listen in %s: %v", n.name, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			c.Write([]byte("ok\n"))
			c.Close()
		}
	}()
}

// dial connects from src in n to dst and reads the greeting.
func (n *netns) dial(src netip.Addr, dst netip.AddrPort, timeout time.Duration) error {
	var c net.Conn
	err := n.do(func() (err error) {
		d := net.Dialer{Timeout: timeout, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))}
		c, err = d.Dial("tcp", dst.String())
		return err
	})
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read greeting: %w", err)
	}
	if line != "ok\n" {
		return fmt.Errorf("greeting %q, want %q", line, "ok\n")
	}
	return nil
}

// nftSet lists a set with `nft -j` and returns its elements as strings
// ("10.0.0.1", "10.1.0.0/16", "10.5.0.1-10.5.0.9"), an independent check
// of what this package reads back.
func (n *netns) nftSet(t testing.TB, table, set string) []string {
	t.Helper()
	out := n.nft(t, "-j", "list", "set", "inet", table, set)
	var doc struct {
		Nftables []struct {
			Set *struct {
				Elem []json.RawMessage `json:"elem"`
			} `json:"set"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("nft -j list set %s: %v", set, err)
	}
	var elems []string
	for _, o := range doc.Nftables {
		if o.Set == nil {
			continue
		}
		for _, raw := range o.Set.Elem {
			elems = append(elems, nftValue(t, raw))
		}
	}
	return elems
}

// nftValue decodes one element of nft's JSON: a string, a prefix, a range,
// or any of those wrapped in {"elem": {"val": ...}} when it has a timeout.
func nftValue(t testing.TB, raw json.RawMessage) string {
	t.Helper()
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var v struct {
		Elem *struct {
			Val json.RawMessage `json:"val"`
		} `json:"elem"`
		Prefix *struct {
			Addr string `json:"addr"`
			Len  int    `json:"len"`
		} `json:"prefix"`
		Range []string `json:"range"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("nft element %s: %v", raw, err)
	}
	switch {
	case v.Elem != nil:
		return nftValue(t, v.Elem.Val)
	case v.Prefix != nil:
		return fmt.Sprintf("%s/%d", v.Prefix.Addr, v.Prefix.Len)
	case len(v.Range) == 2:
		return v.Range[0] + "-" + v.Range[1]
	}
	t.Fatalf("nft element %s: unknown shape", raw)
	return ""
}
