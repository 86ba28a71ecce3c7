// Package storagetest is the contract suite of commands.Store: Run checks
// every method of the port, and every implementation (bbolt, PostgreSQL, …)
// must pass it unchanged. It imports no implementation: each runs the suite
// from its own tests with an Opener of its stores.
//
// A new implementation runs the suite from its own tests:
//
//	func TestContract(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) (commands.Store, func() commands.Store) {
//			… open an empty store s for t, arrange for it to be closed …
//			return s, func() commands.Store { … close s, open the same data again … }
//		})
//	}
package storagetest
