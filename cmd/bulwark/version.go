package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

// buildInfo reports the version, the VCS commit and the Go version.
func buildInfo() (ver, commit, goVersion string) {
	ver, commit, goVersion = version, "unknown", runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					commit += "-dirty"
				}
			}
		}
		if ver == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			ver = bi.Main.Version
		}
	}
	return ver, commit, goVersion
}

func versionCommand() *Command {
	var asJSON bool
	return &Command{
		Name:     "version",
		Summary:  "print the version, commit and Go version",
		Usage:    "bulwark version [--json]",
		Examples: []string{"bulwark version", "bulwark version --json"},
		Flags:    func(fs *flag.FlagSet) { fs.BoolVar(&asJSON, "json", false, "print JSON") },
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			v, c, g := buildInfo()
			if asJSON {
				return json.NewEncoder(e.Stdout).Encode(map[string]string{"version": v, "commit": c, "go": g})
			}
			fmt.Fprintf(e.Stdout, "bulwark %s\ncommit  %s\ngo      %s\n", v, c, g)
			return nil
		},
	}
}
