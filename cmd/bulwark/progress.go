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

// liveStatus redraws render's line four times a second on a terminal
// (stderr) until the returned function is called; elsewhere it prints
// nothing.
func liveStatus(e *Env, render func(elapsed time.Duration) string) func() {
	if !isTerminal(e.Stderr) {
		return func() {}
	}
	f := e.Stderr.(*os.File)
	start := time.Now()
	stop, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				fmt.Fprint(f, "\r\033[K")
				return
			case <-t.C:
				fmt.Fprint(f, "\r\033[K"+render(time.Since(start)))
			}
		}
	}()
	return func() { close(stop); <-finished }
}

// transferStatus formats "files, bytes, rate, ETA".
func transferStatus(el time.Duration, files, totalFiles, bytes, totalBytes int64, totalsKnown bool) string {
	rate := float64(bytes) / el.Seconds()
	eta := "?"
	if totalsKnown && rate > 0 {
		left := float64(totalBytes-bytes) / rate
		if left < 0 {
			left = 0
		}
		eta = (time.Duration(left) * time.Second).String()
	}
	return fmt.Sprintf("%d/%d files, %s/%s, %s/s, ETA %s", files, totalFiles, humanBytes(bytes), humanBytes(totalBytes), humanBytes(int64(rate)), eta)
}
