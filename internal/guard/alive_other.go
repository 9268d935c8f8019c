//go:build !unix

package guard

import "net"

// alive cannot peek without blocking here: a connection is taken as open.
func alive(net.Conn) bool { return true }
