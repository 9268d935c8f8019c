package tree

import (
	"bytes"
	"reflect"
	"testing"
	"time"
)

func encodeNode(t *testing.T, n *Node) []byte {
	t.Helper()
	b, err := appendNode(nil, n)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestNodeEqual changes every field of every sample node in turn (found by
// reflection, so a field added to Node later is covered or fails here) and
// checks that Equal nodes encode alike. The archiver reuses a parent's
// tree id on Equal, so an Equal that missed a field would record stale
// metadata. (The converse need not hold: Rdev of a non-device is not
// encoded, and Equal still tells it apart, which only costs a re-save.)
func TestNodeEqual(t *testing.T) {
	for _, base := range sampleTree().Nodes {
		same := base
		same.ModTime = base.ModTime.In(time.FixedZone("x", 3600)) // same instant
		if !base.Equal(&same) || !bytes.Equal(encodeNode(t, &base), encodeNode(t, &same)) {
			t.Fatalf("%q: equal copy not Equal", base.Name)
		}
		typ := reflect.TypeOf(base)
		for i := 0; i < typ.NumField(); i++ {
			m := base
			// Fresh slices and pointers: a change must not reach base.
			m.Content = append([]ContentRef(nil), base.Content...)
			m.Xattrs = append([]Xattr(nil), base.Xattrs...)
			if base.Subtree != nil {
				m.Subtree = ptr(*base.Subtree)
			}
			f := reflect.ValueOf(&m).Elem().Field(i)
			name := typ.Field(i).Name
			switch v := f.Addr().Interface().(type) {
			case *string:
				*v += "x"
			case *NodeType:
				if *v == TypeFile {
					*v = TypeFIFO
				} else {
					*v = TypeFile
				}
			case *uint32:
				*v ^= 1
			case *uint64:
				*v ^= 1
			case *time.Time:
				*v = v.Add(time.Nanosecond)
			case *[]ContentRef:
				*v = append(*v, Chunk(idOf(42)))
			case **ID:
				*v = ptr(idOf(43))
			case *[]Xattr:
				if len(*v) > 0 {
					(*v)[0] = Xattr{Name: (*v)[0].Name, Value: append([]byte{9}, (*v)[0].Value...)}
				} else {
					*v = []Xattr{{Name: "user.a", Value: []byte("b")}}
				}
			default:
				t.Fatalf("field %s of type %s: teach this test to change it", name, f.Type())
			}
			eq := base.Equal(&m)
			if m.Equal(&base) != eq {
				t.Fatalf("%q %s: Equal not symmetric", base.Name, name)
			}
			if eq && !bytes.Equal(encodeNode(t, &base), encodeNode(t, &m)) {
				t.Errorf("%q: changed %s: Equal, but the encodings differ", base.Name, name)
			}
			if eq {
				t.Errorf("%q: changed %s: still Equal", base.Name, name)
			}
		}
	}
}
