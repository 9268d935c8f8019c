package fsmeta

import (
	"errors"
	"slices"

	"golang.org/x/sys/unix"
)

// Llistxattrs returns the sorted attribute names of path, not following a
// symlink.
func Llistxattrs(path string) ([]string, error) {
	return XattrNames(func(dest []byte) (int, error) { return unix.Llistxattr(path, dest) })
}

// XattrNames returns the sorted attribute names that list (llistxattr
// or flistxattr) reports, retrying when they grow between its two calls.
func XattrNames(list func(dest []byte) (int, error)) ([]string, error) {
	for {
		size, err := list(nil)
		if err != nil || size == 0 {
			return nil, err
		}
		buf := make([]byte, size)
		size, err = list(buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var names []string
		for _, b := range splitNUL(buf[:size]) {
			names = append(names, string(b))
		}
		slices.Sort(names)
		return slices.Compact(names), nil
	}
}

func splitNUL(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != 0 {
			i++
		}
		if i > 0 {
			out = append(out, b[:i])
		}
		if i == len(b) {
			break
		}
		b = b[i+1:]
	}
	return out
}

// Lgetxattr returns the value of path's attribute name (not following a
// symlink), retrying while the value grows between its two calls.
func Lgetxattr(path, name string) ([]byte, error) {
	for {
		size, err := unix.Lgetxattr(path, name, nil)
		if err != nil {
			return nil, err
		}
		buf := make([]byte, size)
		if size == 0 {
			return buf, nil
		}
		size, err = unix.Lgetxattr(path, name, buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:size], nil
	}
}
