//go:build !linux

package adminsock

import "net"

// peerUID cannot tell the peer's user here; the socket's mode (0600) is the
// only guard.
func peerUID(*net.UnixConn) (int, bool) { return 0, false }
