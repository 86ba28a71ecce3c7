// Package storagetest helps test code that uses a commands.Store: Open gives
// a bbolt store on a temporary file, and Run is the contract suite that every
// Store implementation (bbolt, PostgreSQL, …) must pass unchanged.
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
