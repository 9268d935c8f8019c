package integrity

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// watchMask is what watch asks the kernel to report for a directory: every
// change to an entry's content, metadata or name, and the directory's own
// deletion or move. Symlinks are not followed, and events of entries
// already unlinked but still open are not reported.
const watchMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MODIFY | unix.IN_ATTRIB | unix.IN_CLOSE_WRITE |
	unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF |
	unix.IN_ONLYDIR | unix.IN_DONT_FOLLOW | unix.IN_EXCL_UNLINK

// inotify is one inotify instance read through the runtime's poller, so a
// read blocks a goroutine, not a thread, and closing the file ends it.
type inotify struct {
	f  *os.File
	fd int // for inotify_add_watch and inotify_rm_watch (f.Fd would make f blocking)
}

func newInotify() (*inotify, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify_init1: %w", err)
	}
	return &inotify{f: os.NewFile(uintptr(fd), "inotify"), fd: fd}, nil
}

// errWatchLimit is returned by add when the user's inotify watches are
// used up (fs.inotify.max_user_watches).
var errWatchLimit = errors.New("the inotify watch limit is reached (raise fs.inotify.max_user_watches with sysctl)")

func (in *inotify) add(path string) (int, error) {
	wd, err := unix.InotifyAddWatch(in.fd, path, watchMask)
	if errors.Is(err, unix.ENOSPC) {
		return -1, errWatchLimit
	}
	return wd, err
}

func (in *inotify) remove(wd int) { _, _ = unix.InotifyRmWatch(in.fd, uint32(wd)) }

func (in *inotify) read(buf []byte) (int, error) { return in.f.Read(buf) }

func (in *inotify) close() error { return in.f.Close() }

// rawEvent is one inotify event.
type rawEvent struct {
	wd     int
	mask   uint32
	cookie uint32
	name   string // empty for an event of the watched directory itself
}

// parseEvents decodes what one read of an inotify descriptor returned:
// records of struct inotify_event (wd, mask, cookie, len, all 32-bit in
// the host's order) each followed by len bytes of NUL-padded name. A
// truncated record is an error; nothing of it is returned.
func parseEvents(out []rawEvent, b []byte) ([]rawEvent, error) {
	const header = unix.SizeofInotifyEvent
	for len(b) > 0 {
		if len(b) < header {
			return out, fmt.Errorf("inotify: %d bytes left, short of an event header", len(b))
		}
		n := binary.NativeEndian.Uint32(b[12:16])
		if uint64(n) > uint64(len(b)-header) {
			return out, fmt.Errorf("inotify: an event's name of %d bytes overruns the %d bytes read", n, len(b)-header)
		}
		name := b[header : header+int(n)]
		for len(name) > 0 && name[len(name)-1] == 0 {
			name = name[:len(name)-1]
		}
		out = append(out, rawEvent{
			wd:     int(int32(binary.NativeEndian.Uint32(b[0:4]))),
			mask:   binary.NativeEndian.Uint32(b[4:8]),
			cookie: binary.NativeEndian.Uint32(b[8:12]),
			name:   string(name),
		})
		b = b[header+int(n):]
	}
	return out, nil
}
