package local

import (
	"io"
	"io/fs"
	"syscall"
)

// fdFile is a file opened for load with raw system calls: open, fstat,
// pread, close. os.Open adds five more per file (four fcntl and a failed
// epoll_ctl registering a regular file with the poller), and a backup
// with a parent loads one tree blob per directory, each from its own
// open: 3,100 directories on the benchmark corpus.
type fdFile int

func openRange(path string) (rangeFile, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: path, Err: err}
		}
		return fdFile(fd), nil
	}
}

func (f fdFile) stat() (size int64, regular bool, err error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f), &st); err != nil {
		return 0, false, err
	}
	return st.Size, st.Mode&syscall.S_IFMT == syscall.S_IFREG, nil
}

// ReadAt fills p from offset off, as io.ReaderAt.
func (f fdFile) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		m, err := syscall.Pread(int(f), p[n:], off+int64(n))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			return n, io.EOF
		}
		n += m
	}
	return n, nil
}

func (f fdFile) Close() error { return syscall.Close(int(f)) }
