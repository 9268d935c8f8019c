package config

import (
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The types below stand in for a future section (the edge guard's sites)
// to show that adding one is a struct with tags plus a validate method:
// lists of mappings, their paths and their validation need no decoder
// change.
type testSite struct {
	Name     string   `yaml:"name"`
	Upstream string   `yaml:"upstream"`
	Limit    Size     `yaml:"limit"`
	Timeout  Duration `yaml:"timeout"`
}

func (s testSite) validate(c *checker) {
	if u, err := url.Parse(s.Upstream); err != nil || u.Scheme == "" || u.Host == "" {
		c.errorf("upstream", "not a URL")
	}
}

type testGuard struct {
	Sites []testSite `yaml:"sites"`
}

type testRoot struct {
	Guard testGuard `yaml:"guard"`
}

func TestDecoderExtendsToNewSections(t *testing.T) {
	in := "guard:\n  sites:\n    - name: a\n      upstream: http://10.0.0.1:8080\n" +
		"    - name: b\n      upstream: nope\n      limit: 10MB\n      timout: 5s\n"
	var root testRoot
	errs := decodeFile("bulwark.yaml", []byte(in), &root)
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	want := []string{
		"bulwark.yaml:6: guard.sites[1].upstream: not a URL",
		`bulwark.yaml:8: guard.sites[1].timout: unknown key (did you mean "timeout"?)`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	wantRoot := testRoot{Guard: testGuard{Sites: []testSite{
		{Name: "a", Upstream: "http://10.0.0.1:8080"},
		{Name: "b", Upstream: "nope", Limit: 10_000_000},
	}}}
	if diff := cmp.Diff(wantRoot, root); diff != "" {
		t.Errorf("decoded value (-want +got):\n%s", diff)
	}
}
