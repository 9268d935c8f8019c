package host

// Process counting and the restart rule for named processes (see the
// package documentation, "Restarts").

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"sort"
	"strconv"

	"golang.org/x/sys/unix"
)

// commLen is the longest command name the kernel keeps (TASK_COMM_LEN
// less the terminating NUL); longer names are truncated in
// /proc/PID/comm and /proc/PID/stat.
const commLen = 15

// procID identifies a process across samples: a PID may be reused, a
// (PID, start time) pair is not.
type procID struct {
	pid   int
	start uint64
}

// namedState is what the tracker remembers of one name.
type namedState struct {
	name  string // as configured
	match string // as the kernel shows it (truncated)
	prev  map[procID]struct{}
	cur   map[procID]struct{}
	// vanished counts processes of this name that disappeared and have
	// not yet been matched by a new one.
	vanished uint64
	restarts uint64
	seeded   bool
}

// namedTracker counts the processes of each configured name and their
// restarts.
type namedTracker struct {
	states []*namedState
	// byComm maps a kernel command name to the states matching it (two
	// configured names may truncate to the same one).
	byComm map[string][]*namedState
}

func newNamedTracker(names []string) *namedTracker {
	t := &namedTracker{byComm: make(map[string][]*namedState)}
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if seen[n] {
			continue // one series per name
		}
		seen[n] = true
		m := n
		if len(m) > commLen {
			m = m[:commLen]
		}
		st := &namedState{name: n, match: m, prev: map[procID]struct{}{}, cur: map[procID]struct{}{}}
		t.states = append(t.states, st)
		t.byComm[m] = append(t.byComm[m], st)
	}
	return t
}

// begin starts a new sample.
func (t *namedTracker) begin() {
	for _, st := range t.states {
		clear(st.cur)
	}
}

// see records a running process.
func (t *namedTracker) see(comm []byte, id procID) {
	for _, st := range t.byComm[string(comm)] {
		st.cur[id] = struct{}{}
	}
}

// end applies the restart rule and returns the sample's view. The first
// sample only seeds the state.
func (t *namedTracker) end() []NamedProcess {
	out := make([]NamedProcess, len(t.states))
	for i, st := range t.states {
		if st.seeded {
			var gone, born uint64
			for id := range st.prev {
				if _, ok := st.cur[id]; !ok {
					gone++
				}
			}
			for id := range st.cur {
				if _, ok := st.prev[id]; !ok {
					born++
				}
			}
			st.vanished += gone
			r := min(st.vanished, born)
			st.restarts += r
			st.vanished -= r
		}
		st.seeded = true
		st.prev, st.cur = st.cur, st.prev
		pids := make([]int, 0, len(st.prev))
		for id := range st.prev {
			pids = append(pids, id.pid)
		}
		sort.Ints(pids)
		out[i] = NamedProcess{Name: st.name, Up: len(pids), PIDs: pids, Restarts: st.restarts}
	}
	return out
}

// readProcesses counts every process in /proc by state and threads and
// feeds the named-process tracker. A process that exits while it is being
// read is skipped.
func (c *Collector) readProcesses(s *Sample) error {
	var err error
	c.pids, c.buf, err = listPIDs(c.o.ProcPath, c.buf, c.pids[:0])
	if err != nil {
		return err
	}
	var states [256]int
	p := &s.Processes
	path := make([]byte, 0, len(c.o.ProcPath)+32)
	c.named.begin()
	for _, pid := range c.pids {
		path = append(path[:0], c.o.ProcPath...)
		path = append(path, '/')
		path = strconv.AppendInt(path, int64(pid), 10)
		path = append(path, "/stat"...)
		file := string(path)
		data, err := c.read(file)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH) {
				continue // exited meanwhile
			}
			return err
		}
		st, err := parsePidStat(file, data)
		if err != nil {
			return err
		}
		p.Total++
		p.Threads += int(min(st.threads, 1<<31))
		states[st.state]++
		c.named.see(st.comm, procID{pid: pid, start: st.startTime})
	}
	s.Named = c.named.end()
	p.ByState = make(map[string]int)
	for b, n := range states {
		if n > 0 {
			p.ByState[string(rune(b))] = n
		}
	}
	for _, lim := range []struct {
		file string
		dst  *uint64
	}{{"sys/kernel/pid_max", &p.MaxProcesses}, {"sys/kernel/threads-max", &p.MaxThreads}} {
		path := c.procFile(lim.file)
		data, err := c.read(path)
		if err != nil {
			return err
		}
		v, ok := parseUint(bytes.TrimSpace(data))
		if !ok {
			return parseErr(path, 1, "invalid number %q", clip(data))
		}
		*lim.dst = v
	}
	return nil
}

// listPIDs appends the numeric entries of the directory at path (procfs)
// to dst. It reads the directory with getdents64 into buf and parses the
// records itself, so that listing a thousand processes allocates no names.
func listPIDs(path string, buf []byte, dst []int) ([]int, []byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return dst, buf, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	if cap(buf) < 8192 {
		buf = make([]byte, 8192)
	}
	buf = buf[:cap(buf)]
	for {
		n, err := unix.ReadDirent(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			// The read error is the one to report; closing a read-only
			// descriptor cannot lose data.
			_ = unix.Close(fd)
			return dst, buf[:0], &fs.PathError{Op: "getdents", Path: path, Err: err}
		}
		if n <= 0 {
			break
		}
		dst = appendDirentPIDs(dst, buf[:n])
	}
	if err := unix.Close(fd); err != nil {
		return dst, buf[:0], &fs.PathError{Op: "close", Path: path, Err: err}
	}
	return dst, buf[:0], nil
}

// appendDirentPIDs parses linux_dirent64 records (inode u64, offset s64,
// record length u16, type u8, NUL-terminated name) and appends the names
// that are process IDs.
func appendDirentPIDs(dst []int, b []byte) []int {
	const nameOff = 19
	for len(b) >= nameOff {
		reclen := int(binary.NativeEndian.Uint16(b[16:18]))
		if reclen <= nameOff || reclen > len(b) {
			break // malformed: the kernel never writes this
		}
		name := b[nameOff:reclen]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		if pid, ok := parseUint(name); ok && pid > 0 && pid <= 1<<31-1 {
			dst = append(dst, int(pid))
		}
		b = b[reclen:]
	}
	return dst
}
