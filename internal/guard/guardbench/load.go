package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The under-attack scenario: a well-behaved client (cmdClient) measures
// success and latency at a fixed, modest rate, once alone (the quiet
// baseline) and once while cmdAttack runs a flooder and a slowloris from
// two other source addresses. Every source binds its own loopback address
// (127.0.0.0/8 is all loopback on Linux), so the guard's per-source limits
// see three distinct sources.

// sourceTransport is an HTTP transport whose connections leave from src.
func sourceTransport(src string, conns int) (*http.Transport, error) {
	ip := net.ParseIP(src)
	if ip == nil {
		return nil, fmt.Errorf("source address %q is not an IP address", src)
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 2 * time.Second}
	return &http.Transport{
		DialContext:         d.DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}, nil
}

// ClientResult is what the well-behaved client saw.
type ClientResult struct {
	Source     string         `json:"source"`
	URL        string         `json:"url"`
	Rate       float64        `json:"rate"`
	Seconds    float64        `json:"seconds"`
	Sent       int            `json:"sent"`
	OK         int            `json:"ok"`
	SuccessPct float64        `json:"success_pct"`
	Statuses   map[string]int `json:"statuses"`         // status code -> count, for answers other than a good 200
	Errors     map[string]int `json:"errors,omitempty"` // transport errors by kind
	// Latencies of the successful requests, in milliseconds, from sending
	// the request to reading the last byte of the body.
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P99Ms  float64 `json:"p99_ms"`
	MaxMs  float64 `json:"max_ms"`
	MeanMs float64 `json:"mean_ms"`
}

func cmdClient(args []string) error {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	target := fs.String("url", "", "`URL` to GET")
	host := fs.String("host", "", "Host header")
	src := fs.String("source", "127.0.0.4", "source `address` to bind")
	rate := fs.Float64("rate", 40, "requests per second (open loop: sent on schedule whatever the answers)")
	dur := fs.Duration("duration", 15*time.Second, "how long to send")
	size := fs.Int64("size", -1, "expected body size (-1: any)")
	timeout := fs.Duration("timeout", 5*time.Second, "per-request timeout (counts as a failure)")
	out := fs.String("out", "-", "result `file` (JSON)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rate <= 0 || *rate > 10000 || *dur <= 0 || *dur > 10*time.Minute {
		return errors.New("-rate must be in (0, 10000] and -duration in (0, 10m]")
	}
	tr, err := sourceTransport(*src, 64)
	if err != nil {
		return err
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: *timeout}
	n := int(dur.Seconds() * *rate)
	type outcome struct {
		lat    time.Duration
		status int
		err    error
	}
	res := make([]outcome, n)
	interval := time.Duration(float64(time.Second) / *rate)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			status, err := get(client, *target, *host, *size)
			res[i] = outcome{time.Since(t0), status, err}
		}()
	}
	wg.Wait()
	r := ClientResult{Source: *src, URL: *target, Rate: *rate, Seconds: dur.Seconds(), Sent: n, Statuses: map[string]int{}, Errors: map[string]int{}}
	var lats []float64
	for _, o := range res {
		switch {
		case o.err != nil:
			r.Errors[errKind(o.err)]++
		case o.status != http.StatusOK:
			r.Statuses[strconv.Itoa(o.status)]++
		default:
			r.OK++
			lats = append(lats, float64(o.lat)/1e6)
		}
	}
	fillLatency(&r, lats)
	if n > 0 {
		r.SuccessPct = 100 * float64(r.OK) / float64(n)
	}
	return writeJSON(*out, r)
}

func fillLatency(r *ClientResult, lats []float64) {
	if len(lats) == 0 {
		return
	}
	sort.Float64s(lats)
	sum := 0.0
	for _, l := range lats {
		sum += l
	}
	r.P50Ms = percentile(lats, 50)
	r.P90Ms = percentile(lats, 90)
	r.P99Ms = percentile(lats, 99)
	r.MaxMs = lats[len(lats)-1]
	r.MeanMs = sum / float64(len(lats))
}

// errBodySize: a 200 whose body is not the expected file.
var errBodySize = errors.New("wrong body size")

// get GETs target with the Host header and reads the whole body; a 200
// with a body of the wrong size is an error.
func get(client *http.Client, target, host string, size int64) (int, error) {
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		return 0, err
	}
	if host != "" {
		req.Host = host
	}
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) guardbench/1")
	req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode == http.StatusOK && size >= 0 && n != size {
		return resp.StatusCode, fmt.Errorf("%w: %d bytes, want %d", errBodySize, n, size)
	}
	return resp.StatusCode, nil
}

// errKind names a transport error for the counts.
func errKind(err error) string {
	var ne net.Error
	var ue *url.Error
	switch {
	case errors.Is(err, errBodySize):
		return "body_size"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "closed"
	case errors.As(err, &ue):
		var oe *net.OpError
		if errors.As(err, &oe) {
			return oe.Op
		}
		return "error"
	default:
		return "error"
	}
}

// AttackResult is what the flooder and the slowloris did, and what the
// guard held meanwhile.
type AttackResult struct {
	Seconds float64 `json:"seconds"`
	Flood   struct {
		Source     string         `json:"source"`
		TargetRate float64        `json:"target_rate"`
		Conns      int            `json:"conns"`
		Sent       int64          `json:"sent"`
		Rate       float64        `json:"rate"` // achieved, requests per second
		Statuses   map[string]int `json:"statuses"`
		Errors     map[string]int `json:"errors,omitempty"`
	} `json:"flood"`
	Slow struct {
		Source string `json:"source"`
		Conns  int    `json:"conns"`
		// Opened counts successful connects (reconnects included); MaxOpen
		// is the most open at once as the attacker saw them.
		Opened  int64 `json:"opened"`
		MaxOpen int64 `json:"max_open"`
		// Refused: closed by the guard at once, before the first trickled
		// line (the accept-time caps); Cut: closed later (the header deadline);
		// Answered: the guard sent a response (e.g. 408) before closing.
		Refused    int64   `json:"refused"`
		Cut        int64   `json:"cut"`
		Answered   int64   `json:"answered"`
		DialErrors int64   `json:"dial_errors"`
		CutAfterS  float64 `json:"cut_after_s"` // median lifetime of a cut connection
	} `json:"slow"`
	Guard struct {
		MaxOpenConnections float64            `json:"max_open_connections"` // bulwark_guard_open_connections, sampled
		MaxRSSKiB          int64              `json:"max_rss_kib"`
		HWMKiB             int64              `json:"hwm_kib"`
		Blocks             map[string]float64 `json:"blocks"` // bulwark_guard_blocks_total by reason, at the end
	} `json:"guard"`
}

func cmdAttack(args []string) error {
	fs := flag.NewFlagSet("attack", flag.ContinueOnError)
	target := fs.String("url", "", "`URL` the flooder GETs (the slowloris connects to its host:port)")
	host := fs.String("host", "", "Host header")
	floodSrc := fs.String("flood-source", "127.0.0.2", "flooder's source `address`")
	floodRate := fs.Float64("flood-rate", 5000, "flooder's requests per second")
	floodConns := fs.Int("flood-conns", 16, "flooder's keep-alive connections")
	slowSrc := fs.String("slow-source", "127.0.0.3", "slowloris's source `address`")
	slowConns := fs.Int("slow-conns", 1000, "slowloris connections kept open")
	trickle := fs.Duration("trickle", 2*time.Second, "slowloris: one header line per connection this often")
	dur := fs.Duration("duration", 20*time.Second, "how long to attack")
	metrics := fs.String("metrics", "", "the guard's metrics `URL`, sampled")
	pid := fs.Int("pid", 0, "the guard's process id, for its memory")
	out := fs.String("out", "-", "result `file` (JSON)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *floodRate <= 0 || *floodRate > 1e6 || *floodConns < 1 || *floodConns > 1000 || *slowConns < 0 || *slowConns > 100000 || *dur <= 0 || *dur > 10*time.Minute {
		return errors.New("flag out of range: flood-rate (0, 1e6], flood-conns 1 to 1000, slow-conns 0 to 100000, duration (0, 10m]")
	}
	u, err := url.Parse(*target)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-url %q: want http://host:port/path", *target)
	}
	var r AttackResult
	r.Seconds = dur.Seconds()
	deadline := time.Now().Add(*dur)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()

	var wg sync.WaitGroup
	fl := &flooder{target: *target, host: *host}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := fl.run(ctx, *floodSrc, *floodRate, *floodConns, deadline); err != nil {
			fmt.Fprintf(os.Stderr, "guardbench attack: flooder: %v\n", err)
		}
	}()
	sl := &slowloris{addr: u.Host, host: *host, trickle: *trickle}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := sl.run(*slowSrc, *slowConns, deadline); err != nil {
			fmt.Fprintf(os.Stderr, "guardbench attack: slowloris: %v\n", err)
		}
	}()
	// Sample what the guard holds.
	mc := &http.Client{Timeout: time.Second}
	var samplerWG sync.WaitGroup
	samplerWG.Add(1)
	go func() {
		defer samplerWG.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			if *metrics != "" {
				if s, err := scrape(mc, *metrics); err == nil {
					if v, ok := promValue(s, "bulwark_guard_open_connections", nil); ok {
						r.Guard.MaxOpenConnections = max(r.Guard.MaxOpenConnections, v)
					}
				}
			}
			if *pid > 0 {
				if m, err := readProcMem(*pid); err == nil {
					r.Guard.MaxRSSKiB = max(r.Guard.MaxRSSKiB, m.RSSKiB)
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	wg.Wait()
	samplerWG.Wait()

	r.Flood.Source, r.Flood.TargetRate, r.Flood.Conns = *floodSrc, *floodRate, *floodConns
	r.Flood.Sent = fl.sent.Load()
	r.Flood.Rate = float64(r.Flood.Sent) / dur.Seconds()
	r.Flood.Statuses, r.Flood.Errors = fl.statuses, fl.errs
	r.Slow.Source, r.Slow.Conns = *slowSrc, *slowConns
	r.Slow.Opened, r.Slow.MaxOpen = sl.opened.Load(), sl.maxOpen.Load()
	r.Slow.Refused, r.Slow.Cut, r.Slow.Answered, r.Slow.DialErrors = sl.refused.Load(), sl.cut.Load(), sl.answered.Load(), sl.dialErrs.Load()
	r.Slow.CutAfterS = median(sl.cutAfter)
	if *pid > 0 {
		m, err := readProcMem(*pid)
		if err != nil {
			return fmt.Errorf("the guard (pid %d) is gone after the attack: %w", *pid, err)
		}
		r.Guard.HWMKiB = m.HWMKiB
	}
	if *metrics != "" {
		s, err := scrape(mc, *metrics)
		if err != nil {
			return fmt.Errorf("the guard's metrics after the attack: %w", err)
		}
		r.Guard.Blocks = map[string]float64{}
		for _, x := range s {
			if x.Name == "bulwark_guard_blocks_total" {
				r.Guard.Blocks[x.Labels["reason"]] = x.Value
			}
		}
	}
	if r.Flood.Sent == 0 {
		return errors.New("the flooder sent nothing")
	}
	if *slowConns > 0 && r.Slow.Opened == 0 {
		return errors.New("the slowloris opened no connection")
	}
	return writeJSON(*out, r)
}

// flooder sends GETs from one source at a fixed total rate over a few
// keep-alive connections, each worker on its own schedule. A worker that
// falls more than a second behind (the machine cannot keep up) skips ahead
// rather than bursting: the achieved rate is reported.
type flooder struct {
	target, host string
	sent         atomic.Int64
	mu           sync.Mutex
	statuses     map[string]int
	errs         map[string]int
}

func (f *flooder) run(ctx context.Context, src string, rate float64, conns int, deadline time.Time) error {
	tr, err := sourceTransport(src, conns)
	if err != nil {
		return err
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	f.statuses, f.errs = map[string]int{}, map[string]int{}
	interval := time.Duration(float64(time.Second) * float64(conns) / rate)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses, errs := map[string]int{}, map[string]int{}
			t := start.Add(interval * time.Duration(w) / time.Duration(conns))
			for t.Before(deadline) && ctx.Err() == nil {
				if d := time.Until(t); d > 0 {
					time.Sleep(d)
				} else if d < -time.Second {
					t = time.Now()
				}
				status, err := get(client, f.target, f.host, -1)
				f.sent.Add(1)
				if err != nil {
					errs[errKind(err)]++
				} else {
					statuses[strconv.Itoa(status)]++
				}
				t = t.Add(interval)
			}
			f.mu.Lock()
			for k, v := range statuses {
				f.statuses[k] += v
			}
			for k, v := range errs {
				f.errs[k] += v
			}
			f.mu.Unlock()
		}()
	}
	wg.Wait()
	return nil
}

// slowloris keeps n connections open, each sending an unfinished request
// and one more header line every trickle interval, and reconnects when the
// guard closes one, until the deadline.
type slowloris struct {
	addr, host string
	trickle    time.Duration

	opened, open, maxOpen            atomic.Int64
	refused, cut, answered, dialErrs atomic.Int64
	mu                               sync.Mutex
	cutAfter                         []float64
}

func (s *slowloris) run(src string, n int, deadline time.Time) error {
	ip := net.ParseIP(src)
	if ip == nil {
		return fmt.Errorf("source address %q is not an IP address", src)
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 2 * time.Second}
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				t := time.Now()
				s.one(d, deadline)
				if time.Since(t) < time.Second {
					// Refused or not connected: pace the retries, so
					// the slowloris does not turn into a connect flood.
					time.Sleep(min(250*time.Millisecond, max(time.Until(deadline), 0)))
				}
			}
		}()
	}
	wg.Wait()
	return nil
}

// one runs one slow connection until the guard closes it or the deadline.
func (s *slowloris) one(d *net.Dialer, deadline time.Time) {
	c, err := d.Dial("tcp", s.addr)
	if err != nil {
		s.dialErrs.Add(1)
		return
	}
	defer c.Close()
	s.opened.Add(1)
	cur := s.open.Add(1)
	defer s.open.Add(-1)
	for m := s.maxOpen.Load(); cur > m && !s.maxOpen.CompareAndSwap(m, cur); m = s.maxOpen.Load() {
	}
	t0 := time.Now()
	if _, err := fmt.Fprintf(c, "GET /index.html HTTP/1.1\r\nHost: %s\r\nUser-Agent: slowloris\r\n", s.host); err != nil {
		s.closed(t0, 0, false)
		return
	}
	buf := make([]byte, 512)
	for i := 0; ; i++ {
		next := time.Now().Add(s.trickle)
		if next.After(deadline) {
			next = deadline
		}
		c.SetReadDeadline(next)
		n, err := c.Read(buf)
		if n > 0 {
			s.closed(t0, i, true)
			return
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			if !time.Now().Before(deadline) {
				return // the attack is over; not the guard's doing
			}
			if _, err := fmt.Fprintf(c, "X-Slow-%d: %d\r\n", i, i); err != nil {
				s.closed(t0, i, false)
				return
			}
			continue
		}
		s.closed(t0, i, false) // EOF or reset: the guard closed it
		return
	}
}

// closed counts a connection the server ended after trickled header
// lines. One closed at once, before the first trickle, was refused at
// accept (the guard resets those before reading a byte); any later close
// is a cut (the header deadline).
func (s *slowloris) closed(t0 time.Time, trickled int, answered bool) {
	life := time.Since(t0)
	switch {
	case answered:
		s.answered.Add(1)
	case trickled == 0 && life < 250*time.Millisecond:
		s.refused.Add(1)
		return
	default:
		s.cut.Add(1)
	}
	s.mu.Lock()
	s.cutAfter = append(s.cutAfter, life.Seconds())
	s.mu.Unlock()
}
