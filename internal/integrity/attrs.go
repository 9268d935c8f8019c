package integrity

import (
	"encoding/json"
	"fmt"
	"math/bits"
	"strings"
)

// Attr is a set of the attributes a rule records for each entry.
type Attr uint32

// The attributes. Their names (attrNames) are what the configuration, the
// JSON report and the baseline's header use.
const (
	AttrType   Attr = 1 << iota // file type
	AttrMode                    // permission bits, set-user-ID, set-group-ID, sticky
	AttrOwner                   // numeric user id
	AttrGroup                   // numeric group id
	AttrSize                    // size of files and symlinks
	AttrMtime                   // modification time
	AttrCtime                   // inode change time (not settable from user space)
	AttrInode                   // inode number
	AttrLinks                   // hard-link count
	AttrTarget                  // symlink target
	AttrXattrs                  // extended attributes other than ACLs and capabilities
	AttrACL                     // POSIX ACLs (system.posix_acl_access and _default)
	AttrCaps                    // file capabilities (security.capability)
	AttrHash                    // content hash of regular files

	attrCount = iota
)

// AllAttrs records everything, the default of a rule.
const AllAttrs Attr = 1<<attrCount - 1

var attrNames = [attrCount]string{"type", "mode", "owner", "group", "size", "mtime", "ctime", "inode", "links", "target", "xattrs", "acl", "caps", "hash"}

// aideNames maps AIDE's attribute letters and group names onto ours, so a
// rule can be written as AIDE's "p+u+g+s+m+c+i+n+sha256".
var aideNames = map[string]Attr{
	"p": AttrMode, "u": AttrOwner, "g": AttrGroup, "s": AttrSize, "m": AttrMtime, "c": AttrCtime,
	"i": AttrInode, "n": AttrLinks, "l": AttrTarget, "ftype": AttrType, "sha256": AttrHash, "blake3": AttrHash,
	"perms": AttrType | AttrMode | AttrOwner | AttrGroup | AttrTarget | AttrXattrs | AttrACL | AttrCaps,
	"all":   AllAttrs,
}

// ParseAttrs reads a list of attribute names. Each item may itself join
// names with "+" (AIDE's style) and use AIDE's letters; "all" is every
// attribute and "perms" the ownership and permission ones (no content, no
// times: for directories whose files change by design).
func ParseAttrs(items []string) (Attr, error) {
	var a Attr
	for _, item := range items {
		for _, name := range strings.Split(item, "+") {
			name = strings.TrimSpace(strings.ToLower(name))
			if name == "" {
				continue
			}
			if v, ok := attrByName(name); ok {
				a |= v
				continue
			}
			return 0, fmt.Errorf("unknown attribute %q (known: %s, all, perms, or AIDE's p u g s m c i n l sha256)", name, strings.Join(attrNames[:], ", "))
		}
	}
	if a == 0 {
		return 0, fmt.Errorf("no attributes")
	}
	return a, nil
}

func attrByName(name string) (Attr, bool) {
	for i, n := range attrNames {
		if n == name {
			return 1 << i, true
		}
	}
	v, ok := aideNames[name]
	return v, ok
}

// Names lists the attributes in a, in their fixed order.
func (a Attr) Names() []string {
	out := make([]string, 0, bits.OnesCount32(uint32(a)))
	for i, n := range attrNames {
		if a&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

func (a Attr) String() string { return strings.Join(a.Names(), "+") }

// MarshalJSON writes the set as a list of names, as the configuration
// spells it.
func (a Attr) MarshalJSON() ([]byte, error) { return json.Marshal(a.Names()) }

// UnmarshalJSON reads a list of names (see ParseAttrs).
func (a *Attr) UnmarshalJSON(b []byte) error {
	var names []string
	if err := json.Unmarshal(b, &names); err != nil {
		return fmt.Errorf("attributes: want a list of names: %w", err)
	}
	v, err := ParseAttrs(names)
	if err != nil {
		return err
	}
	*a = v
	return nil
}
