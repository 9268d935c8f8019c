package dump

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/repo/archiver"
)

// CommandStream backs up the standard output of argv as the file name: a
// policy's "command" source (an export tool, a custom dump). As with the
// database dumps, the snapshot is saved only if the program exits 0; its
// stderr is quoted otherwise.
func CommandStream(name string, argv []string, o Options) (archiver.Stream, error) {
	if len(argv) == 0 || argv[0] == "" {
		return archiver.Stream{}, errors.New("command: empty; give the program and its arguments")
	}
	if err := archiver.ValidateStreamName(name); err != nil {
		return archiver.Stream{}, err
	}
	path := argv[0]
	if !strings.Contains(path, "/") {
		var err error
		if path, err = exec.LookPath(argv[0]); err != nil {
			return archiver.Stream{}, fmt.Errorf("command %q: %w", argv[0], err)
		}
	}
	what := "command " + argv[0]
	return archiver.Stream{Name: name, Open: func(ctx context.Context) (io.ReadCloser, error) {
		return startReader(ctx, what, path, argv[1:], o.env(), nil)
	}}, nil
}
