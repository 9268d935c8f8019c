package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// The memory scenario: the guard trusts the proxy at 127.0.0.1, and every
// request names another client address in X-Forwarded-For, so each one is
// a new source for the guard's limit tables. Memory is read from
// /proc/PID/status (VmRSS now, VmHWM the peak) and the tables' sizes and
// the Go heap from the guard's /metrics, sampled while the addresses
// stream in.

// SourcesResult is the guard's memory with many distinct sources.
type SourcesResult struct {
	Sources     int     `json:"sources"`
	First       string  `json:"first"` // first client address; the others follow it
	Concurrency int     `json:"concurrency"`
	Seconds     float64 `json:"seconds"`
	Rate        float64 `json:"rate"` // requests per second achieved
	OK          int64   `json:"ok"`
	NotOK       int64   `json:"not_ok"`
	// Idle: after a warm-up of 256 requests from other addresses; HWM
	// before is the peak up to then (start-up included).
	IdleRSSKiB    int64 `json:"idle_rss_kib"`
	IdleHWMKiB    int64 `json:"idle_hwm_kib"`
	HWMKiB        int64 `json:"hwm_kib"` // VmHWM after the sweep: the peak
	MaxRSSKiB     int64 `json:"max_rss_kib"`
	FinalRSSKiB   int64 `json:"final_rss_kib"`
	IdleHeapBytes int64 `json:"idle_heap_bytes"` // go_memstats_heap_inuse_bytes
	MaxHeapBytes  int64 `json:"max_heap_bytes"`
	// Table entries (bulwark_guard_limit_table_entries), the most seen in
	// a sample and at the end, by table.
	MaxEntries   map[string]float64 `json:"max_entries"`
	FinalEntries map[string]float64 `json:"final_entries"`
	Samples      int                `json:"samples"`
}

func cmdSources(args []string) error {
	fs := flag.NewFlagSet("sources", flag.ContinueOnError)
	target := fs.String("url", "", "`URL` to GET through the guard")
	host := fs.String("host", "", "Host header")
	n := fs.Int("n", 100000, "distinct client addresses")
	first := fs.String("first", "198.18.0.0", "first client `address` (198.18.0.0/15 is set aside for benchmarks)")
	conc := fs.Int("concurrency", 32, "requests in flight")
	metrics := fs.String("metrics", "", "the guard's metrics `URL`")
	pid := fs.Int("pid", 0, "the guard's process id")
	every := fs.Duration("sample", 100*time.Millisecond, "sampling period")
	out := fs.String("out", "-", "result `file` (JSON)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *n > 10000000 || *conc < 1 || *conc > 1000 || *pid <= 0 || *metrics == "" {
		return errors.New("need -pid and -metrics, -n in 1 to 10,000,000 and -concurrency in 1 to 1000")
	}
	base, err := netip.ParseAddr(*first)
	if err != nil || !base.Is4() {
		return fmt.Errorf("-first %q: want an IPv4 address", *first)
	}
	tr := &http.Transport{MaxIdleConns: *conc, MaxIdleConnsPerHost: *conc, MaxConnsPerHost: *conc, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	mc := &http.Client{Timeout: 2 * time.Second}

	send := func(client *http.Client, addr netip.Addr) error {
		req, err := http.NewRequest(http.MethodGet, *target, nil)
		if err != nil {
			return err
		}
		req.Host = *host
		req.Header.Set("X-Forwarded-For", addr.String())
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		return err
	}

	// Warm up (connections, buffers, the Go heap's first growth) from
	// 203.0.113.0/24, then wait for those buckets to refill.
	warm := netip.MustParseAddr("203.0.113.0")
	for range 256 {
		if err := send(client, warm); err != nil {
			return fmt.Errorf("warm-up request from %s: %w", warm, err)
		}
		warm = warm.Next()
	}
	time.Sleep(1500 * time.Millisecond)
	var r SourcesResult
	r.Sources, r.First, r.Concurrency = *n, base.String(), *conc
	idle, err := readProcMem(*pid)
	if err != nil {
		return err
	}
	r.IdleRSSKiB, r.IdleHWMKiB = idle.RSSKiB, idle.HWMKiB
	s, err := scrape(mc, *metrics)
	if err != nil {
		return err
	}
	if v, ok := promValue(s, "go_memstats_heap_inuse_bytes", nil); ok {
		r.IdleHeapBytes = int64(v)
	}
	r.MaxEntries, r.FinalEntries = map[string]float64{}, map[string]float64{}

	ctx, cancel := context.WithCancel(context.Background())
	var sampler sync.WaitGroup
	var mu sync.Mutex
	sample := func() {
		if m, err := readProcMem(*pid); err == nil {
			r.MaxRSSKiB = max(r.MaxRSSKiB, m.RSSKiB)
		}
		s, err := scrape(mc, *metrics)
		if err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		r.Samples++
		for _, x := range s {
			switch x.Name {
			case "bulwark_guard_limit_table_entries":
				t := x.Labels["table"]
				r.MaxEntries[t] = max(r.MaxEntries[t], x.Value)
			case "go_memstats_heap_inuse_bytes":
				r.MaxHeapBytes = max(r.MaxHeapBytes, int64(x.Value))
			}
		}
	}
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		t := time.NewTicker(*every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				sample()
			}
		}
	}()

	var next, ok, bad atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(*n) {
					return
				}
				if err := send(client, nthAddr(base, uint32(i))); err != nil {
					bad.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	r.Seconds = time.Since(start).Seconds()
	cancel()
	sampler.Wait()
	sample()
	r.OK, r.NotOK = ok.Load(), bad.Load()
	r.Rate = float64(r.OK+r.NotOK) / r.Seconds
	end, err := readProcMem(*pid)
	if err != nil {
		return fmt.Errorf("the guard (pid %d) is gone after the sweep: %w", *pid, err)
	}
	r.HWMKiB, r.FinalRSSKiB = end.HWMKiB, end.RSSKiB
	s, err = scrape(mc, *metrics)
	if err != nil {
		return err
	}
	for _, x := range s {
		if x.Name == "bulwark_guard_limit_table_entries" {
			r.FinalEntries[x.Labels["table"]] = x.Value
		}
	}
	if err := writeJSON(*out, r); err != nil {
		return err
	}
	if limit := int64(*n) / 1000; r.NotOK > limit {
		return fmt.Errorf("%d of %d requests failed (first: %v); the figures are not meaningful", r.NotOK, *n, firstErr.Load())
	}
	return nil
}

// nthAddr is the IPv4 address i places after base.
func nthAddr(base netip.Addr, i uint32) netip.Addr {
	b := base.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += i
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
