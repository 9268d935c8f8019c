package tree

import (
	"os/user"
	"strconv"
	"sync"
)

// NameCache resolves user and group ids to names and back through os/user,
// remembering every answer (including "unknown"), so that a backup or restore
// of millions of files looks each owner up once. It is safe for concurrent
// use; the zero value is ready. Names that are not UTF-8, contain NUL or are
// longer than MaxOwnerLen are treated as unknown, as the format cannot hold
// them.
type NameCache struct {
	mu     sync.Mutex
	users  map[uint32]string
	groups map[uint32]string
	uids   map[string]idAnswer
	gids   map[string]idAnswer
}

type idAnswer struct {
	id uint32
	ok bool
}

// NewNameCache returns an empty cache.
func NewNameCache() *NameCache { return &NameCache{} }

// User returns the name of user uid on this host, or "" if it has none.
func (c *NameCache) User(uid uint32) string {
	return cachedName(c, &c.users, uid, func(s string) string {
		if u, err := user.LookupId(s); err == nil {
			return u.Username
		}
		return ""
	})
}

// Group returns the name of group gid on this host, or "" if it has none.
func (c *NameCache) Group(gid uint32) string {
	return cachedName(c, &c.groups, gid, func(s string) string {
		if g, err := user.LookupGroupId(s); err == nil {
			return g.Name
		}
		return ""
	})
}

// UID returns the id of the user called name on this host.
func (c *NameCache) UID(name string) (uint32, bool) {
	return cachedID(c, &c.uids, name, func() string {
		if u, err := user.Lookup(name); err == nil {
			return u.Uid
		}
		return ""
	})
}

// GID returns the id of the group called name on this host.
func (c *NameCache) GID(name string) (uint32, bool) {
	return cachedID(c, &c.gids, name, func() string {
		if g, err := user.LookupGroup(name); err == nil {
			return g.Gid
		}
		return ""
	})
}

// cachedName looks id up in *m, calling lookup outside the lock on a miss
// (two goroutines may then both look up; both store the same answer).
func cachedName(c *NameCache, m *map[uint32]string, id uint32, lookup func(string) string) string {
	c.mu.Lock()
	name, ok := (*m)[id]
	c.mu.Unlock()
	if ok {
		return name
	}
	name = lookup(strconv.FormatUint(uint64(id), 10))
	if len(name) > MaxOwnerLen || !validUTF8NoNUL(name) {
		name = ""
	}
	c.mu.Lock()
	if *m == nil {
		*m = make(map[uint32]string)
	}
	(*m)[id] = name
	c.mu.Unlock()
	return name
}

func cachedID(c *NameCache, m *map[string]idAnswer, name string, lookup func() string) (uint32, bool) {
	if name == "" {
		return 0, false
	}
	c.mu.Lock()
	a, ok := (*m)[name]
	c.mu.Unlock()
	if ok {
		return a.id, a.ok
	}
	if v, err := strconv.ParseUint(lookup(), 10, 32); err == nil {
		a = idAnswer{uint32(v), true}
	}
	c.mu.Lock()
	if *m == nil {
		*m = make(map[string]idAnswer)
	}
	(*m)[name] = a
	c.mu.Unlock()
	return a.id, a.ok
}
