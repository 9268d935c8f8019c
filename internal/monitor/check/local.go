package check

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
)

// CountProcesses counts the processes whose name (/proc/PID/comm) is name.
// Processes that exit while being counted are skipped.
func CountProcesses(procPath, name string) (int, error) {
	ents, err := os.ReadDir(procPath)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		if !e.IsDir() || e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(procPath, e.Name(), "comm"))
		if err != nil {
			continue
		}
		if string(bytes.TrimSuffix(comm, []byte("\n"))) == name {
			n++
		}
	}
	return n, nil
}

func newProcess(p config.ProcessCheck, o Options) func(context.Context) outcome {
	least := p.Min
	if least == 0 {
		least = 1
	}
	return func(context.Context) outcome {
		n, err := CountProcesses(o.ProcPath, p.Name)
		if err != nil {
			return unknown("list processes: %v", err)
		}
		if n < least {
			if n == 0 {
				return fail("no process named %s is running", p.Name).with("processes", 0)
			}
			return fail("%d processes named %s are running, fewer than %d", n, p.Name, least).with("processes", float64(n))
		}
		return pass("%d processes named %s are running", n, p.Name).with("processes", float64(n))
	}
}

// SystemdRunning reports whether systemd is this host's init, as
// sd_booted(3) decides.
func SystemdRunning() bool {
	fi, err := os.Stat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

func newSystemd(s config.SystemdCheck) func(context.Context) outcome {
	return func(ctx context.Context) outcome {
		if !SystemdRunning() {
			return unknown("systemd is not running on this host (no /run/systemd/system); use a process check for %s", s.Unit)
		}
		out, err := exec.CommandContext(ctx, "systemctl", "show", "--property=ActiveState,SubState,NRestarts,LoadState", "--", s.Unit).Output()
		if err != nil {
			return unknown("systemctl show %s: %v", s.Unit, err)
		}
		props := map[string]string{}
		for _, line := range strings.Split(string(out), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				props[k] = v
			}
		}
		oc := pass("%s is %s (%s)", s.Unit, props["ActiveState"], props["SubState"])
		switch {
		case props["LoadState"] == "not-found":
			oc = fail("%s: no such unit", s.Unit)
		case props["ActiveState"] != "active":
			oc = fail("%s is %s (%s)", s.Unit, props["ActiveState"], props["SubState"])
		}
		var restarts float64
		if _, err := fmt.Sscan(props["NRestarts"], &restarts); err == nil {
			oc = oc.with("restarts", restarts)
		}
		return oc
	}
}

func newFile(f config.FileCheck, o Options) func(context.Context) outcome {
	return func(context.Context) outcome {
		fi, err := os.Stat(f.Path)
		if errors.Is(err, fs.ErrNotExist) {
			return fail("%s does not exist", f.Path)
		}
		if err != nil {
			return unknown("%v", err)
		}
		age := o.Now().Sub(fi.ModTime())
		oc := pass("%s was modified %s ago", f.Path, age.Round(time.Second))
		if age > f.MaxAge.D() {
			oc = fail("%s was last modified %s ago (at %s), longer than %s", f.Path, age.Round(time.Second), fi.ModTime().UTC().Format(time.RFC3339), f.MaxAge)
		}
		return oc.with("age_seconds", age.Seconds())
	}
}
