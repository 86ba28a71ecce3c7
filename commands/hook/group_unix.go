//go:build unix && !linux

package hook

import "syscall"

// groupAlive reports whether a process of group pgid still exists (zombies
// included: without /proc they cannot be told apart).
func groupAlive(pgid int) bool {
	return syscall.Kill(-pgid, 0) != syscall.ESRCH
}
