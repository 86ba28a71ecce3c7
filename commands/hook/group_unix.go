//go:build unix && !linux

package hook

import "syscall"

// groupAlive reports whether a process of group pgid still exists (zombies
// included: without /proc they cannot be told apart).
func groupAlive(pgid int) bool {
	return syscall.Kill(-pgid, 0) != syscall.ESRCH
}

// ended reports whether process pid, a child of this process, has exited
// and been reaped; without /proc a zombie cannot be told from a live one.
func ended(pid int) bool {
	return syscall.Kill(pid, 0) == syscall.ESRCH
}
