package guard

import (
	"bufio"
	"net"
	"sync"
	"time"
)

// Upstream connections of the fast path (fastpath.go). Each upstream keeps
// a stack of idle HTTP/1.1 connections, at most Upstreams.IdleConnections
// of them; the goroutine serving a client takes one, writes the request,
// reads the response and puts it back, with no goroutine of its own per
// upstream connection (net/http's Transport runs two and hands every
// request and response between three goroutines).
//
// Nothing reads an idle connection, so one the upstream closed while it
// sat idle is only found when used. Hence: a connection idle longer than
// upIdleMax is closed instead of used; a request that is not idempotent
// takes only a connection idle for less than upIdleSafe (upstreams close
// idle connections after seconds, not less: Node's 5 s is the shortest
// default in common use), else a new one; and an idempotent request whose
// reused connection answers nothing is sent again on a new connection, as
// net/http does.

const (
	upIdleMax   = 30 * time.Second
	upIdleSafe  = 2 * time.Second
	upPeekAfter = 500 * time.Millisecond // an idempotent request peeks at a connection idle longer
	upBufSize   = 32 << 10               // also the largest response head accepted
)

type upConn struct {
	c    net.Conn
	br   *bufio.Reader
	last time.Time // when it was put back idle
	// headDeadline: the response-header deadline is set. It stays while
	// the response comes without waiting and while the connection is
	// idle (nothing reads it then, and the next request sets its own),
	// and is cleared before the body is waited for, which may take any
	// time.
	headDeadline bool
}

// bodyWait clears the response-header deadline before a wait for body
// bytes.
func (uc *upConn) bodyWait() {
	if uc.headDeadline {
		_ = uc.c.SetReadDeadline(time.Time{})
		uc.headDeadline = false
	}
}

type idleConns struct {
	mu    sync.Mutex
	conns []*upConn // most recently used last
}

// get returns an idle connection to use and how long it was idle, or nil.
// safeOnly asks for one idle for less than upIdleSafe.
func (ic *idleConns) get(now time.Time, safeOnly bool) (*upConn, time.Duration) {
	ic.mu.Lock()
	var stale []*upConn
	var uc *upConn
	var idleFor time.Duration
	for n := len(ic.conns); n > 0; n = len(ic.conns) {
		c := ic.conns[n-1]
		idle := now.Sub(c.last)
		if idle > upIdleMax {
			// The oldest are at the bottom: everything from here down
			// is stale too.
			stale = append(stale, ic.conns...)
			ic.conns = ic.conns[:0]
			break
		}
		if safeOnly && idle > upIdleSafe {
			break
		}
		ic.conns[n-1] = nil
		ic.conns = ic.conns[:n-1]
		uc, idleFor = c, idle
		break
	}
	ic.mu.Unlock()
	for _, c := range stale {
		c.c.Close()
	}
	return uc, idleFor
}

// sweep closes the connections idle longer than upIdleMax, so an upstream
// that closed them is not left with them half-open (CLOSE_WAIT here) when
// no request comes to find out.
func (ic *idleConns) sweep(now time.Time) {
	ic.mu.Lock()
	i := 0
	for i < len(ic.conns) && now.Sub(ic.conns[i].last) > upIdleMax {
		i++
	}
	stale := append([]*upConn(nil), ic.conns[:i]...)
	ic.conns = append(ic.conns[:0], ic.conns[i:]...)
	ic.mu.Unlock()
	for _, c := range stale {
		c.c.Close()
	}
}

// put keeps uc for reuse if there is room (max), else closes it.
func (ic *idleConns) put(uc *upConn, now time.Time, max int) {
	uc.last = now
	ic.mu.Lock()
	if len(ic.conns) < max {
		ic.conns = append(ic.conns, uc)
		uc = nil
	}
	ic.mu.Unlock()
	if uc != nil {
		uc.c.Close()
	}
}

// closeAll closes the idle connections (at shutdown).
func (ic *idleConns) closeAll() {
	ic.mu.Lock()
	conns := ic.conns
	ic.conns = nil
	ic.mu.Unlock()
	for _, c := range conns {
		c.c.Close()
	}
}
