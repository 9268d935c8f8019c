package host

// Parsers of the /proc and /sys text files the collector reads.
//
// Each parser takes the file's name (only for error messages) and its bytes,
// and never panics whatever the bytes: the files come from the kernel, but a
// fixture tree, a container's bind mount or a future kernel may hold
// anything, so every index is checked and every number is parsed with
// overflow detection. A malformed line is a *ParseError naming the file and
// the 1-based line. The parsers do not keep references to the input, which
// the collector reuses as its read buffer from one file to the next; strings
// that recur on every sample (field, device and interface names) are interned
// so that a steady host allocates no new names.

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
)

// ParseError reports malformed content in a file read from /proc or /sys.
type ParseError struct {
	// File is the path that was read, e.g. /proc/meminfo.
	File string
	// Line is the 1-based line number, or 0 when the error is about the
	// file as a whole.
	Line int
	// Msg says what is wrong.
	Msg string
}

// Error formats the error as file:line: message.
func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

func parseErr(file string, line int, format string, args ...any) error {
	return &ParseError{File: file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// lineReader iterates over the lines of a byte slice, counting them.
type lineReader struct {
	rest []byte
	n    int
}

func (l *lineReader) next() ([]byte, bool) {
	if len(l.rest) == 0 {
		return nil, false
	}
	l.n++
	i := bytes.IndexByte(l.rest, '\n')
	if i < 0 {
		line := l.rest
		l.rest = nil
		return line, true
	}
	line := l.rest[:i]
	l.rest = l.rest[i+1:]
	return line, true
}

// splitFields appends the blank-separated fields of b to dst[:0].
func splitFields(dst [][]byte, b []byte) [][]byte {
	return splitFieldsN(dst, b, -1)
}

// splitFieldsN is splitFields stopping after n fields when n >= 0, for
// lines with many fields of which only the first few are used (the
// thousands of interrupt counts of /proc/stat's intr line).
func splitFieldsN(dst [][]byte, b []byte, n int) [][]byte {
	dst = dst[:0]
	i := 0
	for i < len(b) && len(dst) != n {
		for i < len(b) && isBlank(b[i]) {
			i++
		}
		start := i
		for i < len(b) && !isBlank(b[i]) {
			i++
		}
		if i > start {
			dst = append(dst, b[start:i])
		}
	}
	return dst
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' }

// parseUint parses an unsigned decimal without allocating.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// parseFloat parses a non-negative decimal such as a load average.
func parseFloat(b []byte) (float64, bool) {
	if len(b) == 0 || len(b) > 64 {
		return 0, false
	}
	for _, c := range b {
		if (c < '0' || c > '9') && c != '.' {
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(string(b), 64)
	return f, err == nil
}

// interner returns one string per distinct byte sequence, so names read on
// every sample are allocated once. Lookups with string(b) do not allocate.
type interner map[string]string

// maxInterned bounds an interner fed with untrusted input; past it new
// names are allocated each time instead of being remembered.
const maxInterned = 4096

func (in interner) get(b []byte) string {
	if s, ok := in[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(in) < maxInterned {
		in[s] = s
	}
	return s
}

// MemInfoField is one line of /proc/meminfo under node_exporter's name for
// it: parentheses become an underscore (Active(anon) is Active_anon) and
// fields counted in kB are converted to bytes and suffixed _bytes, while
// counts such as HugePages_Total keep their name.
type MemInfoField struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
}

// meminfoNames caches the node_exporter name of each raw meminfo key.
type meminfoNames struct {
	plain, bytes interner
}

func newMeminfoNames() *meminfoNames {
	return &meminfoNames{plain: interner{}, bytes: interner{}}
}

func (m *meminfoNames) name(raw []byte, hasUnit bool) string {
	in := m.plain
	if hasUnit {
		in = m.bytes
	}
	if s, ok := in[string(raw)]; ok {
		return s
	}
	s := mangleMeminfo(string(raw), hasUnit)
	if len(in) < maxInterned {
		in[string(raw)] = s
	}
	return s
}

// mangleMeminfo is node_exporter's renaming: the first "(" to the last ")"
// becomes "_" plus what is inside, and a field with a unit gets _bytes.
func mangleMeminfo(key string, hasUnit bool) string {
	if i := indexByte(key, '('); i >= 0 {
		if j := lastIndexByte(key, ')'); j > i {
			key = key[:i] + "_" + key[i+1:j] + key[j+1:]
		}
	}
	if hasUnit {
		key += "_bytes"
	}
	return key
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func lastIndexByte(s string, c byte) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// parseMeminfo parses /proc/meminfo ("Key:   value kB" lines) into dst.
func parseMeminfo(file string, data []byte, names *meminfoNames, dst []MemInfoField) ([]MemInfoField, error) {
	dst = dst[:0]
	var fields [][]byte
	lr := lineReader{rest: data}
	for {
		line, ok := lr.next()
		if !ok {
			break
		}
		fields = splitFields(fields, line)
		if len(fields) == 0 {
			continue // some kernels print blank lines
		}
		key := fields[0]
		if len(key) < 2 || key[len(key)-1] != ':' {
			return nil, parseErr(file, lr.n, "want \"Name: value [kB]\", got %q", clip(line))
		}
		key = key[:len(key)-1]
		var hasUnit bool
		switch len(fields) {
		case 2:
		case 3:
			if string(fields[2]) != "kB" {
				return nil, parseErr(file, lr.n, "unknown unit %q (want kB)", clip(fields[2]))
			}
			hasUnit = true
		default:
			return nil, parseErr(file, lr.n, "want \"Name: value [kB]\", got %q", clip(line))
		}
		v, ok := parseUint(fields[1])
		if !ok {
			return nil, parseErr(file, lr.n, "invalid value %q for %s", clip(fields[1]), clip(key))
		}
		f := float64(v)
		if hasUnit {
			f *= 1024
		}
		dst = append(dst, MemInfoField{Name: names.name(key, hasUnit), Value: f})
	}
	if len(dst) == 0 {
		return nil, parseErr(file, 0, "no fields")
	}
	return dst, nil
}

// clip bounds the bytes quoted in an error message.
func clip(b []byte) []byte {
	const max = 80
	if len(b) > max {
		return b[:max]
	}
	return b
}

// userHZ is the unit of the CPU times in /proc/stat. The kernel exports
// them in USER_HZ, which is 100 on every architecture Linux supports today
// (procfs and node_exporter make the same assumption).
const userHZ = 100

// CPUTimes are the seconds one CPU (or all of them, summed) spent in each
// mode since boot. Guest and GuestNice are also counted in User and Nice.
type CPUTimes struct {
	// CPU is the processor number, or -1 for the sum of all.
	CPU       int     `json:"cpu"`
	User      float64 `json:"user"`
	Nice      float64 `json:"nice"`
	System    float64 `json:"system"`
	Idle      float64 `json:"idle"`
	Iowait    float64 `json:"iowait"`
	IRQ       float64 `json:"irq"`
	SoftIRQ   float64 `json:"softirq"`
	Steal     float64 `json:"steal"`
	Guest     float64 `json:"guest"`
	GuestNice float64 `json:"guest_nice"`
}

// total is the time in all modes, guest time being already part of user
// and nice.
func (t CPUTimes) total() float64 {
	return t.User + t.Nice + t.System + t.Idle + t.Iowait + t.IRQ + t.SoftIRQ + t.Steal
}

// procStat is what /proc/stat says.
type procStat struct {
	all             CPUTimes
	cpus            []CPUTimes
	intr            uint64
	contextSwitches uint64
	bootTime        uint64
	forks           uint64
	procsRunning    uint64
	procsBlocked    uint64
}

// parseStat parses /proc/stat. Lines it does not use (softirq, and any a
// future kernel adds) are skipped; when a key appears twice the last one
// wins, as in procfs.
func parseStat(file string, data []byte, dst *procStat) error {
	cpus := dst.cpus[:0]
	*dst = procStat{all: CPUTimes{CPU: -1}}
	// A cpu line has 11 fields; the others need 2.
	var buf [11][]byte
	fields := buf[:0]
	var sawAll bool
	lr := lineReader{rest: data}
	for {
		line, ok := lr.next()
		if !ok {
			break
		}
		fields = splitFieldsN(fields, line, len(buf))
		if len(fields) == 0 {
			continue
		}
		key := fields[0]
		switch {
		case bytes.HasPrefix(key, []byte("cpu")):
			t := CPUTimes{CPU: -1}
			if len(key) > 3 {
				n, ok := parseUint(key[3:])
				if !ok || n > math.MaxInt32 {
					return parseErr(file, lr.n, "invalid cpu name %q", clip(key))
				}
				t.CPU = int(n)
			}
			if len(fields) < 5 {
				return parseErr(file, lr.n, "%s has %d values, want at least 4", clip(key), len(fields)-1)
			}
			vals := [10]*float64{&t.User, &t.Nice, &t.System, &t.Idle, &t.Iowait, &t.IRQ, &t.SoftIRQ, &t.Steal, &t.Guest, &t.GuestNice}
			for i, f := range fields[1:] {
				if i >= len(vals) {
					break
				}
				v, ok := parseUint(f)
				if !ok {
					return parseErr(file, lr.n, "invalid %s value %q", clip(key), clip(f))
				}
				*vals[i] = float64(v) / userHZ
			}
			if t.CPU < 0 {
				dst.all = t
				sawAll = true
			} else {
				cpus = append(cpus, t)
			}
		case string(key) == "intr", string(key) == "ctxt", string(key) == "btime",
			string(key) == "processes", string(key) == "procs_running", string(key) == "procs_blocked":
			if len(fields) < 2 {
				return parseErr(file, lr.n, "%s has no value", key)
			}
			v, ok := parseUint(fields[1])
			if !ok {
				return parseErr(file, lr.n, "invalid %s value %q", key, clip(fields[1]))
			}
			switch string(key) {
			case "intr":
				dst.intr = v
			case "ctxt":
				dst.contextSwitches = v
			case "btime":
				dst.bootTime = v
			case "processes":
				dst.forks = v
			case "procs_running":
				dst.procsRunning = v
			case "procs_blocked":
				dst.procsBlocked = v
			}
		}
	}
	dst.cpus = cpus
	if !sawAll || len(cpus) == 0 {
		return parseErr(file, 0, "no cpu lines")
	}
	return nil
}

// Load is the run-queue load average over 1, 5 and 15 minutes.
type Load struct {
	Load1  float64 `json:"load1"`
	Load5  float64 `json:"load5"`
	Load15 float64 `json:"load15"`
}

// parseLoadavg parses /proc/loadavg ("0.80 0.76 0.37 1/140 357").
func parseLoadavg(file string, data []byte) (Load, error) {
	var buf [3][]byte
	fields := splitFieldsN(buf[:0], firstLine(data), len(buf))
	if len(fields) < 3 {
		return Load{}, parseErr(file, 1, "want 3 load averages, got %q", clip(data))
	}
	var l Load
	for i, p := range []*float64{&l.Load1, &l.Load5, &l.Load15} {
		v, ok := parseFloat(fields[i])
		if !ok {
			return Load{}, parseErr(file, 1, "invalid load average %q", clip(fields[i]))
		}
		*p = v
	}
	return l, nil
}

// parseUptime parses /proc/uptime ("440.79 605.36") into seconds since boot.
func parseUptime(file string, data []byte) (float64, error) {
	var buf [1][]byte
	fields := splitFieldsN(buf[:0], firstLine(data), len(buf))
	if len(fields) < 1 {
		return 0, parseErr(file, 1, "empty")
	}
	v, ok := parseFloat(fields[0])
	if !ok {
		return 0, parseErr(file, 1, "invalid uptime %q", clip(fields[0]))
	}
	return v, nil
}

func firstLine(b []byte) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i]
	}
	return b
}

// diskStatFields is how many counters /proc/diskstats has on kernels since
// 5.5 (reads, merges, sectors, ms for reads, writes, discards and flushes,
// plus in-flight, io ticks and weighted io ticks). Older kernels print 11
// (before 4.18) or 15 (before 5.5).
const diskStatFields = 17

// diskStat is one line of /proc/diskstats.
type diskStat struct {
	major, minor uint32
	name         string
	// n is how many of the counters the kernel printed.
	n   int
	val [diskStatFields]uint64
}

// parseDiskstats parses /proc/diskstats. Lines with fewer than 11 counters
// (the kernel 2.6 partition format) are errors: no kernel this program runs
// on prints them.
func parseDiskstats(file string, data []byte, names interner, dst []diskStat) ([]diskStat, error) {
	dst = dst[:0]
	var fields [][]byte
	lr := lineReader{rest: data}
	for {
		line, ok := lr.next()
		if !ok {
			break
		}
		fields = splitFields(fields, line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) < 3+11 {
			return nil, parseErr(file, lr.n, "%d fields, want at least 14", len(fields))
		}
		major, ok1 := parseUint(fields[0])
		minor, ok2 := parseUint(fields[1])
		if !ok1 || !ok2 || major > math.MaxUint32 || minor > math.MaxUint32 {
			return nil, parseErr(file, lr.n, "invalid device number %q:%q", clip(fields[0]), clip(fields[1]))
		}
		d := diskStat{major: uint32(major), minor: uint32(minor), name: names.get(fields[2])}
		for i, f := range fields[3:] {
			if i >= diskStatFields {
				break
			}
			v, ok := parseUint(f)
			if !ok {
				return nil, parseErr(file, lr.n, "invalid counter %q for %s", clip(f), d.name)
			}
			d.val[i] = v
			d.n = i + 1
		}
		dst = append(dst, d)
	}
	return dst, nil
}

// netDevFields is the number of counters per interface in /proc/net/dev.
const netDevFields = 16

// netDevStat is one interface line of /proc/net/dev: receive bytes,
// packets, errs, drop, fifo, frame, compressed, multicast, then transmit
// bytes, packets, errs, drop, fifo, colls, carrier, compressed.
type netDevStat struct {
	name string
	val  [netDevFields]uint64
}

// parseNetDev parses /proc/net/dev: two header lines, then "name: 16
// counters" per interface.
func parseNetDev(file string, data []byte, names interner, dst []netDevStat) ([]netDevStat, error) {
	dst = dst[:0]
	var fields [][]byte
	lr := lineReader{rest: data}
	for {
		line, ok := lr.next()
		if !ok {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			if lr.n <= 2 || len(bytes.TrimSpace(line)) == 0 {
				continue // the two header lines
			}
			return nil, parseErr(file, lr.n, "no ':' after the interface name in %q", clip(line))
		}
		name := bytes.TrimSpace(line[:colon])
		if len(name) == 0 {
			return nil, parseErr(file, lr.n, "empty interface name")
		}
		if bytes.ContainsAny(name, " \t\r\v\f") {
			// The kernel refuses blanks in interface names.
			return nil, parseErr(file, lr.n, "invalid interface name %q", clip(name))
		}
		fields = splitFields(fields, line[colon+1:])
		if len(fields) != netDevFields {
			return nil, parseErr(file, lr.n, "%s has %d counters, want %d", clip(name), len(fields), netDevFields)
		}
		s := netDevStat{name: names.get(name)}
		for i, f := range fields {
			v, ok := parseUint(f)
			if !ok {
				return nil, parseErr(file, lr.n, "invalid counter %q for %s", clip(f), s.name)
			}
			s.val[i] = v
		}
		dst = append(dst, s)
	}
	return dst, nil
}

// mount is one line of /proc/PID/mounts.
type mount struct {
	device, mountPoint, fsType string
	readOnly                   bool
}

// parseMounts parses the fstab-like /proc/PID/mounts format: device, mount
// point, type, options, dump, pass. The mount point's octal escapes (\040
// for a space, \011, \012, \134) are decoded.
func parseMounts(file string, data []byte, names interner, dst []mount) ([]mount, error) {
	dst = dst[:0]
	var fields [][]byte
	lr := lineReader{rest: data}
	for {
		line, ok := lr.next()
		if !ok {
			break
		}
		fields = splitFields(fields, line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) < 4 {
			return nil, parseErr(file, lr.n, "%d fields, want device, mount point, type and options", len(fields))
		}
		m := mount{
			device:     names.get(fields[0]),
			mountPoint: unescapeMount(names, fields[1]),
			fsType:     names.get(fields[2]),
		}
		for opts := fields[3]; len(opts) > 0; {
			opt := opts
			if i := bytes.IndexByte(opts, ','); i >= 0 {
				opt, opts = opts[:i], opts[i+1:]
			} else {
				opts = nil
			}
			if string(opt) == "ro" {
				m.readOnly = true
				break
			}
		}
		dst = append(dst, m)
	}
	return dst, nil
}

// unescapeMount decodes the kernel's \ooo escapes in a mount path.
func unescapeMount(names interner, b []byte) string {
	if bytes.IndexByte(b, '\\') < 0 {
		return names.get(b)
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '\\' && i+3 < len(b) && isOctal(b[i+1]) && isOctal(b[i+2]) && isOctal(b[i+3]) {
			v := (int(b[i+1]-'0')<<6 | int(b[i+2]-'0')<<3 | int(b[i+3]-'0'))
			if v <= 0xff {
				out = append(out, byte(v))
				i += 3
				continue
			}
		}
		out = append(out, b[i])
	}
	return names.get(out)
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// pidStat is what the collector uses of /proc/PID/stat.
type pidStat struct {
	comm      []byte // aliases the input
	state     byte
	threads   uint64
	startTime uint64
}

// parsePidStat parses /proc/PID/stat: "pid (comm) state ppid ...". The
// command name may itself contain spaces and parentheses, so it runs from
// the first "(" to the last ")".
func parsePidStat(file string, data []byte) (pidStat, error) {
	open := bytes.IndexByte(data, '(')
	closing := bytes.LastIndexByte(data, ')')
	if open < 0 || closing < open {
		return pidStat{}, parseErr(file, 1, "no (comm) in %q", clip(data))
	}
	var buf [20][]byte
	fields := splitFieldsN(buf[:0], firstLine(data[closing+1:]), len(buf))
	// Fields after the command: state is field 3 of the file, num_threads
	// field 20 and starttime field 22.
	if len(fields) < 20 || len(fields[0]) != 1 {
		return pidStat{}, parseErr(file, 1, "too few fields after the command name")
	}
	threads, ok1 := parseUint(fields[17])
	start, ok2 := parseUint(fields[19])
	if !ok1 || !ok2 {
		return pidStat{}, parseErr(file, 1, "invalid num_threads %q or starttime %q", clip(fields[17]), clip(fields[19]))
	}
	return pidStat{comm: data[open+1 : closing], state: fields[0][0], threads: threads, startTime: start}, nil
}

// parseUdev reads the E:KEY=VALUE properties of a /run/udev/data/bMAJ:MIN
// file that node_exporter puts on node_disk_info and its siblings.
func parseUdev(data []byte, want func(key string) bool) map[string]string {
	var props map[string]string
	lr := lineReader{rest: data}
	for {
		line, ok := lr.next()
		if !ok {
			return props
		}
		if !bytes.HasPrefix(line, []byte("E:")) {
			continue
		}
		k, v, ok := bytes.Cut(line[2:], []byte("="))
		if !ok || !want(string(k)) {
			continue
		}
		if props == nil {
			props = make(map[string]string)
		}
		props[string(k)] = string(v)
	}
}
