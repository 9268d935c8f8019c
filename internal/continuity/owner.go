package continuity

// Run ownership. Every run records the process that runs it as
// "HOST/BOOT-ID/PID/START", START being the process's start time in clock
// ticks since boot (field 22 of /proc/PID/stat), so that a reused PID or a
// reboot is not mistaken for the same process. When the scheduler starts
// it marks failed the runs left "running" whose process is gone; a run of
// a live process (a `bulwark policy run` beside `bulwark up`) is left
// alone, and so is a run of another host sharing the database (that
// host's scheduler judges its own runs). Without /proc, only the PID is
// checked.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// processOwner names the calling process.
func processOwner() string {
	return ownerOf(os.Getpid())
}

func ownerOf(pid int) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%s/%d/%s", host, bootID(), pid, procStart(pid))
}

func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// procStart returns the start time of process pid in clock ticks since
// boot, or "" when it cannot be read.
func procStart(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// the fields after the last ')' start at field 3.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// sameHost reports whether owner names a process of this host.
func sameHost(owner string) bool {
	host, _ := os.Hostname()
	h, _, _ := strings.Cut(owner, "/")
	return h == host
}

// ownerGone reports whether the process that owner names has ended. An
// empty owner (runs recorded before owners were) counts as gone; another
// host's process never does (History.over judges those by heartbeat).
func ownerGone(owner string) bool {
	if owner == "" {
		return true
	}
	parts := strings.Split(owner, "/")
	if len(parts) != 4 {
		return true
	}
	host, _ := os.Hostname()
	if parts[0] != host {
		return false
	}
	if b := bootID(); b != "" && parts[1] != "" && b != parts[1] {
		return true // the machine rebooted since
	}
	pid, err := strconv.Atoi(parts[2])
	if err != nil || pid <= 0 {
		return true
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
		// Alive; the same process unless the PID was reused (a stat that
		// cannot be read, /proc mounted hidepid, proves nothing).
		st := procStart(pid)
		return parts[3] != "" && st != "" && st != parts[3]
	} else if errors.Is(err, fs.ErrNotExist) && bootID() != "" {
		return true
	}
	err = syscall.Kill(pid, 0)
	return errors.Is(err, syscall.ESRCH)
}
