package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/local"
)

// repoFlags locate a repository and its password; every repository command
// registers them.
type repoFlags struct {
	repo, passwordFile, cacheDir string
	noCache, asJSON              bool
	lockWait                     time.Duration
	transport                    transportFlags
}

// transportFlags reach a remote repository (vault over HTTPS, S3).
type transportFlags struct {
	cacert   string // PEM file of certificates to trust (default $BULWARK_CACERT)
	insecure bool   // allow plain http://, only to a loopback address
}

func (t *transportFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.cacert, "cacert", "", "trust the certificates in PEM `FILE` for a vault or S3 repository (default $BULWARK_CACERT)")
	fs.BoolVar(&t.insecure, "insecure", false, "allow plain http:// to a vault or S3 server on a loopback address (never elsewhere)")
}

// caFile is --cacert or $BULWARK_CACERT.
func (t *transportFlags) caFile(e *Env) string {
	if t.cacert != "" {
		return t.cacert
	}
	return e.Getenv("BULWARK_CACERT")
}

func (f *repoFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.repo, "repo", "", "repository `LOCATION`: a directory, https://HOST:PORT/NAME (a vault) or s3:https://HOST:PORT/BUCKET/PREFIX (default $BULWARK_REPO)")
	fs.StringVar(&f.passwordFile, "password-file", "", "read the repository password from `FILE` (default $BULWARK_PASSWORD, or $BULWARK_PASSWORD_FILE)")
	fs.StringVar(&f.cacheDir, "cache-dir", "", "local cache `DIR` (default $BULWARK_CACHE_DIR, $XDG_CACHE_HOME/bulwark or ~/.cache/bulwark)")
	fs.BoolVar(&f.noCache, "no-cache", false, "use no local cache")
	fs.BoolVar(&f.asJSON, "json", false, "print JSON instead of text")
	fs.DurationVar(&f.lockWait, "lock-wait", 0, "wait up to `DURATION` for a conflicting lock to be released")
	f.transport.register(fs)
}

func (f *repoFlags) location(e *Env) (string, error) {
	loc := f.repo
	if loc == "" {
		loc = e.Getenv("BULWARK_REPO")
	}
	if loc == "" {
		return "", usageError("no repository: give --repo LOCATION or set BULWARK_REPO")
	}
	return loc, nil
}

// password reads the password from --password-file, $BULWARK_PASSWORD or
// $BULWARK_PASSWORD_FILE. A trailing newline in a file is not part of it.
func (f *repoFlags) password(e *Env) ([]byte, error) {
	return readPassword(e, f.passwordFile, "BULWARK_PASSWORD", "--password-file")
}

func readPassword(e *Env, file, envName, flagName string) ([]byte, error) {
	if file == "" {
		if p := e.Getenv(envName); p != "" {
			return []byte(p), nil
		}
		file = e.Getenv(envName + "_FILE")
	}
	if file == "" {
		return nil, usageError("no password: set %s or give %s FILE", envName, flagName)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, usageError("%s: %v", flagName, err)
	}
	p := strings.TrimRight(string(b), "\r\n")
	if p == "" {
		return nil, usageError("%s %s: the file is empty", flagName, file)
	}
	return []byte(p), nil
}

// cache is the cache directory: --no-cache, --cache-dir, $BULWARK_CACHE_DIR,
// $XDG_CACHE_HOME/bulwark, ~/.cache/bulwark.
func (f *repoFlags) cache(e *Env) string {
	switch {
	case f.noCache:
		return "-"
	case f.cacheDir != "":
		return f.cacheDir
	case e.Getenv("BULWARK_CACHE_DIR") != "":
		return e.Getenv("BULWARK_CACHE_DIR")
	case e.Getenv("XDG_CACHE_HOME") != "":
		return filepath.Join(e.Getenv("XDG_CACHE_HOME"), "bulwark")
	case e.Getenv("HOME") != "":
		return filepath.Join(e.Getenv("HOME"), ".cache", "bulwark")
	}
	return "-"
}

// openBackend opens the storage at loc: s3:URL (openS3), http(s)://
// (a vault, openVault), else a local directory (optionally "local:DIR").
func openBackend(ctx context.Context, e *Env, t *transportFlags, loc string, create bool) (backend.Backend, error) {
	switch {
	case strings.HasPrefix(loc, "s3:"):
		return openS3(ctx, e, t, loc, create)
	case strings.HasPrefix(loc, "https://"), strings.HasPrefix(loc, "http://"):
		return openVault(ctx, e, t, loc, create)
	}
	dir := strings.TrimPrefix(loc, "local:")
	if strings.Contains(dir, "://") {
		return nil, usageError("repository %q: unknown scheme (use a directory, https://HOST:PORT/NAME or s3:https://HOST/BUCKET/PREFIX)", loc)
	}
	if create {
		return local.Create(dir)
	}
	be, err := local.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", dir, err)
	}
	return be, nil
}

// openRepo opens the repository at loc with password pw (wrong password:
// exit status 3, the message starting with what, e.g. "repository"), and
// gives the key derivation's 64 MiB back to the OS before the real work
// starts, so they do not add to the peak.
func openRepo(ctx context.Context, e *Env, t *transportFlags, loc string, pw []byte, cache, what string) (*repo.Repository, error) {
	be, err := openBackend(ctx, e, t, loc, false)
	if err != nil {
		return nil, err
	}
	r, err := repo.Open(ctx, be, pw, repo.OpenOptions{CacheDir: cache})
	if err != nil {
		be.Close()
		if errors.Is(err, repo.ErrNoKey) {
			return nil, &ExitError{Code: 3, Err: fmt.Errorf("%s %s: %w", what, loc, err)}
		}
		return nil, err
	}
	debug.FreeOSMemory()
	return r, nil
}

// open opens the repository and, when index is set, loads its index.
func (f *repoFlags) open(ctx context.Context, e *Env, loadIndex bool) (*repo.Repository, error) {
	loc, err := f.location(e)
	if err != nil {
		return nil, err
	}
	pw, err := f.password(e)
	if err != nil {
		return nil, err
	}
	r, err := openRepo(ctx, e, &f.transport, loc, pw, f.cache(e), "repository")
	if err != nil {
		return nil, err
	}
	if loadIndex {
		if err := r.LoadIndex(ctx); err != nil {
			r.Close()
			return nil, err
		}
	}
	setMemoryLimit(e)
	return r, nil
}

// workingSet is the memory a backup or restore needs beyond what is live
// once the repository is open (its index above all): chunk and compression
// buffers, the chunker's buffer, the packs being filled (two of pack_size
// unless they stream into a local directory: internal/repo/packstream.go):
// about 70 MiB at most on the benchmark corpus with packs in memory, 45 MiB
// with packs streamed, measured with BULWARK_HEAPPROFILE. What is not live
// is the collector's headroom.
const workingSet = 80 << 20

// setMemoryLimit sets a soft memory limit of what is live now plus
// workingSet, so that the collector keeps the heap near the working set
// instead of letting it double (GOGC's default), and so that a large index
// raises the limit with it instead of making the collector run without
// pause. It collects once first: the key derivation's 64 MiB are garbage by
// now. The C encoder's contexts (internal/repo/pack/compress_cgo.go) are
// outside the limit. GOMEMLIMIT, when set, wins.
func setMemoryLimit(e *Env) {
	if e.Getenv("GOMEMLIMIT") != "" {
		return
	}
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	debug.SetMemoryLimit(int64(m.HeapAlloc) + workingSet)
}

// collectAtLimit turns GOGC's proportional goal off for a backup (unless
// GOGC or GOMEMLIMIT is set): the collector then runs when the heap
// reaches the memory limit, not whenever it doubles. A first backup's heap
// reaches the limit anyway (peak RSS the same either way, about 120 MB on
// the benchmark corpus), but an unchanged re-run, whose live heap is a few
// MiB, collected 10 times for nothing: 50 ms of its 550 ms of CPU (median
// of 16 alternating runs). A restore is left alone: its heap stays under
// the limit, and would grow to it (peak 106 -> 124 MB).
func collectAtLimit(e *Env) {
	if e.Getenv("GOGC") == "" && e.Getenv("GOMEMLIMIT") == "" {
		debug.SetGCPercent(-1)
	}
}

// openFull is open for commands that read or delete existing data: a
// write-only key gets a clear refusal naming the command.
func (f *repoFlags) openFull(ctx context.Context, e *Env, loadIndex bool) (*repo.Repository, error) {
	r, err := f.open(ctx, e, loadIndex)
	if err != nil {
		return nil, err
	}
	if !r.CanRead() {
		r.Close()
		return nil, fmt.Errorf("%s needs a full key: this is a write-only key, which can add snapshots but never read or delete data", e.Path)
	}
	return r, nil
}

// report prints v as JSON with --json, else calls text.
func (f *repoFlags) report(e *Env, v any, text func()) error {
	if f.asJSON {
		return writeJSON(e.Stdout, v)
	}
	text()
	return nil
}

func (f *repoFlags) lock(ctx context.Context, r *repo.Repository, exclusive bool) (*repo.Lock, error) {
	return r.Lock(ctx, exclusive, f.lockWait)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
