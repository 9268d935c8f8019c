// Command bulwark is the Bulwark control plane and its command-line client.
// This package only parses flags and wires capabilities together; each
// command group lives in its own file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"runtime/trace"
	"sort"
	"strings"
	"syscall"

	"github.com/bulwarkhq/bulwark/internal/guard/rules"
)

// Command is one command or command group.
type Command struct {
	Name     string
	Summary  string
	Usage    string
	Long     string
	Examples []string
	// Flags declares the command's flags on fs.
	Flags func(fs *flag.FlagSet)
	// Run executes the command with its parsed flag set and arguments.
	Run  func(ctx context.Context, e *Env, fs *flag.FlagSet, args []string) error
	Subs []*Command
}

// Env is what commands use to reach the outside world.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// Path is the command path, e.g. "bulwark user add".
	Path string
}

// ExitError carries a specific exit status: 1 for "the check found a
// problem", 2 for usage and runtime errors.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// usageError reports bad command-line input.
func usageError(format string, args ...any) error {
	return &ExitError{Code: 2, Err: fmt.Errorf(format, args...)}
}

// root returns the command tree. Each group is defined in its own file.
func root() *Command {
	return &Command{
		Name:    "bulwark",
		Summary: "security and business continuity for hosting providers, in one program",
		Usage:   "bulwark COMMAND [FLAGS] [ARGS]",
		Long: `Bulwark runs a control plane with accounts, two-factor login, role-based access
and a tamper-evident audit log, and is its own command-line client.

Start it with 'bulwark up'; manage it with 'bulwark login' then the other commands.`,
		Subs: []*Command{
			upCommand(), loginCommand(), logoutCommand(), meCommand(),
			userCommand(), roleCommand(), grantCommand(), tokenCommand(),
			auditCommand(), eventsCommand(), configCommand(), recoverCommand(),
			repoCommand(), backupCommand(), snapshotsCommand(), restoreCommand(), lsCommand(), diffCommand(),
			catCommand(), forgetCommand(), copyCommand(), vaultCommand(), policyCommand(), restoreTestCommand(), drpCommand(),
			guardCommand(), banCommand(), listCommand(rules.Allow), listCommand(rules.Deny), shapeCommand(), integrityCommand(),
			monitorCommand(), alertCommand(), statusCommand(), postureCommand(),
			reportCommand(),
			versionCommand(), completionCommand(),
		},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	// Profiles of the command, for 'go tool pprof' (both may be asked for
	// at once): BULWARK_CPUPROFILE=FILE, where a slow backup or restore
	// spends its time; BULWARK_HEAPPROFILE=FILE, the heap at the command's
	// largest live heap, where a backup's memory goes; BULWARK_TRACE=FILE,
	// an execution trace ('go tool trace'), where the pipeline waits and
	// cores idle.
	var stops []func()
	if p := os.Getenv("BULWARK_CPUPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil && pprof.StartCPUProfile(f) == nil {
			stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
		}
	}
	if p := os.Getenv("BULWARK_TRACE"); p != "" {
		if f, err := os.Create(p); err == nil && trace.Start(f) == nil {
			stops = append(stops, func() { trace.Stop(); f.Close() })
		}
	}
	if p := os.Getenv("BULWARK_HEAPPROFILE"); p != "" {
		stopHeap := peakHeapProfile(p)
		stops = append(stops, func() { stopHeap() })
	}
	code := run(ctx, e, os.Args[1:])
	for _, s := range stops {
		s()
	}
	os.Exit(code)
}

// run executes args and returns the exit status.
func run(ctx context.Context, e *Env, args []string) int {
	err := dispatch(ctx, e, root(), args, "bulwark")
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Err != nil {
			fmt.Fprintf(e.Stderr, "bulwark: %v\n", ee.Err)
		}
		return ee.Code
	}
	fmt.Fprintf(e.Stderr, "bulwark: %v\n", err)
	return 2
}

func dispatch(ctx context.Context, e *Env, c *Command, args []string, path string) error {
	if len(c.Subs) > 0 {
		if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			if len(args) > 1 && args[0] == "help" {
				if sub := c.find(args[1]); sub != nil {
					return dispatch(ctx, e, sub, append(args[2:], "--help"), path+" "+sub.Name)
				}
			}
			printHelp(e.Stdout, c, path)
			if len(args) == 0 {
				return &ExitError{Code: 2}
			}
			return nil
		}
		sub := c.find(args[0])
		if sub == nil {
			return usageError("unknown command %q for %q%s; run '%s --help'", args[0], path, suggest(args[0], c), path)
		}
		return dispatch(ctx, e, sub, args[1:], path+" "+sub.Name)
	}
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if c.Flags != nil {
		c.Flags(fs)
	}
	if err := fs.Parse(interleave(fs, args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(e.Stdout, c, path)
			return nil
		}
		return usageError("%v (run '%s --help')", err, path)
	}
	e.Path = path
	return c.Run(ctx, e, fs, fs.Args())
}

// interleave lets flags follow positional arguments ("user add bob --role x")
// by moving flags first.
func interleave(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if strings.Contains(name, "=") {
				continue
			}
			if f := fs.Lookup(name); f != nil {
				if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
					continue
				}
				if i+1 < len(args) {
					flags = append(flags, args[i+1])
					i++
				}
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}

func (c *Command) find(name string) *Command {
	for _, s := range c.Subs {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func suggest(name string, c *Command) string {
	for _, s := range c.Subs {
		if strings.HasPrefix(s.Name, name) || strings.HasPrefix(name, s.Name) {
			return fmt.Sprintf(" (did you mean %q?)", s.Name)
		}
	}
	return ""
}

func printHelp(w io.Writer, c *Command, path string) {
	fmt.Fprintf(w, "%s: %s\n\n", path, c.Summary)
	if c.Usage != "" {
		fmt.Fprintf(w, "Usage:\n  %s\n\n", c.Usage)
	}
	if c.Long != "" {
		fmt.Fprintf(w, "%s\n\n", c.Long)
	}
	if len(c.Subs) > 0 {
		fmt.Fprintf(w, "Commands:\n")
		subs := append([]*Command(nil), c.Subs...)
		if path != "bulwark" {
			sort.Slice(subs, func(i, j int) bool { return subs[i].Name < subs[j].Name })
		}
		for _, s := range subs {
			fmt.Fprintf(w, "  %-12s %s\n", s.Name, s.Summary)
		}
		fmt.Fprintf(w, "\nRun '%s COMMAND --help' for a command's flags and examples.\n", path)
		return
	}
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	if c.Flags != nil {
		c.Flags(fs)
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintf(w, "Flags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fmt.Fprintln(w)
	}
	if len(c.Examples) > 0 {
		fmt.Fprintf(w, "Examples:\n")
		for _, ex := range c.Examples {
			fmt.Fprintf(w, "  %s\n", ex)
		}
	}
}
