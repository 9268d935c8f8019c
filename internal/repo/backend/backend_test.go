package backend

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

const testID = "3f2a000000000000000000000000000000000000000000000000000000009abc"

func TestHandleValidate(t *testing.T) {
	tests := []struct {
		h    Handle
		want bool // valid
	}{
		{Handle{ConfigFile, ""}, true},
		{Handle{ConfigFile, "config"}, false},
		{Handle{PackFile, testID}, true},
		{Handle{ParityFile, testID}, true},
		{Handle{PackFile, strings.ToUpper(testID)}, false},
		{Handle{PackFile, testID[:63]}, false},
		{Handle{PackFile, testID + "0"}, false},
		{Handle{PackFile, "README"}, false},
		{Handle{ParityFile, ""}, false},
		{Handle{ParityFile, "g" + testID[1:]}, false},
		{Handle{KeyFile, testID}, true},
		{Handle{IndexFile, "README"}, true},
		{Handle{SnapshotFile, "a..b"}, true},
		{Handle{LockFile, "ünïcode"}, true},
		{Handle{LockFile, strings.Repeat("a", MaxNameLen)}, true},
		{Handle{LockFile, strings.Repeat("a", MaxNameLen+1)}, false},
		{Handle{KeyFile, ""}, false},
		{Handle{KeyFile, "."}, false},
		{Handle{KeyFile, ".."}, false},
		{Handle{KeyFile, ".tmp-1"}, false},
		{Handle{KeyFile, "../x"}, false},
		{Handle{KeyFile, "a/b"}, false},
		{Handle{KeyFile, `a\b`}, false},
		{Handle{KeyFile, "a\x00"}, false},
		{Handle{KeyFile, "a\tb"}, false},
		{Handle{KeyFile, "a\x7f"}, false},
		{Handle{KeyFile, "\xc3"}, false},
		{Handle{"", testID}, false},
		{Handle{"data/00", testID}, false},
		{Handle{"Data", testID}, false},
	}
	for _, tc := range tests {
		err := tc.h.Validate()
		if tc.want && err != nil {
			t.Errorf("Validate(%q) = %v, want nil", tc.h, err)
		}
		if !tc.want && !errors.Is(err, ErrInvalidName) {
			t.Errorf("Validate(%q) = %v, want ErrInvalidName", tc.h, err)
		}
	}
}

func TestHandleString(t *testing.T) {
	tests := []struct {
		h    Handle
		want string
	}{
		{Handle{ConfigFile, ""}, "config"},
		{Handle{PackFile, testID}, "data/" + testID},
		{Handle{ParityFile, testID}, "parity/" + testID},
		{Handle{KeyFile, "k"}, "keys/k"},
		{Handle{SnapshotFile, "s"}, "snapshots/s"},
	}
	for _, tc := range tests {
		if got := tc.h.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.h, got, tc.want)
		}
	}
}

func TestTypes(t *testing.T) {
	types := Types()
	if len(types) != 7 || types[0] != ConfigFile {
		t.Fatalf("Types() = %v, want 7 types starting with config", types)
	}
	seen := map[Type]bool{}
	for _, typ := range types {
		if !typ.Valid() || seen[typ] {
			t.Errorf("Types(): %q invalid or repeated", typ)
		}
		seen[typ] = true
		if got, want := typ.Sharded(), typ == PackFile || typ == ParityFile; got != want {
			t.Errorf("%s.Sharded() = %v, want %v", typ, got, want)
		}
	}
	types[0] = "mutated"
	if Types()[0] != ConfigFile {
		t.Error("Types() returns shared state")
	}
}

func TestSentinels(t *testing.T) {
	tests := []struct {
		err, std error
	}{
		{ErrNotExist, fs.ErrNotExist},
		{ErrExists, fs.ErrExist},
		{ErrForbidden, fs.ErrPermission},
		{ErrInvalidName, fs.ErrInvalid},
	}
	for i, tc := range tests {
		wrapped := errors.Join(errors.New("context"), tc.err)
		if !errors.Is(wrapped, tc.err) || !errors.Is(wrapped, tc.std) {
			t.Errorf("%v: wrapped error does not match itself and %v", tc.err, tc.std)
		}
		for j, other := range tests {
			if i != j && (errors.Is(tc.err, other.err) || errors.Is(tc.err, other.std)) {
				t.Errorf("%v matches %v", tc.err, other.err)
			}
		}
	}
	if errors.Is(fs.ErrNotExist, ErrNotExist) {
		t.Error("fs.ErrNotExist matches ErrNotExist: the relation must be one-way")
	}
}

// FuzzHandleValidate checks that Validate never panics and that every name
// it accepts is safe to use as a path element.
func FuzzHandleValidate(f *testing.F) {
	for _, s := range []string{"", testID, "README", "..", ".tmp-x", "a/b", "\xff", strings.Repeat("a", 300)} {
		for _, typ := range Types() {
			f.Add(string(typ), s)
		}
	}
	f.Add("bogus", "x")
	f.Fuzz(func(t *testing.T, typ, name string) {
		h := Handle{Type(typ), name}
		if err := h.Validate(); err != nil {
			if !errors.Is(err, ErrInvalidName) {
				t.Fatalf("Validate(%q) = %v, not ErrInvalidName", h, err)
			}
			return
		}
		if !h.Type.Valid() {
			t.Fatalf("accepted unknown type %q", typ)
		}
		if h.Type == ConfigFile {
			if name != "" {
				t.Fatalf("accepted config name %q", name)
			}
			return
		}
		if name == "" || name == "." || name == ".." || strings.HasPrefix(name, ".") ||
			strings.ContainsAny(name, "/\\\x00") || len(name) > MaxNameLen {
			t.Fatalf("accepted unsafe name %q", name)
		}
		if h.Type.Sharded() && !IsID(name) {
			t.Fatalf("accepted %s name %q that is not an id", h.Type, name)
		}
	})
}
