package storagetest

import (
	"testing"

	"github.com/dobrobot/dobrobot/commands"
)

// Opener opens a new, empty Store for one subtest of Run. It also returns
// reopen, which closes that store (or the one reopen last returned) and opens
// the same data again, as after a restart. The Opener arranges for every store
// it opens to be closed when t ends. Run calls it once per subtest, from
// subtests that run in parallel.
type Opener func(t *testing.T) (s commands.Store, reopen func() commands.Store)

// Run runs the contract suite of commands.Store against the stores open
// makes. Every implementation must pass it unchanged.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		run  func(t *testing.T, s commands.Store, reopen func() commands.Store)
	}{
		{"EmptyStore", testEmptyStore},
		{"ReleaseIDsIncrease", testReleaseIDs},
		{"VersionCompareAndSet", testVersionCAS},
		{"OpenIndexFollowsState", testOpenIndex},
		{"LookupsByTicket", testLookups},
		{"Locks", testLocks},
		{"AuditChain", testAuditChain},
		{"AuditFilter", testAuditFilter},
		{"Report", testReport},
		{"FailedUpdateLeavesNothing", testAtomicity},
		{"Context", testContext},
		{"ViewIsReadOnly", testViewReadOnly},
		{"Inbox", testInbox},
		{"Outbox", testOutbox},
		{"PendingAfter", testPendingAfter},
		{"UpdateFirst", testUpdateFirst},
		{"ReopenKeepsEverything", testReopen},
		{"ConcurrentUpdates", testConcurrent},
		{"AuditProjection", testProjection},
		{"OpenReleasesOfEveryEnvironment", testOpenReleases},
		{"FreezesByEnvironment", testFreezesByEnv},
		{"Deployed", testDeployed},
		{"Due", testDue},
		{"DueOfAWindow", testDueOfAWindow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, reopen := open(t)
			tt.run(t, s, reopen)
		})
	}
}
