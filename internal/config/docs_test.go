package config

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const (
	examplePath = "../../docs/bulwark.example.yaml"
	docPath     = "../../docs/config.md"
)

// configPaths lists the dotted path of every setting reachable from
// Config, sections included, by reflection, so that the documentation
// tests below follow the struct as it grows.
func configPaths() (sections, leaves []string) {
	var walk func(t reflect.Type, path string)
	walk = func(t reflect.Type, path string) {
		for i := range t.NumField() {
			name, ok := yamlName(t.Field(i))
			if !ok {
				continue
			}
			p := joinPath(path, name)
			ft := t.Field(i).Type
			if ft.Kind() == reflect.Struct && !reflect.PointerTo(ft).Implements(nodeDecoderType) {
				sections = append(sections, p)
				walk(ft, p)
				continue
			}
			leaves = append(leaves, p)
		}
	}
	walk(reflect.TypeFor[Config](), "")
	return sections, leaves
}

// mappingPaths lists the dotted key paths present in a YAML node tree.
func mappingPaths(n *yaml.Node, path string, out map[string]bool) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			mappingPaths(c, path, out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := joinPath(path, n.Content[i].Value)
			out[p] = true
			mappingPaths(n.Content[i+1], p, out)
		}
	}
}

// TestExampleConfig keeps docs/bulwark.example.yaml honest: it must be
// valid, and set every key of Config.
func TestExampleConfig(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse("bulwark.example.yaml", data)
	if err != nil {
		t.Fatalf("the example does not validate:\n%v", err)
	}
	if got := cfg.LiteralSecrets(); len(got) != 0 {
		t.Errorf("the example writes secrets literally at %q; use {env: NAME} or {file: /path}", got)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	present := map[string]bool{}
	mappingPaths(&doc, "", present)
	sections, leaves := configPaths()
	for _, p := range append(sections, leaves...) {
		if !present[p] {
			t.Errorf("docs/bulwark.example.yaml does not set %s; add it with a comment", p)
		}
	}
	if len(leaves) < 30 {
		t.Errorf("found only %d settings by reflection; the walk is broken", len(leaves))
	}
}

// TestExampleShowsDefaults checks that the example's values equal the
// defaults, except the keys it marks "(example)" in a comment.
func TestExampleShowsDefaults(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	// The sections marked "(example)": their values are illustrations.
	changed := map[string]bool{"data_dir": true, "tls": true, "store": true, "require_2fa_roles": true, "audit.anchor": true, "bootstrap": true, "api.trusted_proxies": true,
		"continuity.repositories": true, "continuity.policies": true, "guard.listen": true, "guard.sites": true,
		"detect.logs": true, "detect.parsers": true, "detect.scenarios": true, "integrity.rules": true,
		"monitor.checks": true, "alerts.channels": true, "alerts.rules": true,
		"status.pages": true, "status.publish": true}
	cfg, err := Parse("e.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir, cfg.TLS, cfg.Store, cfg.Auth.Require2FARoles, cfg.Audit.Anchor, cfg.Bootstrap = "", TLS{}, Default().Store, nil, "", Bootstrap{}
	cfg.API.TrustedProxies = Default().API.TrustedProxies
	cfg.Continuity = Default().Continuity
	cfg.Guard.Listen, cfg.Guard.ListenTLS, cfg.Guard.Sites = "", "", nil
	cfg.Detect.Logs, cfg.Detect.Parsers, cfg.Detect.Scenarios = nil, nil, nil
	cfg.Integrity.Rules = nil
	cfg.Monitor.Checks, cfg.Alerts.Channels, cfg.Alerts.Rules = nil, nil, nil
	cfg.Status.Pages, cfg.Status.Publish = nil, nil
	for _, l := range []*[]string{&cfg.Guard.TrustedProxies, &cfg.Guard.Allow, &cfg.Guard.Deny, &cfg.Detect.Disable, &cfg.Integrity.Exclude, &cfg.Monitor.Processes, &cfg.Alerts.Watchdog.Channels} {
		if len(*l) == 0 {
			*l = nil // "[]" in the example, the same as unset
		}
	}
	if !reflect.DeepEqual(cfg, Default()) {
		t.Errorf("the example's values differ from Default() outside the (example) keys %v:\n got %+v\nwant %+v", changed, cfg, Default())
	}
	if n := strings.Count(string(data), "(example)"); n != len(changed) {
		t.Errorf("the example marks %d keys (example), want %d (update this test with the keys it changes)", n, len(changed))
	}
}

// TestConfigDoc checks docs/config.md documents every setting and that
// each YAML snippet in it is valid.
func TestConfigDoc(t *testing.T) {
	data, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	_, leaves := configPaths()
	for _, p := range leaves {
		if !strings.Contains(doc, "| `"+p+"` |") {
			t.Errorf("docs/config.md has no table row for `%s`", p)
		}
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(doc, -1)
	if len(blocks) < 2 {
		t.Fatalf("found %d yaml snippets in docs/config.md, want at least 2", len(blocks))
	}
	for i, b := range blocks {
		if _, err := Parse("config.md snippet", []byte(b[1])); err != nil {
			t.Errorf("snippet %d in docs/config.md is invalid:\n%v", i+1, err)
		}
	}
}
