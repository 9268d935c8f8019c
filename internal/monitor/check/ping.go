package check

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// forceDatagram skips the raw socket (tests, which run as root, use it to
// exercise the unprivileged path).
var forceDatagram bool

// pingGap is the time between echo requests of one run.
const pingGap = 200 * time.Millisecond

// ErrNoICMP says that this process may open neither a raw ICMP socket
// (root or CAP_NET_RAW) nor an unprivileged one (net.ipv4.ping_group_range).
var ErrNoICMP = errors.New("cannot send ICMP echo requests: run as root (or with CAP_NET_RAW), or allow this group in net.ipv4.ping_group_range")

// icmpSocket opens an ICMP socket for the address family: raw when
// privileged, else a datagram "ping socket". It reports which.
func icmpSocket(v6 bool) (*icmp.PacketConn, bool, error) {
	raw, dgram := "ip4:icmp", "udp4"
	if v6 {
		raw, dgram = "ip6:ipv6-icmp", "udp6"
	}
	if !forceDatagram {
		if c, err := icmp.ListenPacket(raw, ""); err == nil {
			return c, true, nil
		}
	}
	c, err := icmp.ListenPacket(dgram, "")
	if err != nil {
		if errors.Is(err, os.ErrPermission) || strings.Contains(err.Error(), "permission denied") {
			return nil, false, ErrNoICMP
		}
		return nil, false, err
	}
	return c, false, nil
}

func newPing(p config.PingCheck) func(context.Context) outcome {
	count := p.Count
	if count == 0 {
		count = 3
	}
	maxLoss := p.MaxLoss
	if maxLoss == 0 {
		maxLoss = 100
	}
	return func(ctx context.Context) outcome {
		ips, err := net.DefaultResolver.LookupIPAddr(ctx, p.Host)
		if err != nil || len(ips) == 0 {
			return fail("resolve %s: %v", p.Host, err)
		}
		ip := ips[0].IP
		v6 := ip.To4() == nil
		conn, raw, err := icmpSocket(v6)
		if err != nil {
			return unknown("ping %s: %v", p.Host, err)
		}
		defer conn.Close()
		if dl, ok := ctx.Deadline(); ok {
			conn.SetDeadline(dl)
		}
		var dst net.Addr = &net.IPAddr{IP: ip}
		if !raw {
			dst = &net.UDPAddr{IP: ip}
		}
		// A raw socket sees every echo reply to this host; ours carry a
		// random identifier (a datagram socket's is set by the kernel)
		// and a random token in the payload.
		var tok [10]byte
		rand.Read(tok[:])
		id := int(binary.BigEndian.Uint16(tok[:2]))
		typ, reply := icmp.Type(ipv4.ICMPTypeEcho), icmp.Type(ipv4.ICMPTypeEchoReply)
		proto := 1
		if v6 {
			typ, reply, proto = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, 58
		}
		var mu sync.Mutex
		sent := map[int]time.Time{}
		var rtts []time.Duration
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 1500)
			for {
				n, _, err := conn.ReadFrom(buf)
				if err != nil {
					return
				}
				m, err := icmp.ParseMessage(proto, buf[:n])
				if err != nil || m.Type != reply {
					continue
				}
				e, ok := m.Body.(*icmp.Echo)
				if !ok || (raw && e.ID != id) || len(e.Data) < len(tok) || string(e.Data[:len(tok)]) != string(tok[:]) {
					continue
				}
				mu.Lock()
				if t, ok := sent[e.Seq]; ok {
					rtts = append(rtts, time.Since(t))
					delete(sent, e.Seq)
				}
				got, want := len(rtts), count
				mu.Unlock()
				if got == want {
					return
				}
			}
		}()
		for seq := range count {
			msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: seq, Data: append(tok[:], make([]byte, 22)...)}}
			b, err := msg.Marshal(nil)
			if err != nil {
				return unknown("ping %s: %v", p.Host, err)
			}
			mu.Lock()
			sent[seq] = time.Now()
			mu.Unlock()
			if _, err := conn.WriteTo(b, dst); err != nil {
				return fail("ping %s: %s", p.Host, errText(err))
			}
			if seq < count-1 {
				select {
				case <-ctx.Done():
				case <-done:
				case <-time.After(pingGap):
				}
			}
		}
		select {
		case <-done:
		case <-ctx.Done():
		}
		conn.Close() // ends the reader
		<-done
		mu.Lock()
		defer mu.Unlock()
		loss := 100 * float64(count-len(rtts)) / float64(count)
		if len(rtts) == 0 {
			return fail("ping %s (%s): no answer to %d echo requests", p.Host, ip, count).with("loss_percent", 100)
		}
		var sum time.Duration
		for _, r := range rtts {
			sum += r
		}
		avg := sum / time.Duration(len(rtts))
		oc := pass("ping %s (%s): %d of %d answered, %.0f%% loss, average %s", p.Host, ip, len(rtts), count, loss, fmt.Sprintf("%.2f ms", float64(avg)/1e6))
		if loss > float64(maxLoss) || loss == 100 {
			oc.status = StatusCritical
		}
		return oc.with("loss_percent", loss).with("latency_seconds", avg.Seconds())
	}
}
