package commands

// RecordHook records hook attempt hr's result res for release id as the
// goroutine that ran the hook does: tests hand a result in a second time.
func RecordHook(s *Service, id uint64, hr HookRun, res HookResult) error {
	return s.recordHook(id, hr, res)
}

// OpenRelease is openRelease, for tests that look a ticket's open release up
// as the core does.
func OpenRelease(tx Tx, ticket, env string) (Release, error) { return openRelease(tx, ticket, env) }

// IsOverride exposes isOverride to the overrides tests.
var IsOverride = isOverride
