package posture

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The commands' time limits: nft and iptables-save answer in
// milliseconds; apt's simulation takes a second or two, more on a slow
// disk.
const (
	firewallTimeout = 10 * time.Second
	aptTimeout      = 2 * time.Minute
)

// maxCommandOutput bounds what a command may print (a ruleset of a million
// rules is below it).
const maxCommandOutput = 64 << 20

// lookTool finds an administration program: in PATH, or in /usr/sbin and
// /sbin, which are not in an ordinary user's PATH. The error wraps
// exec.ErrNotFound when it is nowhere.
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
}

// runCommand runs a program under the C locale and returns its standard
// output; a failure carries the start of its standard error.
func runCommand(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr capped
	stdout.max, stderr.max = maxCommandOutput, 2048
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err == nil && stdout.over {
		err = fmt.Errorf("output longer than %d bytes", maxCommandOutput)
	}
	if err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return nil, fmt.Errorf("%w: %s", err, msg)
		}
		return nil, err
	}
	return stdout.Bytes(), nil
}

// capped keeps the first max bytes written to it.
type capped struct {
	bytes.Buffer
	max  int
	over bool
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.Len(); len(p) > room {
		c.over = true
		if room > 0 {
			c.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return c.Buffer.Write(p)
}

// hostNFT lists this host's running ruleset.
func hostNFT(ctx context.Context) ([]byte, error) {
	p, err := lookTool("nft")
	if err != nil {
		return nil, err
	}
	return runCommand(ctx, p, "-j", "list", "ruleset")
}

// hostIPTablesSave prints this host's iptables (v6: ip6tables) rules.
func hostIPTablesSave(ctx context.Context, v6 bool) ([]byte, error) {
	name := "iptables-save"
	if v6 {
		name = "ip6tables-save"
	}
	p, err := lookTool(name)
	if err != nil {
		return nil, err
	}
	return runCommand(ctx, p, "-t", "filter")
}

// hostAptSimulation simulates a dist-upgrade on this host: it reads the
// package lists as they are, changes nothing and needs no lock.
func hostAptSimulation(ctx context.Context) ([]byte, error) {
	return runCommand(ctx, "/usr/bin/apt-get", "--just-print", "dist-upgrade")
}
