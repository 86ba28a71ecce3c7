// Package failpoint lets crash tests kill dobrobot at named points of its
// work, like bbolt's gofail failpoints.
//
// A failpoint is a call Hit(name) placed where a crash matters: after the
// inbox commit and before the ack, after a deploy intent is committed and
// before its hook is spawned, and so on (the names are the constants of this
// package). It does nothing unless the binary was built with the failpoints
// build tag:
//
//	go build -tags failpoints ./cmd/dobrobot
//
// and the environment variable DOBROBOT_FAILPOINTS names it when the process
// starts:
//
//	DOBROBOT_FAILPOINTS=name[=DELAY][,name[=DELAY]…]
//
// When an armed failpoint is reached, the process writes one line naming it
// to standard error and sends itself SIGKILL: no deferred function runs, no
// buffer is flushed, no file is closed, as in a power cut of the process
// (the kernel keeps what was written). With a DELAY (a Go duration such as
// 300ms) the process goes on and is killed that long after the point was
// reached, e.g. while a hook it just started is running.
//
// Without the build tag Hit is an empty function the compiler removes, so
// production binaries carry no failpoint and ignore DOBROBOT_FAILPOINTS.
package failpoint
