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
// on a slow but honest link. So the body must arrive at an average rate:
// once the grace period has passed, by time t the client must have sent
// MinBodyRate * (t - start - grace) bytes. Each Read sets the connection's
// read deadline to the moment the next byte would fall behind that line,
// and never more than one grace period ahead (a client that sent a lot
// quickly and then stops altogether is cut off after the grace period,
// not after its credit runs out). The deadline is cleared at the end of
// the body, so it cannot fire while the response streams.

var errSlowBody = errors.New("request body arrived too slowly")

type guardBody struct {
	rc    io.ReadCloser
	ctl   *http.ResponseController
	st    *reqState
	start time.Time
	rate  float64 // bytes per second; 0: no rate check
	grace time.Duration
	n     int64
	done  bool
}

func (g *Guard) newBody(w http.ResponseWriter, body io.ReadCloser, maxBytes int64, st *reqState) io.ReadCloser {
	return &guardBody{
		rc:    http.MaxBytesReader(w, body, maxBytes),
		ctl:   http.NewResponseController(w),
		st:    st,
		start: time.Now(), // deadlines are real time, whatever clock the limits use
		rate:  float64(g.cfg.Timeouts.MinBodyRate.Bytes()),
		grace: g.cfg.Timeouts.BodyGrace.D(),
	}
}

func (b *guardBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	if b.rate > 0 {
		due := b.start.Add(b.grace + time.Duration(float64(b.n+1)/b.rate*float64(time.Second)))
		if limit := time.Now().Add(b.grace); due.After(limit) {
			due = limit
		}
		_ = b.ctl.SetReadDeadline(due) // unsupported only on writers that are not connections
	}
	n, err := b.rc.Read(p)
	b.n += int64(n)
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
