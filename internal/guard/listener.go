package guard

import (
	"errors"
	"net"
	"sync"
	"time"
)

// The accept-time checks: the deny list, bans, the global connection cap and
// the per-source connection cap, applied to the TCP peer before a TLS
// handshake or any HTTP is read. A refused connection is closed at once,
// which costs the guard one accept and one close. A trusted proxy's
// connections carry many clients, so it is exempt from the per-source
// cap (its clients are limited per request instead); an allowed address
// is exempt from everything here.

type listener struct {
	net.Listener
	g *Guard
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond) // e.g. out of file descriptors: do not spin
				continue
			}
			return nil, err
		}
		if gc := l.g.admit(c); gc != nil {
			return gc, nil
		}
	}
}

// admit applies the accept-time checks; it closes a refused connection
// and returns nil.
func (g *Guard) admit(c net.Conn) net.Conn {
	peer := peerOf(c)
	refuse := func(reason string) net.Conn {
		g.metrics.blocked(reason)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // reset: no TIME_WAIT kept for an attacker
		}
		c.Close()
		return nil
	}
	if g.allow.Contains(peer) {
		g.open.Add(1)
		return &conn{Conn: c, release: func() { g.open.Add(-1) }}
	}
	if g.deny.Contains(peer) {
		return refuse("deny")
	}
	if g.banned(peer) {
		return refuse("ban")
	}
	if g.open.Add(1) > int64(g.cfg.Limits.MaxConnections) {
		g.open.Add(-1)
		return refuse("max_connections")
	}
	if g.conns == nil || g.resolver.IsTrusted(peer) {
		return &conn{Conn: c, release: func() { g.open.Add(-1) }}
	}
	key := g.source(peer)
	if !g.conns.Acquire(key) {
		g.open.Add(-1)
		return refuse("connections")
	}
	return &conn{Conn: c, release: func() { g.conns.Release(key); g.open.Add(-1) }}
}

// conn releases its place in the connection counts once, when closed.
type conn struct {
	net.Conn
	once    sync.Once
	release func()
}

// CloseWrite half-closes a TCP connection, which the HTTP server uses to
// deliver an error response to a client still sending its body.
func (c *conn) CloseWrite() error { return closeWrite(c.Conn) }

// closeWrite half-closes c when it can (a TCP connection).
func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
