package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3"
	txhttp "github.com/corazawaf/coraza/v3/http"
)

// naiveDirectives are the naive Coraza set-up, as the coraza-coreruleset
// README and coraza.conf-recommended suggest, and as
// internal/guard/waf/waf_bench_test.go measures in process: the engine on
// (blocking), request and response body access, the audit engine on for
// relevant requests, every CRS file, paranoia 1 (crs-setup's default).
const naiveDirectives = "Include @coraza.conf-recommended\nSecRuleEngine On\nInclude @crs-setup.conf.example\nInclude @owasp_crs/*.conf"

// cmdPorts prints n free loopback TCP ports, one a line.
func cmdPorts(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: ports N")
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 || n > 100 {
		return fmt.Errorf("N = %q: want 1 to 100", args[0])
	}
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("find a free port: %w", err)
		}
		lns = append(lns, ln)
		fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	}
	return nil
}

// cmdProxy runs the plain Go reverse proxy (or the naive Coraza wrapper
// around it) until SIGINT or SIGTERM.
func cmdProxy(args []string) error {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "`host:port` to listen on")
	upstream := fs.String("upstream", "", "upstream `URL` (http://host:port)")
	naive := fs.Bool("coraza", false, "wrap the proxy in Coraza's txhttp middleware with the OWASP CRS (the naive set-up)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(*upstream)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("-upstream %q: want http://host:port", *upstream)
	}
	// NewSingleHostReverseProxy with http.DefaultTransport: what a Go
	// programmer writes first, and what the issue measured.
	var h http.Handler = httputil.NewSingleHostReverseProxy(u)
	if *naive {
		start := time.Now()
		w, err := coraza.NewWAF(coraza.NewWAFConfig().WithRootFS(coreruleset.FS).WithDirectives(naiveDirectives))
		if err != nil {
			return fmt.Errorf("compile the CRS for the naive wrapper: %w", err)
		}
		fmt.Fprintf(os.Stderr, "guardbench proxy: CRS compiled in %v\n", time.Since(start).Round(time.Millisecond))
		h = txhttp.WrapHandler(w, h)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("-listen %s: %w", *listen, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(os.Stderr, "guardbench proxy: listening on %s (coraza: %v)\n", ln.Addr(), *naive)
	select {
	case err := <-errc:
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// cmdReady waits until GET url (with the given Host) answers 200 with a
// body of the expected size. It fails at once when the server's process
// has exited, and after the timeout otherwise, naming the last problem.
func cmdReady(args []string) error {
	fs := flag.NewFlagSet("ready", flag.ContinueOnError)
	target := fs.String("url", "", "`URL` to GET")
	host := fs.String("host", "", "Host header (default: the URL's)")
	size := fs.Int64("size", -1, "expected body size in bytes (-1: any)")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait")
	pid := fs.Int("pid", 0, "the server's process id: fail as soon as it has exited")
	name := fs.String("name", "server", "the server's name, for messages")
	if err := fs.Parse(args); err != nil {
		return err
	}
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(*timeout)
	last := "no answer yet"
	for {
		if *pid > 0 && !alive(*pid) {
			return fmt.Errorf("%s (pid %d) exited before answering %s", *name, *pid, *target)
		}
		req, err := http.NewRequest(http.MethodGet, *target, nil)
		if err != nil {
			return fmt.Errorf("-url %q: %w", *target, err)
		}
		if *host != "" {
			req.Host = *host
		}
		resp, err := client.Do(req)
		if err != nil {
			last = err.Error()
		} else {
			n, rerr := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch {
			case rerr != nil:
				last = fmt.Sprintf("reading the body: %v", rerr)
			case resp.StatusCode != http.StatusOK:
				last = fmt.Sprintf("status %d", resp.StatusCode)
			case *size >= 0 && n != *size:
				last = fmt.Sprintf("body of %d bytes, want %d", n, *size)
			default:
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer GET %s with 200 within %v: %s", *name, *target, *timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// alive reports whether process pid exists and is not a zombie (a child
// of the script that exited but was not waited for yet).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses, which may itself
	// contain spaces and parentheses: take the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	st := s[i+2]
	return st != 'Z' && st != 'X'
}

// procMem is a process's resident memory from /proc/PID/status, in KiB.
type procMem struct {
	RSSKiB int64 `json:"rss_kib"` // VmRSS: now
	HWMKiB int64 `json:"hwm_kib"` // VmHWM: the peak since the process started
}

func readProcMem(pid int) (procMem, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procMem{}, fmt.Errorf("memory of pid %d: %w", pid, err)
	}
	defer f.Close()
	return parseProcStatus(f)
}

// parseProcStatus reads VmRSS and VmHWM from a /proc/PID/status file.
func parseProcStatus(r io.Reader) (procMem, error) {
	var m procMem
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *int64
		switch k {
		case "VmRSS":
			dst = &m.RSSKiB
		case "VmHWM":
			dst = &m.HWMKiB
		default:
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("/proc status: %s: unexpected value %q", k, v)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return m, fmt.Errorf("/proc status: %s: %w", k, err)
		}
		*dst = n
	}
	if err := sc.Err(); err != nil {
		return m, err
	}
	if m.RSSKiB == 0 || m.HWMKiB == 0 {
		return m, errors.New("/proc status: no VmRSS or VmHWM (a kernel thread, or the process exited)")
	}
	return m, nil
}

// promSample is one sample of the Prometheus text format.
type promSample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// parseProm reads the samples of the Prometheus text exposition format
// (comments and blank lines skipped; label values may hold escaped
// quotes, backslashes and newlines).
func parseProm(r io.Reader) ([]promSample, error) {
	var out []promSample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || t[0] == '#' {
			continue
		}
		s, err := parsePromLine(t)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d: %w: %q", line, err, t)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

func parsePromLine(t string) (promSample, error) {
	var s promSample
	i := strings.IndexAny(t, "{ \t")
	if i <= 0 {
		return s, errors.New("no value")
	}
	s.Name = t[:i]
	rest := t[i:]
	if rest[0] == '{' {
		s.Labels = map[string]string{}
		rest = rest[1:]
		for {
			rest = strings.TrimLeft(rest, " ,")
			if rest == "" {
				return s, errors.New("unterminated labels")
			}
			if rest[0] == '}' {
				rest = rest[1:]
				break
			}
			eq := strings.IndexByte(rest, '=')
			if eq <= 0 || eq+1 >= len(rest) || rest[eq+1] != '"' {
				return s, errors.New("bad label")
			}
			key := strings.TrimSpace(rest[:eq])
			var val strings.Builder
			j := eq + 2
			for ; j < len(rest) && rest[j] != '"'; j++ {
				c := rest[j]
				if c == '\\' && j+1 < len(rest) {
					j++
					switch rest[j] {
					case 'n':
						c = '\n'
					default:
						c = rest[j]
					}
				}
				val.WriteByte(c)
			}
			if j >= len(rest) {
				return s, errors.New("unterminated label value")
			}
			s.Labels[key] = val.String()
			rest = rest[j+1:]
		}
	}
	f := strings.Fields(rest) // value, then an optional timestamp
	if len(f) == 0 || len(f) > 2 {
		return s, errors.New("want a value and an optional timestamp")
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return s, fmt.Errorf("value: %w", err)
	}
	s.Value = v
	return s, nil
}

// scrape fetches and parses a metrics URL.
func scrape(client *http.Client, u string) ([]promSample, error) {
	resp, err := client.Get(u)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: status %d", u, resp.StatusCode)
	}
	s, err := parseProm(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", u, err)
	}
	return s, nil
}

// promValue sums the samples named name whose labels include want.
func promValue(samples []promSample, name string, want map[string]string) (float64, bool) {
	sum, found := 0.0, false
outer:
	for _, s := range samples {
		if s.Name != name {
			continue
		}
		for k, v := range want {
			if s.Labels[k] != v {
				continue outer
			}
		}
		sum += s.Value
		found = true
	}
	return sum, found
}
