package vault

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/repo/backend"
)

func TestParsePath(t *testing.T) {
	id := strings.Repeat("ab", 32)
	tests := []struct {
		in   string
		want Route
		ok   bool
	}{
		{"/web", Route{Kind: KindRepo, Repo: "web"}, true},
		{"/web/config", Route{Kind: KindObject, Repo: "web", Handle: backend.Handle{Type: backend.ConfigFile}}, true},
		{"/web/config/", Route{Kind: KindList, Repo: "web", Handle: backend.Handle{Type: backend.ConfigFile}}, true},
		{"/web/data/", Route{Kind: KindList, Repo: "web", Handle: backend.Handle{Type: backend.PackFile}}, true},
		{"/web/data/" + id, Route{Kind: KindObject, Repo: "web", Handle: backend.Handle{Type: backend.PackFile, Name: id}}, true},
		{"/w.e-b_1/keys/notes%20x.txt", Route{Kind: KindObject, Repo: "w.e-b_1", Handle: backend.Handle{Type: backend.KeyFile, Name: "notes x.txt"}}, true},
		{"/web/locks/%C3%A9t%C3%A9", Route{Kind: KindObject, Repo: "web", Handle: backend.Handle{Type: backend.LockFile, Name: "été"}}, true},
		{"", Route{}, false},
		{"web/config", Route{}, false},
		{"/", Route{}, false},
		{"/web/", Route{}, false},
		{"/web/data", Route{}, false},
		{"/web/keys//", Route{}, false},
		{"/web/keys/a/b", Route{}, false},
		{"/web/keys/a%2Fb", Route{}, false},
		{"/web/keys/a%5cb", Route{}, false},
		{"/web/keys/%2e%2e", Route{}, false},
		{"/web/keys/..", Route{}, false},
		{"/web/keys/.x", Route{}, false},
		{"/web/keys/%zz", Route{}, false},
		{"/web/keys/%00", Route{}, false},
		{"/web/keys/%ff", Route{}, false},
		{"/.web/config", Route{}, false},
		{"/-web/config", Route{}, false},
		{"/we%2Fb/config", Route{}, false},
		{"/../web/config", Route{}, false},
		{"/web/Data/" + id, Route{}, false},
		{"/web/data/" + strings.ToUpper(id), Route{}, false},
		{"/web/parity/ab", Route{}, false},
		{"/web/config/x", Route{}, false},
		{"/" + strings.Repeat("a", 65), Route{}, false},
		{"/web/keys/" + strings.Repeat("k", 256), Route{}, false},
		{"/web/keys/" + strings.Repeat("k", 2000), Route{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParsePath(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("ParsePath(%q) = %+v, %v; want ok=%v", tc.in, got, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrBadPath) {
				t.Fatalf("error %v does not match ErrBadPath", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParsePath(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

// FuzzParsePath: whatever the path, a parsed route names a valid repository
// and handle, and ObjectPath/ListPath give a path that parses back to it,
// so no escaping trick reaches an object under another name.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/web", "/web/config", "/web/data/", "/web/keys/a%2Fb", "/web/keys/%2e%2e",
		"/web/data/" + strings.Repeat("0", 64), "/web/locks/%C3%A9", "/../x", "/web/keys/a%00", "//web/config"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		rt, err := ParsePath(in)
		if err != nil {
			if !errors.Is(err, ErrBadPath) {
				t.Fatalf("error %v does not match ErrBadPath", err)
			}
			return
		}
		if !ValidRepoName(rt.Repo) {
			t.Fatalf("ParsePath(%q): invalid repository %q accepted", in, rt.Repo)
		}
		var back string
		switch rt.Kind {
		case KindRepo:
			return
		case KindList:
			if !rt.Handle.Type.Valid() || rt.Handle.Name != "" {
				t.Fatalf("ParsePath(%q): list of %+v", in, rt.Handle)
			}
			back = ListPath(rt.Repo, rt.Handle.Type)
		case KindObject:
			if err := rt.Handle.Validate(); err != nil {
				t.Fatalf("ParsePath(%q): invalid handle accepted: %v", in, err)
			}
			back = ObjectPath(rt.Repo, rt.Handle)
		default:
			t.Fatalf("ParsePath(%q): kind %d", in, rt.Kind)
		}
		rt2, err := ParsePath(back)
		if err != nil || rt2 != rt {
			t.Fatalf("round trip %q -> %+v -> %q -> %+v, %v", in, rt, back, rt2, err)
		}
	})
}
