package guard

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"
)

// Slow POST. A client that sends a body a byte at a time holds a
// connection and an upstream request for as long as it likes unless the
// body has a deadline, and a total deadline would cut off a large upload
// on a slow but honest link. So the body must keep arriving at
// MinBodyRate, with bursts and stalls smoothed over one grace period: a
// token bucket of waiting time.
//
// The bucket holds at most BodyGrace of allowance and starts full. Time
// spent waiting in Read for the client's bytes drains it; each byte
// received refills 1/MinBodyRate seconds, up to the cap. Each Read sets the
// connection's read deadline to the moment the bucket would run dry, so a
// client is cut off when it has sent, over any stretch, less than
// MinBodyRate allows plus one grace period's slack:
//
//   - a client sending at MinBodyRate or faster keeps the bucket full and
//     may stall for up to one grace period at any time;
//   - a client that stops altogether is cut off after at most one grace
//     period, however much it sent before;
//   - a client that sends a large part of its body at once and then
//     trickles a byte now and then gains nothing from the burst (the
//     allowance is capped), so it is cut off within about two grace
//     periods, not after its whole "credit" at the average rate (a
//     deadline from the average since the start, which this replaces,
//     let 10 MB sent in a second buy an hour of trickling at 1 KiB/s).
//
// Only time spent waiting in Read counts: while the proxy does not read
// (the upstream is slow to take the body), the client is not charged. The
// deadline is cleared at the end of the body, so it cannot fire while the
// response streams.

var errSlowBody = errors.New("request body arrived too slowly")

type guardBody struct {
	rc    io.ReadCloser
	ctl   *http.ResponseController
	st    *reqState
	rate  float64       // bytes per second; 0: no rate check
	grace time.Duration // the bucket's capacity
	allow time.Duration // the allowance left in the bucket
	done  bool
}

func (g *Guard) newBody(w http.ResponseWriter, body io.ReadCloser, maxBytes int64, st *reqState) io.ReadCloser {
	grace := g.cfg.Timeouts.BodyGrace.D()
	return &guardBody{
		rc:    http.MaxBytesReader(w, body, maxBytes),
		ctl:   http.NewResponseController(w),
		st:    st,
		rate:  float64(g.cfg.Timeouts.MinBodyRate.Bytes()),
		grace: grace,
		allow: grace,
	}
}

func (b *guardBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	var start time.Time
	if b.rate > 0 {
		// Deadlines are real time, whatever clock the limits use.
		start = time.Now()
		_ = b.ctl.SetReadDeadline(start.Add(b.allow)) // unsupported only on writers that are not connections
	}
	n, err := b.rc.Read(p)
	if b.rate > 0 {
		b.allow = refill(b.allow-time.Since(start), n, b.rate, b.grace)
	}
	switch {
	case err == io.EOF:
		b.finish()
	case err != nil:
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = errSlowBody
		}
		b.st.setBodyErr(err)
	}
	return n, err
}

// refill returns the allowance left after n bytes arrived at rate bytes a
// second are credited to allow, capped at limit.
func refill(allow time.Duration, n int, rate float64, limit time.Duration) time.Duration {
	credit := float64(n) / rate * float64(time.Second)
	if credit >= float64(limit-allow) { // also when allow is negative
		return limit
	}
	return allow + time.Duration(credit)
}

func (b *guardBody) finish() {
	if !b.done {
		b.done = true
		if b.rate > 0 {
			_ = b.ctl.SetReadDeadline(time.Time{})
		}
	}
}

func (b *guardBody) Close() error {
	b.finish()
	return b.rc.Close()
}
