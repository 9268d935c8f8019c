package cond

import (
	"errors"
	"strings"
	"testing"
)

func TestJSON(t *testing.T) {
	doc := []byte(`{"status":"ok","version":"1.24.3","count":12,"ratio":0.5,"up":true,"none":null,
		"items":[{"size":3},{"size":7}],"a b":{"c":"d"},"nested":{"list":[1,2,3]}}`)
	tests := []struct {
		cond string
		ok   bool
		why  string // part of the failure message
	}{
		{`$.status == "ok"`, true, ""},
		{`$.status != "ok"`, false, `$.status is "ok", want != "ok"`},
		{`$.status == "degraded"`, false, `$.status is "ok", want == "degraded"`},
		{`$.count > 10`, true, ""},
		{`$.count >= 12`, true, ""},
		{`$.count < 12`, false, "want < 12"},
		{`$.count == 12.0`, true, ""},
		{`$.ratio <= 0.5`, true, ""},
		{`$.up == true`, true, ""},
		{`$.up == "true"`, false, "want =="},
		{`$.none == null`, true, ""},
		{`$.items[1].size == 7`, true, ""},
		{`$.items[-1].size == 7`, true, ""},
		{`$.items[2].size == 7`, false, "$.items has 2 elements"},
		{`$["a b"].c == "d"`, true, ""},
		{`$.nested.list[0] != 2`, true, ""},
		{`$.version =~ "^1\\.2[0-9]\\."`, true, ""},
		{`$.version !~ "^2"`, true, ""},
		{`$.count =~ "^1"`, true, ""},
		{`$.status`, true, ""},
		{`$.missing`, false, `$ has no member "missing"`},
		{`$.status.x == 1`, false, "$.status is not an object"},
		{`$.items.x == 1`, false, "$.items is not an object"},
		{`$.status[0] == 1`, false, "$.status is not an array"},
		{`$.status > "pk"`, false, "want >"},
		{`$.status < "pk"`, true, ""},
		{`$.count > "1"`, false, "want >"},
		{`$.items == 1`, false, "want =="},
		{`$ == 1`, false, "want =="},
	}
	for _, tt := range tests {
		c, err := ParseJSON(tt.cond)
		if err != nil {
			t.Errorf("ParseJSON(%q): %v", tt.cond, err)
			continue
		}
		err = c.Eval(doc)
		if (err == nil) != tt.ok {
			t.Errorf("%s on the document: err %v, want ok=%v", tt.cond, err, tt.ok)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), tt.why) {
			t.Errorf("%s: error %q does not say %q", tt.cond, err, tt.why)
		}
	}
	c, _ := ParseJSON(`$.a == 1`)
	if err := c.Eval([]byte("<html>")); err == nil || !strings.Contains(err.Error(), "not JSON") {
		t.Errorf("a non-JSON body: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, s := range []string{
		``, `status == 1`, `$.`, `$.a ==`, `$.a == 1 2`, `$.a = 1`, `$[`, `$[x]`, `$["a"`, `$.a == {"b":1}`,
		`$.a == [1]`, `$.a > true`, `$.a =~ 1`, `$.a =~ "("`, `$.a == "unterminated`, `$.a == 1e999`,
		strings.Repeat("$.a", 400),
	} {
		if c, err := ParseJSON(s); err == nil {
			t.Errorf("ParseJSON(%q) = %+v, want an error", s, c)
		}
	}
	_, err := ParseJSON(`$.a == `)
	if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), "at byte 7") {
		t.Errorf("error %v should be a syntax error naming byte 7", err)
	}
	for _, s := range []string{
		``, `> 3`, `load1`, `load1 >`, `load1 > x`, `load1 =~ 3`, `load1{ > 3`, `load1{a} > 3`, `load1{a=b} > 3`,
		`load1{a="b" c="d"} > 3`, `load1{a=~"("} > 3`, `load1 > 3 4`, `load1 > 1e999`, `1load > 3`,
	} {
		if c, err := ParseMetric(s); err == nil {
			t.Errorf("ParseMetric(%q) = %+v, want an error", s, c)
		}
	}
}

func TestMetric(t *testing.T) {
	c, err := ParseMetric(`filesystem_used_percent{mountpoint="/", fstype!="tmpfs", device=~"/dev/sd.*", x!~"a|b"} > 90`)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "filesystem_used_percent" || len(c.Matchers) != 4 || c.Op != OpGt || c.Value != 90 {
		t.Fatalf("parsed %+v", c)
	}
	tests := []struct {
		name   string
		labels map[string]string
		want   bool
	}{
		{"filesystem_used_percent", map[string]string{"mountpoint": "/", "fstype": "ext4", "device": "/dev/sda1"}, true},
		{"filesystem_used_percent", map[string]string{"mountpoint": "/home", "fstype": "ext4", "device": "/dev/sda1"}, false},
		{"filesystem_used_percent", map[string]string{"mountpoint": "/", "fstype": "tmpfs", "device": "/dev/sda1"}, false},
		{"filesystem_used_percent", map[string]string{"mountpoint": "/", "fstype": "ext4", "device": "x/dev/sda1"}, false}, // anchored
		{"filesystem_used_percent", map[string]string{"mountpoint": "/", "fstype": "ext4", "device": "/dev/sda1", "x": "a"}, false},
		{"inodes_used_percent", map[string]string{"mountpoint": "/"}, false},
	}
	for _, tt := range tests {
		if got := c.Selects(tt.name, tt.labels); got != tt.want {
			t.Errorf("Selects(%s, %v) = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	for _, tt := range []struct {
		cond string
		v    float64
		want bool
	}{
		{"load1 > 4", 4, false}, {"load1 > 4", 4.01, true}, {"load1 >= 4", 4, true}, {"x < -1.5", -2, true},
		{"x <= 0", 0, true}, {"x == 1e3", 1000, true}, {"x != 0", 0, false},
	} {
		c, err := ParseMetric(tt.cond)
		if err != nil {
			t.Fatalf("%s: %v", tt.cond, err)
		}
		if got := c.Holds(tt.v); got != tt.want {
			t.Errorf("%s with %v = %v, want %v", tt.cond, tt.v, got, tt.want)
		}
	}
}

// FuzzParse feeds arbitrary text to both parsers and evaluates what parses
// against a fixed document: neither may panic, and a parsed condition's
// String is its input.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`$.status == "ok"`, `$.items[-1].size >= 3`, `$["a b"] =~ "^x"`, `$.a`,
		`load1 > 4`, `filesystem_used_percent{mountpoint="/",fstype!~"tmp.*"} >= 90`} {
		f.Add(s)
	}
	doc := []byte(`{"status":"ok","items":[{"size":3}],"a b":"x","a":[1,{"b":null}]}`)
	f.Fuzz(func(t *testing.T, s string) {
		if c, err := ParseJSON(s); err == nil {
			if c.String() != s {
				t.Fatalf("String() = %q, want %q", c.String(), s)
			}
			_ = c.Eval(doc)
		}
		if c, err := ParseMetric(s); err == nil {
			if c.String() != s {
				t.Fatalf("String() = %q, want %q", c.String(), s)
			}
			c.Selects(c.Name, map[string]string{"mountpoint": "/"})
			c.Holds(1)
		}
	})
}
