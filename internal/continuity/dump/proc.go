package dump

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// ErrToolMissing is wrapped by the error of an operation whose client
// program is not installed.
var ErrToolMissing = errors.New("database client program not found")

// Options are shared by dumps and restores.
type Options struct {
	// Path is the list of directories searched for the client programs,
	// in $PATH syntax. Empty: the process's $PATH.
	Path string
	// Env is the environment given to the client programs, before the
	// connection variables Bulwark adds. Nil: the process's environment.
	Env []string
}

func (o Options) env() []string {
	if o.Env != nil {
		return append([]string(nil), o.Env...)
	}
	return os.Environ()
}

// lookTool finds the first of names on o.Path (or $PATH). pkg names the
// Debian package that provides them, for the error.
func (o Options) lookTool(pkg string, names ...string) (string, error) {
	path := o.Path
	if path == "" {
		path = os.Getenv("PATH")
	}
	for _, name := range names {
		for _, dir := range filepath.SplitList(path) {
			if dir == "" {
				continue
			}
			p := filepath.Join(dir, name)
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("%w: %s is not on PATH; install it (Debian: apt-get install %s)", ErrToolMissing, strings.Join(names, " or "), pkg)
}

// tail keeps the last bytes written to it: a process's stderr, for the
// error when it fails.
type tail struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

// exitError describes a failed process with the tail of its stderr.
func exitError(what string, err error, stderr *tail) error {
	msg := stderr.String()
	if msg == "" {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w: %s", what, err, msg)
}

// newCmd builds a command whose stderr is captured. Killing on ctx sends
// SIGTERM first so the tool can tidy up (pg_restore aborts its
// transaction), then SIGKILL.
func newCmd(ctx context.Context, path string, args, env []string) (*exec.Cmd, *tail) {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = env
	errTail := &tail{max: 4 << 10}
	cmd.Stderr = errTail
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10e9 // 10 s
	return cmd, errTail
}

// procReader streams a process's standard output. Close waits for the
// process; it returns an error naming the program and quoting its stderr
// if it did not exit 0, so a dump that failed half-way can never look
// complete. Closing before EOF kills the process.
type procReader struct {
	what   string
	cmd    *exec.Cmd
	out    io.ReadCloser
	stderr *tail
	eof    bool
	done   func() // cleanup after the process ended (temp files)
	closed bool
}

func startReader(ctx context.Context, what, path string, args, env []string, done func()) (*procReader, error) {
	cmd, errTail := newCmd(ctx, path, args, env)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return &procReader{what: what, cmd: cmd, out: out, stderr: errTail, done: done}, nil
}

func (p *procReader) Read(b []byte) (int, error) {
	n, err := p.out.Read(b)
	if err == io.EOF {
		p.eof = true
	}
	return n, err
}

func (p *procReader) Close() error {
	if p.closed {
		return nil
	}
	p.closed = true
	if p.done != nil {
		defer p.done()
	}
	if !p.eof {
		_ = p.cmd.Process.Kill()
	}
	err := p.cmd.Wait()
	if !p.eof {
		return fmt.Errorf("%s: stopped before the end of its output", p.what)
	}
	if err != nil {
		return exitError(p.what, err, p.stderr)
	}
	return nil
}

// feed runs a program with r as its standard input and waits for it. The
// copy and the process are both checked: a failed read of r kills the
// program and is reported, as is a non-zero exit.
func feed(ctx context.Context, what, path string, args, env []string, r io.Reader) error {
	cmd, errTail := newCmd(ctx, path, args, env)
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	_, copyErr := io.Copy(in, r)
	var readErr error
	if copyErr != nil && !errors.Is(copyErr, syscall.EPIPE) {
		// Reading the repository failed: the program must not commit
		// what it got so far.
		readErr = copyErr
		_ = cmd.Process.Kill()
	}
	closeErr := in.Close()
	waitErr := cmd.Wait()
	switch {
	case readErr != nil:
		return fmt.Errorf("%s: reading the dump from the repository: %w", what, readErr)
	case waitErr != nil:
		return exitError(what, waitErr, errTail)
	case copyErr != nil:
		return fmt.Errorf("%s: exited before reading the whole dump: %w", what, copyErr)
	case closeErr != nil && !errors.Is(closeErr, os.ErrClosed):
		return fmt.Errorf("%s: %w", what, closeErr)
	}
	return nil
}

// output runs a program and returns its standard output.
func output(ctx context.Context, what, path string, args, env []string) (string, error) {
	cmd, errTail := newCmd(ctx, path, args, env)
	out, err := cmd.Output()
	if err != nil {
		return "", exitError(what, err, errTail)
	}
	return string(out), nil
}
