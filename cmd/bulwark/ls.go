package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/tree"
)

// walkTree calls fn for every node below id in path order.
func walkTree(ctx context.Context, r *repo.Repository, id repo.ID, dir string, fn func(path string, n *tree.Node) error) error {
	t, err := r.LoadTree(ctx, id)
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		p := dir + n.Name
		if err := fn(p, n); err != nil {
			return err
		}
		if n.Type == tree.TypeDir && n.Subtree != nil {
			if err := walkTree(ctx, r, repo.ID(*n.Subtree), p+"/", fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// quotePath shows a path on one line: control characters, newlines and
// bytes that are not UTF-8 are escaped as in Go strings.
func quotePath(p string) string {
	q := strconv.Quote(p)
	inner := q[1 : len(q)-1]
	if inner == p {
		return p
	}
	return q
}

func modeString(n *tree.Node) string {
	m := fs.FileMode(n.Mode & 0o777)
	if n.Mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if n.Mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if n.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	switch n.Type {
	case tree.TypeDir:
		m |= fs.ModeDir
	case tree.TypeSymlink:
		m |= fs.ModeSymlink
	case tree.TypeFIFO:
		m |= fs.ModeNamedPipe
	case tree.TypeCharDev:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case tree.TypeBlockDev:
		m |= fs.ModeDevice
	case tree.TypeSocket:
		m |= fs.ModeSocket
	}
	return m.String()
}

type nodeJSON struct {
	Path   string `json:"path"`
	Type   string `json:"type"`
	Mode   string `json:"mode"`
	UID    uint32 `json:"uid"`
	GID    uint32 `json:"gid"`
	User   string `json:"user,omitempty"`
	Group  string `json:"group,omitempty"`
	Size   uint64 `json:"size"`
	MTime  string `json:"mtime"`
	Target string `json:"target,omitempty"`
}

func lsCommand() *Command {
	var (
		f    repoFlags
		long bool
	)
	return &Command{
		Name:    "ls",
		Summary: "list the files in a snapshot",
		Usage:   "bulwark ls --repo DIR SNAPSHOT|latest [PATH-PREFIX] [-l] [--json]",
		Examples: []string{
			"bulwark ls --repo /srv/backup latest",
			"bulwark ls --repo /srv/backup 3f2a9c1e /etc -l",
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.BoolVar(&long, "l", false, "long listing: mode, owner, size, time")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usageError("give a snapshot id (or latest) and optionally a path prefix")
			}
			prefix := ""
			if len(args) == 2 {
				prefix = "/" + strings.Trim(args[1], "/")
			}
			r, err := f.open(ctx, e, true)
			if err != nil {
				return err
			}
			defer r.Close()
			s, err := r.FindSnapshot(ctx, args[0], repo.Filter{})
			if err != nil {
				return err
			}
			enc := json.NewEncoder(e.Stdout)
			return walkTree(ctx, r, s.Tree, "/", func(p string, n *tree.Node) error {
				if prefix != "" && prefix != "/" && p != prefix && !strings.HasPrefix(p, prefix+"/") {
					return nil
				}
				switch {
				case f.asJSON:
					return enc.Encode(nodeJSON{Path: p, Type: string(n.Type), Mode: modeString(n), UID: n.UID, GID: n.GID,
						User: n.User, Group: n.Group, Size: n.Size, MTime: n.ModTime.Format("2006-01-02T15:04:05.999999999Z07:00"), Target: n.Target})
				case long:
					owner := n.User
					if owner == "" {
						owner = strconv.Itoa(int(n.UID))
					}
					group := n.Group
					if group == "" {
						group = strconv.Itoa(int(n.GID))
					}
					line := fmt.Sprintf("%s %8s %8s %12d %s %s", modeString(n), owner, group, n.Size, n.ModTime.Local().Format("2006-01-02 15:04:05"), quotePath(p))
					if n.Type == tree.TypeSymlink {
						line += " -> " + quotePath(n.Target)
					}
					_, err := fmt.Fprintln(e.Stdout, line)
					return err
				default:
					_, err := fmt.Fprintln(e.Stdout, quotePath(p))
					return err
				}
			})
		},
	}
}

func catCommand() *Command {
	var f repoFlags
	return &Command{
		Name:    "cat",
		Summary: "print a repository object: config, snapshot, tree, blob, file or key",
		Usage:   "bulwark cat --repo DIR config|snapshot ID|tree ID|blob ID|file SNAPSHOT PATH|key ID",
		Long: `For inspection and debugging. 'file' writes a file's content from a snapshot
to standard output; the others print decrypted JSON.`,
		Examples: []string{
			"bulwark cat --repo /srv/backup config",
			"bulwark cat --repo /srv/backup snapshot latest",
			"bulwark cat --repo /srv/backup file latest /etc/hosts",
		},
		Flags: func(fs *flag.FlagSet) { f.register(fs) },
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) == 0 {
				return usageError("say what to print: config, snapshot ID, tree ID, blob ID, file SNAPSHOT PATH or key ID")
			}
			want := map[string]int{"config": 1, "snapshot": 2, "tree": 2, "blob": 2, "file": 3, "key": 2}
			n, ok := want[args[0]]
			if !ok {
				return usageError("cat %q: say config, snapshot, tree, blob, file or key", args[0])
			}
			if len(args) != n {
				return usageError("cat %s takes %d argument(s)", args[0], n-1)
			}
			r, err := f.open(ctx, e, args[0] != "config" && args[0] != "key")
			if err != nil {
				return err
			}
			defer r.Close()
			switch args[0] {
			case "config":
				return writeJSON(e.Stdout, r.Config())
			case "key":
				k, err := r.ResolveKey(ctx, args[1])
				if err != nil {
					return err
				}
				return writeJSON(e.Stdout, k)
			case "snapshot":
				s, err := r.FindSnapshot(ctx, args[1], repo.Filter{})
				if err != nil {
					return err
				}
				return writeJSON(e.Stdout, s)
			case "tree", "blob":
				id, err := repo.ParseID(args[1])
				if err != nil {
					return usageError("%v", err)
				}
				t := repo.DataBlob
				if args[0] == "tree" {
					t = repo.TreeBlob
				}
				b, err := r.LoadBlob(ctx, t, id, nil)
				if err != nil {
					return err
				}
				_, err = e.Stdout.Write(b)
				return err
			default: // file
				s, err := r.FindSnapshot(ctx, args[1], repo.Filter{})
				if err != nil {
					return err
				}
				want := "/" + strings.Trim(args[2], "/")
				var found *tree.Node
				err = walkTree(ctx, r, s.Tree, "/", func(p string, n *tree.Node) error {
					if p == want {
						found = n
					}
					return nil
				})
				if err != nil {
					return err
				}
				if found == nil || found.Type != tree.TypeFile {
					return fmt.Errorf("%s: no such file in snapshot %s", want, repo.Short(s.ID))
				}
				zero := make([]byte, 64<<10)
				for _, c := range found.Content {
					if c.IsHole() {
						for left := c.Hole; left > 0; {
							k := min(left, uint64(len(zero)))
							if _, err := e.Stdout.Write(zero[:k]); err != nil {
								return err
							}
							left -= k
						}
						continue
					}
					b, err := r.LoadBlob(ctx, repo.DataBlob, repo.ID(c.ID), nil)
					if err != nil {
						return err
					}
					if _, err := e.Stdout.Write(b); err != nil {
						return err
					}
				}
				return nil
			}
		},
	}
}

func diffCommand() *Command {
	var f repoFlags
	return &Command{
		Name:     "diff",
		Summary:  "show what changed between two snapshots",
		Usage:    "bulwark diff --repo DIR SNAPSHOT1 SNAPSHOT2 [--json]",
		Long:     `Lines start with + (added), - (removed), M (content changed) or U (metadata only changed).`,
		Examples: []string{"bulwark diff --repo /srv/backup 3f2a9c1e 7b0d4411", "bulwark diff --repo /srv/backup 3f2a9c1e latest --json"},
		Flags:    func(fs *flag.FlagSet) { f.register(fs) },
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) != 2 {
				return usageError("give two snapshot ids")
			}
			r, err := f.open(ctx, e, true)
			if err != nil {
				return err
			}
			defer r.Close()
			var snaps [2]*repo.Snapshot
			for i := range snaps {
				if snaps[i], err = r.FindSnapshot(ctx, args[i], repo.Filter{}); err != nil {
					return err
				}
			}
			var nodes [2]map[string]*tree.Node
			var order []string
			for i, s := range snaps {
				nodes[i] = map[string]*tree.Node{}
				err := walkTree(ctx, r, s.Tree, "/", func(p string, n *tree.Node) error {
					nodes[i][p] = n
					if i == 0 || nodes[0][p] == nil {
						order = append(order, p)
					}
					return nil
				})
				if err != nil {
					return err
				}
			}
			type change struct {
				Op   string `json:"op"`
				Path string `json:"path"`
			}
			var changes []change
			sort.Strings(order)
			for _, p := range order {
				a, b := nodes[0][p], nodes[1][p]
				switch {
				case a == nil:
					changes = append(changes, change{"+", p})
				case b == nil:
					changes = append(changes, change{"-", p})
				case a.Type != b.Type || !sameContent(a, b):
					changes = append(changes, change{"M", p})
				case a.Mode != b.Mode || a.UID != b.UID || a.GID != b.GID || !a.ModTime.Equal(b.ModTime) || a.Target != b.Target:
					changes = append(changes, change{"U", p})
				}
			}
			if f.asJSON {
				if changes == nil {
					changes = []change{}
				}
				return writeJSON(e.Stdout, changes)
			}
			for _, c := range changes {
				fmt.Fprintf(e.Stdout, "%s  %s\n", c.Op, quotePath(c.Path))
			}
			return nil
		},
	}
}

func sameContent(a, b *tree.Node) bool {
	if a.Type == tree.TypeDir {
		return true
	}
	if len(a.Content) != len(b.Content) || a.Size != b.Size {
		return false
	}
	for i := range a.Content {
		if a.Content[i] != b.Content[i] {
			return false
		}
	}
	return true
}
