// Decoding a configuration file: a small reflection-driven decoder over
// yaml.v3 node trees.
//
// yaml.v3 first parses the bytes into a tree of *yaml.Node, each carrying
// its line and column. The decoder then walks that tree alongside the Go
// value, guided by `yaml:"name"` struct tags:
//
//   - a struct expects a mapping; each key must name a tagged field (unknown
//     keys get a "did you mean" suggestion) and may appear once;
//   - a slice expects a sequence and replaces the default list whole;
//   - string, bool and int fields expect scalars of the matching kind;
//   - types with a decodeNode method (Duration, Size, Secret) parse their
//     own nodes;
//   - a null value (`key:` with nothing after it, or `~`) keeps the default.
//
// Every decoded node's position is recorded under its dotted path
// ("auth.require_2fa_roles[1]") so that the later validation pass can point
// at the line of the value it refuses. Errors are collected, not returned at
// the first, so one run shows everything wrong with a file.
//
// Anchors and aliases are refused outright rather than expanded: a
// configuration file has no need for them, and refusing them removes the
// "billion laughs" expansion attack without having to pick a cap.

package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// FieldError is one problem in a configuration file.
type FieldError struct {
	// File is the name given to Parse or Load; empty for Config.Validate.
	File string
	// Line and Column are 1-based; 0 when the problem is not at one place
	// in the file (for example, a rule broken by two defaults).
	Line, Column int
	// Path is the dotted field path, e.g. "auth.require_2fa_roles[1]";
	// empty for problems with the file as a whole.
	Path string
	// Msg says what is wrong and what is allowed.
	Msg string
}

// Error formats the error as "FILE:LINE: PATH: MSG", leaving out the parts
// that are unknown.
func (e *FieldError) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a file, in file order. Parse, Load and
// Config.Validate return it (as error) when anything is wrong.
type Errors []*FieldError

// Error joins the errors, one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find the individual *FieldError values.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Load reads, parses and validates the file at path. A missing file is an
// error wrapping fs.ErrNotExist; use Discover for the optional default file.
func Load(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	// Read one byte past the cap so Parse can tell "too large" from "exactly
	// at the cap" without reading an arbitrarily large file.
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return Config{}, fmt.Errorf("config: read %s: %w", path, err)
	}
	return Parse(path, data)
}

// Discover loads the configuration the way the bulwark command finds it:
// the explicit path (from --config) when not empty, which must exist; else
// DATADIR/bulwark.yaml when it exists; else Default(). It returns the path
// actually read, or "" when defaults were used.
func Discover(explicit, dataDir string) (Config, string, error) {
	if explicit != "" {
		c, err := Load(explicit)
		return c, explicit, err
	}
	p := filepath.Join(dataDir, DefaultFileName)
	c, err := Load(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Default(), "", nil
	}
	return c, p, err
}

// Parse decodes and validates data, starting from Default(). filename is
// used only in error messages. On any problem it returns Errors listing all
// of them. It never panics.
func Parse(filename string, data []byte) (cfg Config, err error) {
	// yaml.v3 reports malformed input by panicking internally and
	// recovering itself; this is a last line of defence so that no input can
	// crash a `bulwark config check`. FuzzParse calls parse directly so that
	// it still sees any panic.
	defer func() {
		if r := recover(); r != nil {
			cfg, err = Config{}, Errors{{File: filename, Msg: fmt.Sprintf("cannot parse file: %v", r)}}
		}
	}()
	return parse(filename, data)
}

func parse(filename string, data []byte) (Config, error) {
	cfg := Default()
	if errs := decodeFile(filename, data, &cfg); len(errs) > 0 {
		return Config{}, errs
	}
	return cfg, nil
}

// decodeFile decodes data over *target (which holds the defaults) and
// validates the result. It is generic over the target so that tests can
// exercise the decoder on section shapes Config does not have yet.
func decodeFile(filename string, data []byte, target any) Errors {
	if len(data) > MaxFileSize {
		return Errors{{File: filename, Msg: fmt.Sprintf("file is larger than %d bytes (1 MiB), the most a configuration file may be; is this the right file?", MaxFileSize)}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		// Empty file or comments only: all defaults.
		return validateTarget(filename, nil, target)
	case err != nil:
		return Errors{syntaxError(filename, data, err)}
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return Errors{syntaxError(filename, data, err)}
	default:
		return Errors{{File: filename, Line: extra.Line, Column: extra.Column, Msg: "a second YAML document (after ---) is not allowed; put all settings in one document"}}
	}

	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" && root.Anchor == "" {
		return validateTarget(filename, nil, target)
	}
	if root.Kind != yaml.MappingNode {
		return Errors{{File: filename, Line: root.Line, Column: root.Column,
			Msg: fmt.Sprintf("expected a mapping of settings (key: value lines) at the top level, got %s", describe(root))}}
	}
	d := &decoder{file: filename, pos: map[string]*yaml.Node{}, failed: map[string]bool{}, failedBelow: map[string]bool{}}
	d.decode(root, reflect.ValueOf(target).Elem(), "")
	return validateTarget(filename, d, target)
}

// validateTarget runs the validation pass and merges its errors with the
// decoder's (d may be nil when nothing was decoded), in file order.
func validateTarget(filename string, d *decoder, target any) Errors {
	if d == nil {
		d = &decoder{}
	}
	c := &checker{file: filename, pos: d.pos, skip: d.failed, skipBelow: d.failedBelow}
	c.walk(reflect.ValueOf(target).Elem(), "")
	errs := append(d.errs, c.errs...)
	if len(errs) == 0 {
		return nil
	}
	sortErrors(errs)
	if more := len(errs) - maxErrors + d.dropped; more > 0 {
		errs = append(errs[:min(len(errs), maxErrors):maxErrors], &FieldError{File: filename, Msg: fmt.Sprintf("%d more errors not shown", more)})
	}
	return errs
}

// maxErrors caps how many problems are listed: past this many the file is
// probably not a Bulwark configuration at all.
const maxErrors = 50

// sortErrors orders errors by position in the file, those without a line
// last, keeping discovery order for ties.
func sortErrors(es Errors) {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i], es[j]
		if (a.Line == 0) != (b.Line == 0) {
			return b.Line == 0
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns a yaml.v3 parse error ("yaml: line 3: found character
// that cannot start any token") into a FieldError, adding a hint for the
// commonest cause, a tab in the indentation, which yaml.v3 describes only
// vaguely.
func syntaxError(filename string, data []byte, err error) *FieldError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	e := &FieldError{File: filename, Msg: "invalid YAML: " + msg}
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = "invalid YAML: " + m[2]
	}
	if e.Line > 0 && !strings.Contains(e.Msg, "tab") {
		lines := bytes.Split(data, []byte("\n"))
		if e.Line <= len(lines) && bytes.HasPrefix(bytes.TrimLeft(lines[e.Line-1], " "), []byte("\t")) {
			e.Msg += " (a tab is used for indentation; YAML allows only spaces)"
		}
	}
	if strings.HasPrefix(msg, "unknown anchor") {
		e.Msg += "; anchors and aliases are not supported, write the value out in full"
	}
	return e
}

// nodeDecoder is implemented by pointer types that decode their own node
// (Duration, Size, Secret). They report problems through dec.errorf.
type nodeDecoder interface {
	decodeNode(dec *decoder, n *yaml.Node, path string)
}

var nodeDecoderType = reflect.TypeFor[nodeDecoder]()

// decoder holds the state of one decode: the errors so far, and the node
// each decoded path came from.
type decoder struct {
	file string
	errs Errors
	pos  map[string]*yaml.Node
	// failed holds the paths with a decode error, failedBelow their
	// ancestors, so that validation can skip both in constant time.
	failed, failedBelow map[string]bool
	// dropped counts errors past maxErrors. The walk visits the file in
	// order, so once maxErrors are kept no later decode error can be among
	// the first maxErrors by line; their messages need not even be built.
	dropped int
}

func (d *decoder) full() bool { return len(d.errs) >= maxErrors }

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.failed[path] = true
	for p := parentPath(path); p != "" && !d.failedBelow[p]; p = parentPath(p) {
		d.failedBelow[p] = true
	}
	if d.full() {
		d.dropped++
		return
	}
	d.errs = append(d.errs, &FieldError{File: d.file, Line: n.Line, Column: n.Column, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) record(path string, n *yaml.Node) {
	if _, ok := d.pos[path]; !ok {
		d.pos[path] = n
	}
}

// checkNode refuses anchors and aliases; it reports whether decoding the
// node may go on.
func (d *decoder) checkNode(n *yaml.Node, path string) bool {
	if n.Kind == yaml.AliasNode {
		d.errorf(n, path, "aliases (*%s) are not supported; write the value out in full", n.Value)
		return false
	}
	if n.Anchor != "" {
		d.errorf(n, path, "anchors (&%s) are not supported; write the value out in full", n.Anchor)
		return false
	}
	return true
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if !d.checkNode(n, path) {
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		// "key:" with no value keeps the default, so an empty section such
		// as "auth:" is harmless.
		d.record(path, n)
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(nodeDecoderType) {
		d.record(path, n)
		v.Addr().Interface().(nodeDecoder).decodeNode(d, n, path)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.String:
		d.record(path, n)
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "expected a string, got %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		d.record(path, n)
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			d.errorf(n, path, "expected true or false, got %s", describe(n))
			return
		}
		v.SetBool(strings.EqualFold(n.Value, "true"))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		d.record(path, n)
		d.decodeInt(n, v, path)
	default:
		// Only reachable if a field of an unsupported type is added to
		// Config; TestConfigFieldTypes guards against that.
		d.errorf(n, path, "internal error: field type %s is not supported by the config decoder", v.Type())
	}
}

func (d *decoder) decodeInt(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "expected a whole number, got %s", describe(n))
		return
	}
	var i int64
	switch tag := n.ShortTag(); {
	case tag == "!!int":
		if err := n.Decode(&i); err != nil || v.OverflowInt(i) {
			d.errorf(n, path, "%s is out of range for a whole number", n.Value)
			return
		}
	case tag == "!!float" && isDigits(n.Value):
		d.errorf(n, path, "%s is out of range for a whole number", n.Value)
		return
	default:
		d.errorf(n, path, "expected a whole number, got %s", describe(n))
		return
	}
	v.SetInt(i)
}

func isDigits(s string) bool {
	s = strings.TrimLeft(s, "+-")
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	d.record(path, n)
	if n.Kind != yaml.SequenceNode {
		d.errorf(d.pos[path], path, "expected a list ([a, b] or one \"- item\" per line), got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		ip := fmt.Sprintf("%s[%d]", path, i)
		d.record(ip, item) // so rules about a whole item name its line
		d.decode(item, s.Index(i), ip)
	}
	v.Set(s)
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.record(path, n)
		d.errorf(d.pos[path], path, "expected a mapping (key: value lines), got %s", describe(n))
		return
	}
	fields := structFields(v.Type())
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if !d.checkNode(k, path) {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "keys must be plain names, got %s", describe(k))
			continue
		}
		fpath := joinPath(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, fpath, "duplicate key (first set at line %d); keep only one", first.Line)
			continue
		}
		seen[k.Value] = k
		idx, ok := fields.index[k.Value]
		if !ok {
			msg := "unknown key"
			if !d.full() {
				msg = unknownKeyMsg(k, fields.names)
			}
			d.errorf(k, fpath, "%s", msg)
			continue
		}
		// A collection's error is best shown at its key's line; a scalar's
		// at the value itself (the same line unless it is a block scalar).
		if val.Kind == yaml.MappingNode || val.Kind == yaml.SequenceNode || val.Line != k.Line {
			d.record(fpath, k)
		}
		d.decode(val, v.Field(idx), fpath)
	}
}

func unknownKeyMsg(k *yaml.Node, names []string) string {
	if k.ShortTag() == "!!merge" {
		return "merge keys (<<) are not supported; write the settings out in full"
	}
	if s := suggest(k.Value, names); s != "" {
		return fmt.Sprintf("unknown key (did you mean %q?)", s)
	}
	return "unknown key (allowed: " + strings.Join(names, ", ") + ")"
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// fieldSet maps a struct's yaml names to field indexes.
type fieldSet struct {
	index map[string]int
	names []string // in declaration order, for messages
}

func structFields(t reflect.Type) fieldSet {
	fs := fieldSet{index: map[string]int{}}
	for i := range t.NumField() {
		name, ok := yamlName(t.Field(i))
		if !ok {
			continue
		}
		fs.index[name] = i
		fs.names = append(fs.names, name)
	}
	return fs
}

// yamlName returns a field's key, or false for fields the file cannot set
// (unexported, untagged or tagged "-").
func yamlName(f reflect.StructField) (string, bool) {
	if !f.IsExported() {
		return "", false
	}
	tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if tag == "" || tag == "-" {
		return "", false
	}
	return tag, true
}

// describe names what a node is, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		switch n.ShortTag() {
		case "!!null":
			return "nothing (null)"
		case "!!str":
			return strconv.Quote(v)
		default:
			return v
		}
	default:
		return "an empty document"
	}
}

var keyNormalizer = strings.NewReplacer("_", "", "-", "", " ", "")

// suggest returns the candidate closest to key when it is close enough to
// be a likely typo, else "". Keys equal after dropping case, "_" and "-"
// always match (require2FA -> require_2fa).
func suggest(key string, candidates []string) string {
	norm := func(s string) string { return keyNormalizer.Replace(strings.ToLower(s)) }
	nk := norm(key)
	best, bestDist := "", -1
	for _, c := range candidates {
		if norm(c) == nk {
			return c
		}
		dist := editDistance(strings.ToLower(key), c)
		limit := 1
		switch {
		case len(c) > 8:
			limit = 3
		case len(c) > 3:
			limit = 2
		}
		if dist <= limit && (bestDist < 0 || dist < bestDist) {
			best, bestDist = c, dist
		}
	}
	return best
}

// editDistance is the optimal-string-alignment distance between a and b:
// insertions, deletions, substitutions and swaps of two neighbours each
// cost 1, so the common typo "dns" for "dsn" is one edit. Counted in bytes;
// keys are ASCII, so bytes are characters for every key that can match.
func editDistance(a, b string) int {
	if len(a) > 64 {
		// No key is this long; skip the quadratic work on junk input.
		return len(a)
	}
	// rows[i%3] holds distances for a[:i]; three rows are enough for the
	// swap rule, which looks two rows back.
	var rows [3][]int
	for r := range rows {
		rows[r] = make([]int, len(b)+1)
	}
	for j := range rows[0] {
		rows[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur, prev, prev2 := rows[i%3], rows[(i-1)%3], rows[(i+1)%3]
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
	}
	return rows[len(a)%3][len(b)]
}

func isAbs(p string) bool { return filepath.IsAbs(p) }
