//go:build linux

// Package netnstest makes network namespaces for tests: created with
// `ip netns add` (and deleted at cleanup), code run inside them on one
// locked OS thread switched with setns, TCP listeners and dials from
// chosen source addresses, and the nft command run inside them. Tests that
// use it need root; without root they are skipped.
package netnstest

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

// Seq returns a number unique in this process, for names of links.
func Seq() int64 { return nsSeq.Add(1) }

// NS is a network namespace made for a test.
type NS struct {
	Name string
	file *os.File
}

// Fd is the namespace's file descriptor (for nftables.WithNetNSFd, setns).
func (n *NS) Fd() int { return int(n.file.Fd()) }

// RequireRoot skips when the tests cannot make namespaces and fails when
// the tools they drive are missing.
func RequireRoot(t testing.TB) {
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

func Command(t testing.TB, stdin string, name string, args ...string) string {
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

// New creates a namespace with loopback up, deleted at cleanup, and
// skips the test when nftables cannot be used in it.
func New(t testing.TB) *NS {
	t.Helper()
	RequireRoot(t)
	name := fmt.Sprintf("bwfw-%d-%d", os.Getpid(), nsSeq.Add(1))
	Command(t, "", "ip", "netns", "add", name)
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
	n := &NS{Name: name, file: f}
	n.IP(t, "link", "set", "lo", "up")
	return n
}

func (n *NS) IP(t testing.TB, args ...string) string {
	t.Helper()
	return Command(t, "", "ip", append([]string{"-n", n.Name}, args...)...)
}

func (n *NS) Nft(t testing.TB, args ...string) string {
	t.Helper()
	return Command(t, "", "ip", append([]string{"netns", "exec", n.Name, "nft"}, args...)...)
}

func (n *NS) NftFile(t testing.TB, script string) {
	t.Helper()
	Command(t, script, "ip", "netns", "exec", n.Name, "nft", "-f", "-")
}

// Do runs fn on an OS thread switched into n. Sockets made there stay in
// n. If the thread cannot switch back it is left locked, so the runtime
// discards it instead of reusing it in the wrong namespace.
func (n *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := unix.Setns(n.Fd(), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", n.Name, err)
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

// Listen serves "ok\n" to every TCP connection on port in n, until cleanup.
func (n *NS) Listen(t testing.TB, port int) {
	t.Helper()
	var ln net.Listener
	err := n.Do(func() (err error) {
		ln, err = net.Listen("tcp", fmt.Sprintf("[::]:%d", port))
		return err
	})
	if err != nil {
		t.Fatalf("listen in %s: %v", n.Name, err)
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

// Dial connects from src in n to dst and reads the greeting.
func (n *NS) Dial(src netip.Addr, dst netip.AddrPort, timeout time.Duration) error {
	var c net.Conn
	err := n.Do(func() (err error) {
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

// NftSet lists a set with `nft -j` and returns its elements as strings
// ("10.0.0.1", "10.1.0.0/16", "10.5.0.1-10.5.0.9"), an independent check
// of what this package reads back.
func (n *NS) NftSet(t testing.TB, table, set string) []string {
	t.Helper()
	out := n.Nft(t, "-j", "list", "set", "inet", table, set)
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

// Link joins a and b with a veth pair carrying the given addresses (CIDR
// notation, such as 10.201.0.1/24; IPv6 ones without duplicate address
// detection) and brings it up.
func Link(t testing.TB, a, b *NS, aAddrs, bAddrs []string) {
	t.Helper()
	seq := Seq()
	va, vb := fmt.Sprintf("bwva%d", seq), fmt.Sprintf("bwvb%d", seq)
	a.IP(t, "link", "add", va, "type", "veth", "peer", "name", vb, "netns", b.Name)
	for _, p := range []struct {
		n     *NS
		dev   string
		addrs []string
	}{{a, va, aAddrs}, {b, vb, bAddrs}} {
		for _, ad := range p.addrs {
			args := []string{"addr", "add", ad, "dev", p.dev}
			if strings.Contains(ad, ":") {
				args = append(args, "nodad")
			}
			p.n.IP(t, args...)
		}
		p.n.IP(t, "link", "set", p.dev, "up")
	}
}
