package main

import (
	"fmt"
	"io"
	"os"
	"time"
)

// progress prints a self-overwriting status line on a terminal and nothing
// otherwise (so logs and pipes stay clean).
type progress struct {
	w          io.Writer
	verb, unit string
	start      time.Time
	last       time.Time
	tty        bool
	n          int64
}

func newProgress(w io.Writer, verb, unit string) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progress{w: w, verb: verb, unit: unit, start: time.Now(), tty: tty}
}

func (p *progress) update(n int64) {
	p.n = n
	if !p.tty || time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	el := time.Since(p.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(n) / el
	}
	fmt.Fprintf(p.w, "\r%s %d %s (%.0f/s)   ", p.verb, n, p.unit, rate)
}

func (p *progress) done() {
	if p.tty && !p.last.IsZero() {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
