//go:build failpoints

package failpoint

const enabled = true
