package commands_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/rs/zerolog"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/commands/clocktest"
	"github.com/dobrobot/dobrobot/storage"
)

// The model-based test (RELIABILITY.md T10, T54): random command sequences
// from several actors drive the real Service on a real bbolt file, and a
// tiny reference model of the queue (hotfixes let go first included), the
// locks, the states and what is where (for rollback) predicts every outcome. After every step the invariants hold and the store, the audit
// entries the step appended and the reply agree with the model.
//
// DOBROBOT_MODEL_SEQUENCES sets how many sequences run in this process
// (default defaultModelSequences, raceModelSequences under -race, 100 with
// -short), DOBROBOT_MODEL_SEED the seed of the first one (default 1;
// "random" picks one). A failure names the seed that reproduces it.

const (
	defaultModelSequences = 2000
	raceModelSequences    = 20
	modelSteps            = 30
	// modelTTL is approval_ttl in the sequences: the time steps (advance)
	// make approvals expire, which the model predicts.
	modelTTL = 20 * time.Minute
	// modelAdvanceMax bounds the time steps' total: a freeze from chat
	// lasts 2h, and the sequence (a minute a command) must end before it.
	modelAdvanceMax = 80 * time.Minute
)

// modelTickets are the tickets the fake tracker knows, with their components.
// PAY-9 is unknown to it.
var modelTickets = map[string][]string{
	"PAY-1": {"backend", "payments"},
	"PAY-2": {"backend"},
	"PAY-3": {"backend", "web"}, // web is not lockable
	"PAY-4": {"ios"},
	"PAY-5": nil,
}

var (
	modelComponents = []string{"backend", "payments", "ios"}
	modelActors     = []string{ann, bob, approver, qa, admin, guest}
	// modelChannelMembers are the members of the release channel, C0REL:
	// everyone but the guest.
	modelChannelMembers = []string{ann, bob, approver, qa, admin}
	modelTicketKeys     = []string{"PAY-1", "PAY-2", "PAY-3", "PAY-4", "PAY-5"}
)

// mEnv is the model of an environment's rules. The name "" is the one
// implicit environment of a configuration without environments, whose
// releases name none.
type mEnv struct {
	name        string
	approval    bool // false: approval none
	approvals   int
	needsAdmin  bool
	after       string
	bake        time.Duration
	requestAuto bool
}

var (
	// modelPlain is a configuration without environments: everything as
	// before they existed.
	modelPlain = []mEnv{{approval: true, approvals: 1, needsAdmin: true}}
	// modelPipeline is the seed's pipeline: qa with no approval and no
	// admin, then production after qa with a bake of five steps (the clock
	// moves a minute a step), opened by itself when qa is done, with two
	// approvers and an admin. Its default environment is the last one.
	modelPipeline = []mEnv{
		{name: "qa", approval: false, approvals: 1, needsAdmin: false},
		{name: "production", approval: true, approvals: 2, needsAdmin: true, after: "qa", bake: 5 * time.Minute, requestAuto: true},
	}
)

// mRelease is the model of a release: only what the rules depend on.
type mRelease struct {
	ID                         uint64
	Ticket                     string
	Env, Build                 string
	State                      commands.State
	NeedAdmin                  bool
	Requester, Approver, Admin string
	Approvals                  []string
	Components, Locks          []string
	// Hotfix asks to go first; FirstBy is the admin who let it (hotfix.go),
	// at firstSince (the queue's order among hotfixes, not compared).
	Hotfix     bool
	FirstBy    string
	RollbackOf uint64 // the release this one rolls back
	RolledBack uint64 // on a done release: the rollback that replaced it
	// Replaced is, for each component of a done release, the release done
	// before it there (0: none): the chain rollback walks back.
	Replaced   map[string]uint64
	firstSince time.Time
	done       time.Time // when it became done (not compared)
	// expires is when its approval expires (approval_ttl), set by the
	// accept; it holds only while the release is accepted or claimed.
	expires time.Time
}

// mFreeze is a freeze: a component (or all) in one environment, or in
// every one (env "").
type mFreeze struct{ comp, env string }

// mWhere is a component in an environment: a key of what is where.
type mWhere struct{ env, comp string }

// model is the reference: the environments, the releases in ID order, the
// admins' freezes and what is where (the release last done for each
// component in each environment).
type model struct {
	envs     []mEnv
	rels     []*mRelease
	frozen   map[mFreeze]bool
	deployed map[mWhere]uint64
	// timed are the freezes set from chat (freeze … until T), by name;
	// each is also in frozen, as the freeze of all it is.
	timed map[string]mFreeze
	// seen names the rarer paths a sequence took (rollbacks, hotfixes
	// overtaking), so that the run can tell they were reached.
	seen map[string]bool
	// ttl is approval_ttl (zero: off).
	ttl time.Duration
}

// expire is the scheduler's turn at now: every accepted or claimed release
// whose approval expired by then goes back to requested, approvals void,
// in the order of the due times (time, then release ID), as dobrobot.
func (m *model) expire(now time.Time) []string {
	var due []*mRelease
	for _, r := range m.rels {
		if (r.State == commands.StateAccepted || r.State == commands.StateClaimed) && !r.expires.IsZero() && !r.expires.After(now) {
			due = append(due, r)
		}
	}
	slices.SortStableFunc(due, func(a, b *mRelease) int { return a.expires.Compare(b.expires) })
	var out []string
	for _, r := range due {
		from := r.State
		r.State, r.Approver, r.Approvals, r.Admin, r.expires = commands.StateRequested, "", nil, "", time.Time{}
		out = append(out, entry(commands.ActionVoid, r.Ticket, r.Env, r.Build, from, r.State))
		m.seen["an approval expired"] = true
		if r.Env != "" {
			m.seen["an approval expired in "+r.Env] = true
		}
	}
	return out
}

// mCmd is one generated command, as ParseIn reads it, and what its hooks
// will do.
type mCmd struct {
	actor, text string
	verb        commands.Verb // empty for a command that does not parse
	ticket      string        // as ParseIn returns it
	comp        string        // lock, unlock, where
	env, build  string        // in ENV / to ENV, version V (rollback: to V)
	noNeedAdmin bool
	name        string // unfreeze's
	hotfix      bool
	changes     bool // a state-changing verb: refusals are audited
	via         commands.Via
	startFails  bool
	finishFails bool
	cancelFails bool
}

// isApprover: qa through S0QA; the admin too, so that an admin's accept
// and approval (which let a hotfix go first) are reached.
func isApprover(u string) bool { return u == approver || u == ann || u == qa || u == admin }
func isAdmin(u string) bool    { return u == admin }

// modeled is every state-changing verb the model has a rule for. The
// generator draws verbs from the verb table (commands.Help); a new
// state-changing verb there fails TestModelBasedSequences until the model
// learns it.
var modeled = []commands.Verb{commands.VerbDobro, commands.VerbAccept, commands.VerbReject, commands.VerbHere,
	commands.VerbStart, commands.VerbFinish, commands.VerbCancel, commands.VerbLock, commands.VerbUnlock, commands.VerbPromote,
	commands.VerbFreeze, commands.VerbUnfreeze, commands.VerbRollback, commands.VerbExtend, commands.VerbIncident}

func (m *model) configured() bool { return m.envs[0].name != "" }

func (m *model) env(name string) mEnv {
	for _, e := range m.envs {
		if e.name == name {
			return e
		}
	}
	return m.envs[len(m.envs)-1] // "": the default, the last one
}

func (m *model) envNames() []string {
	if !m.configured() {
		return nil
	}
	var out []string
	for _, e := range m.envs {
		out = append(out, e.name)
	}
	return out
}

// openIn returns ticket's open release in env.
func (m *model) openIn(ticket, env string) *mRelease {
	for _, r := range m.rels {
		if r.Ticket == ticket && r.Env == env && r.State.Open() {
			return r
		}
	}
	return nil
}

// opens returns ticket's open releases, in every environment.
func (m *model) opens(ticket string) []*mRelease {
	var out []*mRelease
	for _, r := range m.rels {
		if r.Ticket == ticket && r.State.Open() {
			out = append(out, r)
		}
	}
	return out
}

// find mirrors how a command reaches its release: the one open in the
// environment named, or, without in ENV, the ticket's only open one (none
// when it is open in several: the command is refused with the list).
func (m *model) find(c mCmd) *mRelease {
	if c.env != "" {
		return m.openIn(c.ticket, c.env)
	}
	if o := m.opens(c.ticket); len(o) == 1 {
		return o[0]
	}
	return nil
}

// last returns ticket's newest release.
func (m *model) last(ticket string) *mRelease {
	for i := len(m.rels) - 1; i >= 0; i-- {
		if m.rels[i].Ticket == ticket {
			return m.rels[i]
		}
	}
	return nil
}

// ready mirrors the rule that an earlier release which could start now goes
// first.
func (r *mRelease) ready() bool {
	return r.State == commands.StateClaimed || (r.State == commands.StateAccepted && !r.NeedAdmin)
}

func shares(a, b []string) bool {
	return slices.ContainsFunc(a, func(c string) bool { return slices.Contains(b, c) })
}

// first mirrors a hotfix that goes first: an admin let it, and it is
// accepted.
func (r *mRelease) first() bool {
	return r.Hotfix && r.FirstBy != "" && r.State != commands.StateRequested
}

// queue returns the open releases in the queue's order: those waiting with
// the hotfixes let go first ahead (in the order they were let go), then the
// others by ID; a release holding its locks keeps its place.
func (m *model) queue() []*mRelease {
	var out, waiting []*mRelease
	var slots []int
	for _, r := range m.rels {
		if !r.State.Open() {
			continue
		}
		if !r.State.HoldsLocks() {
			slots, waiting = append(slots, len(out)), append(waiting, r)
		}
		out = append(out, r)
	}
	slices.SortStableFunc(waiting, func(a, b *mRelease) int {
		switch fa, fb := a.first(), b.first(); {
		case fa && fb:
			if c := a.firstSince.Compare(b.firstSince); c != 0 {
				return c
			}
			return int(a.ID) - int(b.ID)
		case fa:
			return -1
		case fb:
			return 1
		}
		return 0
	})
	for k, i := range slots {
		out[i] = waiting[k]
	}
	return out
}

// letFirst mirrors an admin's accept, approval or claim of a hotfix: it
// goes first from now (once accepted), audited as hotfix.
func (m *model) letFirst(r *mRelease, actor string, now time.Time) []string {
	if !r.Hotfix || r.FirstBy != "" || !isAdmin(actor) {
		return nil
	}
	r.FirstBy, r.firstSince = actor, now
	return []string{entry(commands.ActionHotfix, r.Ticket, r.Env, r.Build, r.State, r.State)}
}

// canLock reports whether r may take its locks now: only freezes of its
// environment (or of every one) and releases of its environment count;
// a ready release ahead of r in the queue's order (a hotfix let go first
// included) sharing a component goes first, unless r holds its locks
// already (a retry after its start hook failed).
// A freeze of all stops every start, also of a release that locks nothing
// (issue 12, item 2: the model had the same hole as the code).
func (m *model) canLock(r *mRelease) bool {
	for f := range m.frozen {
		if (f.env == "" || f.env == r.Env) && (f.comp == commands.AllComponents || slices.Contains(r.Locks, f.comp)) {
			return false
		}
	}
	for _, o := range m.rels {
		if o.ID != r.ID && o.Env == r.Env && o.State.HoldsLocks() && shares(o.Locks, r.Locks) {
			return false
		}
	}
	for _, o := range m.queue() {
		if o.ID == r.ID {
			break
		}
		if o.Env == r.Env && o.ready() && shares(o.Locks, r.Locks) && r.State.HoldsLocks() {
			m.seen["a failed deploy retried with a ready release ahead"] = true
			return true
		}
		if o.Env == r.Env && o.ready() && shares(o.Locks, r.Locks) {
			if o.ID > r.ID {
				m.seen["a hotfix let first holds back an earlier release"] = true
			}
			return false
		}
	}
	for _, o := range m.rels {
		if o.ID < r.ID && o.Env == r.Env && o.State.Open() && o.ready() && shares(o.Locks, r.Locks) {
			m.seen["a hotfix starts ahead of an earlier release"] = true
		}
	}
	return true
}

// promoted reports whether r's environment's after rule holds: the
// ticket's newest release done in that environment with r's version
// (without one: any) was done at least bake before now.
func (m *model) promoted(r *mRelease, now time.Time) bool {
	e := m.env(r.Env)
	if e.after == "" {
		return true
	}
	for i := len(m.rels) - 1; i >= 0; i-- {
		d := m.rels[i]
		if d.Ticket != r.Ticket || d.Env != e.after || d.State != commands.StateDone || (r.Build != "" && d.Build != r.Build) {
			continue
		}
		return !now.Before(d.done.Add(e.bake))
	}
	return false
}

// held reports whether a release holds component c in env ("": in any).
func (m *model) held(c, env string) bool {
	return slices.ContainsFunc(m.rels, func(r *mRelease) bool {
		return r.State.HoldsLocks() && slices.Contains(r.Locks, c) && (env == "" || r.Env == env)
	})
}

func entry(a commands.Action, ticket, env, version string, from, to commands.State) string {
	return fmt.Sprintf("%s %s@%s v%s %s>%s", a, ticket, env, version, from, to)
}

// open adds a requested release of ticket in env, like src (its
// components, locks and hotfix flag), and returns it with its audit
// entries: request, and accept at once where env needs no approval.
func (m *model) open(ticket, env, build, requester string, needAdmin bool, src mRelease) (*mRelease, []string) {
	r := &mRelease{ID: uint64(len(m.rels) + 1), Ticket: ticket, Env: env, Build: build, State: commands.StateRequested,
		NeedAdmin: needAdmin, Requester: requester, Components: slices.Clone(src.Components), Locks: slices.Clone(src.Locks),
		Hotfix: src.Hotfix, RollbackOf: src.RollbackOf}
	m.rels = append(m.rels, r)
	out := []string{entry(commands.ActionRequest, ticket, env, build, "", commands.StateRequested)}
	if !m.env(env).approval {
		r.State = commands.StateAccepted
		out = append(out, entry(commands.ActionAccept, ticket, env, build, commands.StateRequested, commands.StateAccepted))
	}
	return r, out
}

// apply runs c, sent at now, on the model and returns the audit entries it
// must append.
func (m *model) apply(c mCmd, now time.Time) []string {
	if m.deployed == nil { // a model made by another test (the concurrency one)
		m.deployed, m.seen = map[mWhere]uint64{}, map[string]bool{}
	}
	refused := func() []string {
		if !c.changes {
			return nil
		}
		return []string{entry(commands.ActionRefused, c.ticket, c.env, c.build, "", "")}
	}
	move := func(r *mRelease, a commands.Action, to commands.State) string {
		from := r.State
		r.State = to
		return entry(a, r.Ticket, r.Env, r.Build, from, to)
	}
	mayRun := func(r *mRelease) bool { return r.Requester == c.actor || r.Admin == c.actor || isAdmin(c.actor) }
	inChannel := c.via == commands.ViaMention || slices.Contains(modelChannelMembers, c.actor)
	switch c.verb {
	case commands.VerbDobro:
		if !inChannel {
			// No requesters configured: by DM or button, only the release
			// channel's members may request (issue 12, item 10).
			return refused()
		}
		env := m.env(c.env).name
		if m.openIn(c.ticket, env) != nil {
			return nil // "already in the queue"
		}
		comps, ok := modelTickets[c.ticket]
		if !ok {
			return refused()
		}
		var locks []string
		for _, comp := range comps {
			if slices.Contains(modelComponents, comp) {
				locks = append(locks, comp)
			}
		}
		_, out := m.open(c.ticket, env, c.build, c.actor, m.env(env).needsAdmin && !c.noNeedAdmin,
			mRelease{Components: comps, Locks: locks, Hotfix: c.hotfix})
		return out
	case commands.VerbPromote:
		if !m.configured() {
			return refused()
		}
		src := m.last(c.ticket)
		if src == nil {
			return refused()
		}
		if c.env != "" && m.openIn(c.ticket, c.env) != nil {
			return nil // "already in the queue"
		}
		if src.State != commands.StateDone {
			return refused()
		}
		target := c.env
		if target == "" {
			names := m.envNames()
			i := slices.Index(names, src.Env)
			if i+1 >= len(names) {
				return refused() // the last environment
			}
			target = names[i+1]
		}
		if target == src.Env || !inChannel {
			return refused()
		}
		if m.openIn(c.ticket, target) != nil {
			return nil
		}
		_, out := m.open(c.ticket, target, src.Build, c.actor, m.env(target).needsAdmin, mRelease{Components: src.Components, Locks: src.Locks, Hotfix: src.Hotfix})
		return out
	case commands.VerbAccept:
		r := m.find(c)
		switch {
		case r == nil, !isApprover(c.actor), r.Requester == c.actor:
			return refused()
		case r.Approver != "" && r.State != commands.StateRequested:
			return nil // "already accepted"
		case r.State == commands.StateAccepted || r.State == commands.StateClaimed:
			return nil // "already accepted: ENV needs no approval"
		case slices.Contains(r.Approvals, c.actor):
			return nil // "you already approved"
		case r.State != commands.StateRequested:
			return refused()
		}
		need := m.env(r.Env).approvals
		if len(r.Approvals)+1 < need {
			r.Approvals = append(r.Approvals, c.actor)
			out := []string{move(r, commands.ActionApprove, commands.StateRequested)}
			return append(out, m.letFirst(r, c.actor, now)...)
		}
		r.Approver = c.actor
		if need > 1 {
			r.Approvals = append(r.Approvals, c.actor)
		}
		if m.ttl > 0 {
			r.expires = now.Add(m.ttl)
		}
		out := []string{move(r, commands.ActionAccept, commands.StateAccepted)}
		return append(out, m.letFirst(r, c.actor, now)...)
	case commands.VerbReject:
		r := m.find(c)
		if r == nil || !isApprover(c.actor) || r.State != commands.StateRequested {
			return refused()
		}
		r.Approver = c.actor
		return []string{move(r, commands.ActionReject, commands.StateRejected)}
	case commands.VerbHere:
		r := m.find(c)
		switch {
		case r == nil, !isAdmin(c.actor):
			return refused()
		case r.Admin == c.actor:
			return nil // "you already claimed"
		case r.Admin != "", r.State != commands.StateAccepted:
			return refused()
		}
		r.Admin = c.actor
		out := []string{move(r, commands.ActionClaim, commands.StateClaimed)}
		return append(out, m.letFirst(r, c.actor, now)...)
	case commands.VerbStart:
		r := m.find(c)
		switch {
		case r == nil, !mayRun(r), r.State == commands.StateRequested,
			r.State == commands.StateAccepted && r.NeedAdmin:
			return refused()
		case r.State == commands.StateDeploying:
			return nil // "already deploying"
		case r.State != commands.StateFailed && !m.promoted(r, now):
			return refused() // the promotion rule
		case !m.canLock(r):
			return refused()
		}
		out := []string{move(r, commands.ActionStart, commands.StateDeploying)}
		if c.startFails {
			return append(out, move(r, commands.ActionFail, commands.StateFailed))
		}
		return append(out, move(r, commands.ActionStarted, commands.StateDeploying))
	case commands.VerbFinish:
		r := m.find(c)
		if r == nil || !mayRun(r) || !r.State.HoldsLocks() {
			return refused()
		}
		if c.finishFails {
			return []string{move(r, commands.ActionHookFailed, r.State)}
		}
		out := []string{move(r, commands.ActionFinish, commands.StateDone)}
		r.done = now
		// What is where: r now runs for each of its components in its
		// environment, replacing the release done there before.
		r.Replaced = map[string]uint64{}
		for _, comp := range r.Components {
			r.Replaced[comp] = m.deployed[mWhere{r.Env, comp}]
			m.deployed[mWhere{r.Env, comp}] = r.ID
		}
		if len(r.Replaced) == 0 {
			r.Replaced = nil
		}
		// request: auto: done here opens the release of each environment
		// after this one, unless one is open there.
		for _, e := range m.envs {
			if e.after == r.Env && e.requestAuto && m.openIn(r.Ticket, e.name) == nil {
				_, opened := m.open(r.Ticket, e.name, r.Build, r.Requester, e.needsAdmin, mRelease{Components: r.Components, Locks: r.Locks, Hotfix: r.Hotfix})
				out = append(out, opened...)
			}
		}
		return out
	case commands.VerbCancel:
		r := m.find(c)
		if r == nil || !mayRun(r) {
			return refused()
		}
		started := r.State.HoldsLocks()
		out := []string{move(r, commands.ActionCancel, commands.StateCancelled)}
		if !started {
			return out
		}
		// The cancel hook runs for a release that held its locks; its
		// result is recorded on the cancelled release, which frees them.
		if c.cancelFails {
			return append(out, entry(commands.ActionHookFailed, r.Ticket, r.Env, r.Build, r.State, r.State))
		}
		return append(out, entry(commands.ActionHook, r.Ticket, r.Env, r.Build, r.State, r.State))
	case commands.VerbExtend:
		// The model's Service has no reminders.deploying: extend, which
		// only snoozes that reminder, is refused whoever asks, whatever
		// the release's state, and changes nothing.
		return refused()
	case commands.VerbLock:
		if !isAdmin(c.actor) || (c.comp != commands.AllComponents && !slices.Contains(modelComponents, c.comp)) {
			return refused()
		}
		if m.frozen[mFreeze{c.comp, c.env}] || m.frozen[mFreeze{c.comp, ""}] {
			return nil // "frozen already"
		}
		m.frozen[mFreeze{c.comp, c.env}] = true
		return []string{entry(commands.ActionLock, "", c.env, "", "", "")}
	case commands.VerbUnlock:
		if !isAdmin(c.actor) || (c.comp != commands.AllComponents && !slices.Contains(modelComponents, c.comp)) {
			return refused()
		}
		for _, f := range m.timed {
			if f == (mFreeze{c.comp, c.env}) {
				return refused() // a freeze from chat: unfreeze NAME ends it
			}
		}
		if !m.frozen[mFreeze{c.comp, c.env}] {
			for f := range m.frozen {
				if f.comp == c.comp {
					return refused() // frozen in another environment (or in every one)
				}
			}
			if m.held(c.comp, c.env) {
				return refused() // locked by a release, not frozen
			}
			return nil // "not frozen"
		}
		delete(m.frozen, mFreeze{c.comp, c.env})
		return []string{entry(commands.ActionUnlock, "", c.env, "", "", "")}
	case commands.VerbFreeze:
		// The generator always writes until 2h; the sequence never lasts
		// that long, so the freeze never ends by itself here.
		all := mFreeze{commands.AllComponents, c.env}
		if !isAdmin(c.actor) || m.frozen[all] {
			return refused() // not an admin, or frozen there already
		}
		name := strings.ToLower(c.actor) + "-"
		if c.env != "" {
			name += c.env + "-"
		}
		name += strings.ToLower(now.Add(2 * time.Hour).UTC().Format("Jan02-1504"))
		m.frozen[all], m.timed[name] = true, all
		return []string{entry(commands.ActionLock, "", c.env, "", "", "")}
	case commands.VerbUnfreeze:
		f, ok := m.timed[c.name]
		if !isAdmin(c.actor) || !ok {
			return refused()
		}
		delete(m.timed, c.name)
		delete(m.frozen, f)
		return []string{entry(commands.ActionUnlock, "", f.env, "", "", "")}
	case commands.VerbRollback:
		return m.rollback(c, inChannel, refused)
	case commands.VerbIncident:
		return m.incident(c, mayRun, refused)
	}
	return refused() // does not parse, or a read-only command (changes is false)
}

// version is how a rollback compares versions: 2.0 and v2.0 are one.
func version(b string) string {
	if b != "" && b[0] >= '0' && b[0] <= '9' {
		return "v" + b
	}
	return b
}

// rollbackTarget walks back from cur, done, along the releases each done
// one replaced for comp, to the first with version build or, without one,
// with a version other than cur's and not rolled back itself; nil if none.
// passed tells whether it passed over a version rolled back.
func (m *model) rollbackTarget(cur *mRelease, comp, build string) (target *mRelease, passed bool) {
	for at := cur; ; {
		prev := at.Replaced[comp]
		if prev == 0 {
			return nil, passed
		}
		x := m.rels[prev-1]
		if build != "" && x.Build != "" && version(x.Build) == version(build) ||
			build == "" && x.Build != "" && x.Build != cur.Build && x.RolledBack == 0 {
			return x, passed
		}
		if build == "" && x.Build != "" && x.Build != cur.Build {
			passed = true // rolled back itself
		}
		at = x
	}
}

// rollback mirrors rollback COMPONENT [in ENV] [to VERSION]: a release of
// the ticket that deployed the version done before the current one (or the
// one named) of the component in the environment, found back along
// Replaced; the current one is marked rolled back.
func (m *model) rollback(c mCmd, inChannel bool, refused func() []string) []string {
	if !m.configured() || !inChannel {
		return refused() // no versions without environments; requesters (the channel) or admins only
	}
	env := m.env(c.env)
	id, ok := m.deployed[mWhere{env.name, c.comp}]
	if !ok {
		return refused() // nothing done there
	}
	for _, o := range m.rels {
		if o.State.Open() && o.RollbackOf != 0 && o.Env == env.name && slices.Contains(o.Components, c.comp) {
			return refused() // being rolled back already
		}
	}
	cur := m.rels[id-1]
	if c.build != "" && version(c.build) == version(cur.Build) {
		return refused() // at that version already
	}
	target, passed := m.rollbackTarget(cur, c.comp, c.build)
	if passed {
		m.seen["a rollback passes over a version rolled back"] = true
	}
	if target == nil {
		return refused() // nothing to roll back to
	}
	if m.openIn(target.Ticket, env.name) != nil {
		return refused() // the target's ticket is open there
	}
	var locks []string
	if slices.Contains(modelComponents, c.comp) {
		locks = []string{c.comp}
	}
	rel, out := m.open(target.Ticket, env.name, target.Build, c.actor, env.needsAdmin,
		mRelease{Components: []string{c.comp}, Locks: locks, RollbackOf: cur.ID})
	cur.RolledBack = rel.ID
	m.seen["rolled back"] = true
	return append(out, entry(commands.ActionRolledBack, cur.Ticket, cur.Env, cur.Build, cur.State, cur.State))
}

// incident mirrors incident TICKET [in ENV]: the ticket's newest done
// release (in ENV), its state unchanged, marked by its requester, its
// admin or an admin; refused when none is done there, or when it is done
// in several environments and none is named.
func (m *model) incident(c mCmd, mayRun func(*mRelease) bool, refused func() []string) []string {
	var found []*mRelease
	var envs []string
	for i := len(m.rels) - 1; i >= 0; i-- {
		r := m.rels[i]
		name := m.env(r.Env).name
		if r.Ticket != c.ticket || r.State != commands.StateDone || slices.Contains(envs, name) ||
			c.env != "" && name != m.env(c.env).name {
			continue
		}
		found, envs = append(found, r), append(envs, name)
	}
	if len(found) == 0 || len(found) > 1 && c.env == "" || !mayRun(found[0]) {
		return refused()
	}
	r := found[0]
	m.seen["incident"] = true
	return []string{entry(commands.ActionIncident, r.Ticket, r.Env, r.Build, r.State, r.State)}
}

func sameRelease(a, b mRelease) bool {
	return a.ID == b.ID && a.Ticket == b.Ticket && a.Env == b.Env && a.Build == b.Build && a.State == b.State &&
		a.NeedAdmin == b.NeedAdmin && a.Requester == b.Requester && a.Approver == b.Approver && a.Admin == b.Admin &&
		slices.Equal(a.Approvals, b.Approvals) && slices.Equal(a.Components, b.Components) && slices.Equal(a.Locks, b.Locks) &&
		a.Hotfix == b.Hotfix && a.FirstBy == b.FirstBy && a.RollbackOf == b.RollbackOf && a.RolledBack == b.RolledBack &&
		maps.Equal(a.Replaced, b.Replaced)
}

// releases returns the model's releases as the store should hold them.
func (m *model) releases() []mRelease {
	out := make([]mRelease, 0, len(m.rels))
	for _, r := range m.rels {
		c := *r
		c.done, c.firstSince = time.Time{}, time.Time{}
		out = append(out, c)
	}
	return out
}

// gen makes random commands, mostly plausible ones, so that sequences get
// far into the workflow, and some that are refused or do not parse. Its
// verbs are the verb table's (commands.Help), its texts the table's
// rendering of a command (Command.String), read back with ParseIn as the
// Service reads them.
type gen struct {
	rng *rand.Rand
	m   *model
}

func (g *gen) pick(list []string) string { return list[g.rng.IntN(len(list))] }

// verbWeights weighs the verbs that drive the workflow; any other verb of
// the table is drawn with weight 1.
var verbWeights = map[commands.Verb]int{commands.VerbDobro: 5, commands.VerbAccept: 4, commands.VerbHere: 3,
	commands.VerbStart: 5, commands.VerbFinish: 3, commands.VerbPromote: 2, commands.VerbRollback: 2}

// junk is the generator's word for a command that does not parse.
const junk commands.Verb = "junk"

func (g *gen) verb() commands.Verb {
	total := 1 // junk
	weight := func(v commands.Verb) int {
		if v == commands.VerbDobro && g.m.configured() {
			return 2 * verbWeights[v] // a pipeline needs more releases done for rollback
		}
		if w, ok := verbWeights[v]; ok {
			return w
		}
		return 1
	}
	for _, u := range commands.Help {
		total += weight(u.Verb)
	}
	n := g.rng.IntN(total)
	for _, u := range commands.Help {
		if n < weight(u.Verb) {
			return u.Verb
		}
		n -= weight(u.Verb)
	}
	return junk
}

// envWord returns the environment a command names: mostly none, else one
// of the model's, now and then one that is not configured ("prod", refused
// as a parse error) or, without environments, a word of a note.
func (g *gen) envWord() string {
	r := g.rng
	switch n := r.IntN(12); {
	case n < 5:
		return ""
	case n == 11:
		return "prod"
	case !g.m.configured():
		return ""
	default:
		return g.pick(g.m.envNames())
	}
}

// rollbackable returns where (sorted) a rollback without to VERSION has a
// version to go back to, or a rollback is done (to roll back again).
func (g *gen) rollbackable() []mWhere {
	var out []mWhere
	for x, id := range g.m.deployed {
		if t, _ := g.m.rollbackTarget(g.m.rels[id-1], x.comp, ""); t != nil || g.m.rels[id-1].RollbackOf != 0 {
			out = append(out, x)
		}
	}
	slices.SortFunc(out, func(a, b mWhere) int { return strings.Compare(a.env+" "+a.comp, b.env+" "+b.comp) })
	return out
}

// overtaken returns a ready release that a hotfix let go first, ready too,
// overtook in the queue (sharing a component in its environment), if any.
func (g *gen) overtaken() *mRelease {
	q := g.m.queue()
	for i, h := range q {
		if !h.first() || !h.ready() {
			continue
		}
		for _, o := range q[i+1:] {
			if o.ID < h.ID && o.Env == h.Env && o.ready() && shares(o.Locks, h.Locks) {
				return o
			}
		}
	}
	return nil
}

func (g *gen) next() mCmd {
	r := g.rng
	c := mCmd{actor: g.pick(modelActors), ticket: g.pick(modelTicketKeys),
		via:        []commands.Via{commands.ViaMention, commands.ViaDM, commands.ViaButton}[r.IntN(3)],
		startFails: r.IntN(5) == 0, finishFails: r.IntN(6) == 0}
	if r.IntN(25) == 0 {
		c.ticket = "PAY-9"
	}
	plausible := r.IntN(10) < 7
	var open []*mRelease
	for _, rel := range g.m.rels {
		if rel.State.Open() {
			open = append(open, rel)
		}
	}
	env := g.envWord()
	owner := func() {
		if rels := g.m.opens(c.ticket); len(rels) > 0 && plausible {
			rel := rels[r.IntN(len(rels))]
			c.actor = []string{rel.Requester, admin, rel.Requester}[r.IntN(3)]
			if len(rels) > 1 || r.IntN(2) == 0 {
				env = rel.Env
			}
		}
	}
	// Commands on tickets are mostly about queued ones.
	if len(open) > 0 && plausible {
		c.ticket = open[r.IntN(len(open))].Ticket
	}
	v := g.verb()
	// Half the time, when something is queued, the next step of its
	// workflow by someone entitled to it, so that sequences get far; two
	// times in three in a pipeline, whose releases have further to go
	// (rollback needs two versions done).
	forced := ""
	if len(open) > 0 && (r.IntN(2) == 0 || g.m.configured() && r.IntN(3) == 0) {
		rel := open[r.IntN(len(open))]
		if o := g.overtaken(); o != nil && r.IntN(2) == 0 {
			rel = o // it tries to start behind a hotfix let go first
		}
		c.ticket, env = rel.Ticket, rel.Env
		if len(g.m.opens(rel.Ticket)) == 1 && r.IntN(2) == 0 {
			env = "" // the only open one: no need to say where
		}
		owner := []string{rel.Requester, admin}[r.IntN(2)]
		switch {
		case len(g.m.frozen) > 0 && r.IntN(4) == 0:
			v, forced = commands.VerbUnlock, admin
		case len(g.rollbackable()) > 0 && r.IntN(5) == 0:
			// A version to go back to: the team decides the current failed.
			v, forced = commands.VerbRollback, []string{ann, bob, admin}[r.IntN(3)]
		case rel.State == commands.StateRequested && r.IntN(8) == 0:
			v, forced = commands.VerbReject, approver
		case rel.State == commands.StateRequested:
			v, forced = commands.VerbAccept, g.pick(slices.DeleteFunc([]string{approver, qa, ann, admin}, func(u string) bool { return u == rel.Requester }))
		case rel.State == commands.StateAccepted && (rel.NeedAdmin || rel.Hotfix && rel.FirstBy == "" && r.IntN(2) == 0):
			// An admin claims one that needs it, or a hotfix to let it go first.
			v, forced = commands.VerbHere, admin
		case rel.State == commands.StateAccepted, rel.State == commands.StateClaimed,
			rel.State == commands.StateFailed && r.IntN(2) == 0: // a retry
			v, forced = commands.VerbStart, owner
		case r.IntN(10) == 0:
			v, forced = commands.VerbCancel, owner
		default:
			v, forced = commands.VerbFinish, owner
		}
	}
	if forced != "" {
		plausible = false
	}
	cmd := commands.Command{Verb: v, Ticket: c.ticket, Env: env}
	switch v {
	case commands.VerbDobro:
		if plausible {
			c.actor = []string{ann, bob}[r.IntN(2)]
			cmd.Ticket = g.pick(modelTicketKeys)
			if g.m.configured() && r.IntN(3) > 0 {
				cmd.Env = "qa" // the pipeline starts there
			}
		}
		// Versions, mostly, where a pipeline runs: rollback goes back to them.
		if r.IntN(2) == 0 || g.m.configured() && r.IntN(4) > 0 {
			cmd.Build = g.pick([]string{"1.0", "2.0", "3.0"})
		}
		if plausible && g.m.configured() && r.IntN(2) == 0 {
			// The next version of a ticket done in qa, so that a
			// component has versions to roll back to.
			for _, rel := range g.m.rels {
				if rel.Env == "qa" && rel.State == commands.StateDone && g.m.openIn(rel.Ticket, "qa") == nil && r.IntN(2) == 0 {
					cmd.Ticket, cmd.Env = rel.Ticket, "qa"
					cmd.Build = g.pick(slices.DeleteFunc([]string{"1.0", "2.0", "3.0"}, func(b string) bool { return b == rel.Build }))
				}
			}
		}
		cmd.NoNeedAdmin = r.IntN(2) == 0
		if r.IntN(3) == 0 {
			cmd.Text = "see the changelog"
		}
		// Without environments "hotfix" is a word of the note.
		cmd.Hotfix = r.IntN(3) == 0
	case commands.VerbPromote:
		if plausible {
			c.actor = []string{ann, bob}[r.IntN(2)]
			for _, rel := range g.m.rels {
				if rel.State == commands.StateDone && r.IntN(2) == 0 {
					cmd.Ticket = rel.Ticket // one done somewhere
				}
			}
		}
	case commands.VerbAccept, commands.VerbReject:
		if plausible {
			c.actor = []string{approver, qa, ann, admin}[r.IntN(4)]
		}
		if v == commands.VerbReject && r.IntN(2) == 0 {
			cmd.Text = "not this week"
		}
	case commands.VerbHere:
		if plausible {
			c.actor = admin
		}
	case commands.VerbStart, commands.VerbFinish, commands.VerbCancel, commands.VerbExtend:
		if forced == "" {
			owner()
			cmd.Env = env
		}
		if v == commands.VerbCancel && r.IntN(2) == 0 {
			cmd.Text = "wrong build"
		}
	case commands.VerbLock:
		if plausible {
			c.actor = admin
		}
		cmd.Component = g.pick([]string{"backend", "payments", "ios", "all", "backend", "db"})
		if r.IntN(2) == 0 {
			cmd.Text = "release freeze"
		}
	case commands.VerbUnlock:
		if plausible {
			c.actor = admin
		}
		cmd.Component = g.pick([]string{"backend", "payments", "ios", "all", "db"})
		if frozen := slices.Collect(maps.Keys(g.m.frozen)); len(frozen) > 0 && (forced != "" || plausible) {
			f := frozen[r.IntN(len(frozen))]
			cmd.Component, cmd.Env = f.comp, f.env
		}
	case commands.VerbFreeze:
		if plausible {
			c.actor = admin
		}
		cmd.Until = "2h"
		if r.IntN(2) == 0 {
			cmd.Text = "release freeze"
		}
	case commands.VerbUnfreeze:
		if plausible {
			c.actor = admin
		}
		cmd.Name = "u0admin-nov22-1200"
		if names := slices.Collect(maps.Keys(g.m.timed)); len(names) > 0 && plausible {
			cmd.Name = names[r.IntN(len(names))]
		}
	case commands.VerbRollback:
		cmd.Ticket, cmd.Env = "", ""
		cmd.Component = g.pick([]string{"backend", "payments", "ios", "web", "db"})
		if where := slices.Collect(maps.Keys(g.m.deployed)); len(where) > 0 && (plausible || forced != "") {
			// Mostly what is done somewhere, there, by someone who may.
			slices.SortFunc(where, func(a, b mWhere) int { return strings.Compare(a.env+" "+a.comp, b.env+" "+b.comp) })
			// Mostly one with a version to go back to.
			back := g.rollbackable()
			if len(back) == 0 || r.IntN(4) == 0 {
				back = where
			}
			w := back[r.IntN(len(back))]
			cmd.Component, cmd.Env = w.comp, w.env
			if w.env == g.m.env("").name && r.IntN(2) == 0 {
				cmd.Env = "" // the default environment
			}
			c.actor = []string{ann, bob, admin}[r.IntN(3)]
		}
		if r.IntN(3) == 0 {
			cmd.Build = g.pick([]string{"1.0", "2.0", "v1.0", "3.0"})
		}
	case commands.VerbWhere:
		if r.IntN(2) == 0 {
			cmd.Component = g.pick(modelComponents)
		}
	}
	if forced != "" {
		c.actor = forced
	}
	if v == junk {
		c.text = g.pick([]string{"accept PAY-1;rm", "dep", "dep launch PAY-1", "frobnicate", "lock", "dobro", "cancel PAY-1`id`", "here $(id)", "promote", "where backend in"})
	} else {
		c.text = cmd.String()
		// The ticket as a user may write it: PAY-1, pay-1, #PAY-1 or a
		// link (as the chat adapter hands it on, its markup unwrapped).
		if t := cmd.Ticket; t != "" {
			switch r.IntN(8) {
			case 0:
				c.text = strings.Replace(c.text, t, strings.ToLower(t), 1)
			case 1:
				c.text = strings.Replace(c.text, t, "#"+t, 1)
			case 2:
				c.text = strings.Replace(c.text, t, "https://jira.example.com/browse/"+t, 1)
			}
		}
	}
	parsed, err := commands.ParseIn(c.text, g.m.envNames())
	c.ticket, c.comp, c.env, c.build, c.noNeedAdmin, c.name, c.hotfix = parsed.Ticket, parsed.Component, parsed.Env, parsed.Build, parsed.NoNeedAdmin, parsed.Name, parsed.Hotfix
	c.verb, c.changes = parsed.Verb, parsed.Changes()
	if err != nil {
		c.verb, c.changes = "", commands.VerbOf(c.text).Changes()
	}
	c.cancelFails = r.IntN(4) == 0
	return c
}

// modelRun is one sequence: a fresh database, Service and model.
type modelRun struct {
	seed   uint64
	db     *storage.DB
	svc    *commands.Service
	start  *fakeExec
	finish *fakeExec
	cancel *fakeExec
	// What probeCancel found while cancel hooks ran.
	probeMu       sync.Mutex
	probes        int
	probeProblems []string
	m             *model
	now           time.Time
	clk           *clocktest.Clock
	advanced      time.Duration // the time steps' total
	prevOpen      []uint64
	asked         []commands.Message // every command sent, in order
	seenSeq       uint64
	log           []string
}

// modelEnvs is the configuration a sequence runs with: an odd seed the
// pipeline, an even one no environments, so each half keeps the other's
// figures honest.
func modelEnvs(seed uint64) []mEnv {
	if seed%2 == 1 {
		return modelPipeline
	}
	return modelPlain
}

func newModelRun(dir string, seed uint64) (*modelRun, error) {
	db, err := storage.Open(filepath.Join(dir, fmt.Sprintf("model-%d.db", seed)))
	if err != nil {
		return nil, err
	}
	tickets := map[string]commands.Ticket{}
	for k, comps := range modelTickets {
		tickets[k] = readyTicket(k, comps...)
	}
	mr := &modelRun{seed: seed, db: db, start: &fakeExec{}, finish: &fakeExec{}, cancel: &fakeExec{},
		m: &model{envs: modelEnvs(seed), frozen: map[mFreeze]bool{}, timed: map[string]mFreeze{}, deployed: map[mWhere]uint64{}, seen: map[string]bool{},
			ttl: modelTTL},
		now: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	mr.clk = clocktest.New(mr.now)
	mr.cancel.probe = mr.probeCancel
	hooks := commands.Hooks{Start: mr.start, Finish: mr.finish, Cancel: mr.cancel}
	policy := commands.Policy{
		Approvers:  []string{approver, "S0QA", ann, admin},
		Admins:     []string{admin},
		Components: modelComponents,
		Channel:    "C0REL",
		Rules: commands.Rules{Projects: []string{"PAY"}, ReadyStatuses: []string{"Ready for Release"},
			RequireAssignee: true, RequireFixVersion: true, RequiredFields: []string{"customfield_1"}},
	}
	if mr.m.configured() {
		for _, e := range mr.m.envs {
			policy.Envs = append(policy.Envs, commands.EnvPolicy{Name: e.name, Approvers: policy.Approvers, Admins: policy.Admins,
				Components: modelComponents, Hooks: hooks, Approval: e.approval, Approvals: e.approvals, NeedsAdmin: e.needsAdmin,
				After: e.after, Bake: e.bake, RequestAuto: e.requestAuto})
		}
	}
	mr.svc = commands.NewService(commands.Config{
		Store:   db,
		Tracker: &fakeTracker{tickets: tickets, errs: map[string]error{}},
		Hooks:   hooks,
		Groups:  groups{},
		Policy:  policy,
		Now:     func() time.Time { return mr.now },
		Log:     zerolog.Nop(),
		// Time steps (advance): the scheduler fires the approval expiries.
		Clock: mr.clk, ApprovalTTL: modelTTL,
	})
	return mr, nil
}

// probeCancel runs while a cancel hook runs: the invariants hold with the
// hook running, and the cancelled release still holds every lock it held
// (issue 12, item 3), so no other release can take them meanwhile.
func (mr *modelRun) probeCancel(job commands.Job) {
	snap, err := takeSnapshot(context.Background(), mr.db)
	problems := snap.violations(nil, true)
	if err != nil {
		problems = append(problems, err.Error())
	}
	found := false
	for _, r := range snap.releases {
		if r.Running == nil || r.Running.Attempt != job.Attempt {
			continue
		}
		found = true
		if !cancelling(r) {
			problems = append(problems, fmt.Sprintf("while its cancel hook runs, %s is %s with %s running", r.Ticket, r.State, r.Running.Phase))
		}
		for _, c := range r.Locks {
			if !slices.ContainsFunc(snap.locks, func(l commands.Lock) bool { return l.Component == c && l.Release == r.ID }) {
				problems = append(problems, fmt.Sprintf("while its cancel hook runs, %s no longer holds %s: locks %v", r.Ticket, c, snap.locks))
			}
		}
	}
	if !found {
		problems = append(problems, fmt.Sprintf("cancel hook attempt %s of %s runs, but no release names it running", job.Attempt, job.Ticket))
	}
	mr.probeMu.Lock()
	mr.probes++
	mr.probeProblems = append(mr.probeProblems, problems...)
	mr.probeMu.Unlock()
}

func (f *fakeExec) setFail(fail bool) {
	f.mu.Lock()
	f.fail = fail
	f.mu.Unlock()
}

// step runs c on the real Service and on the model, then checks that they
// agree and that the invariants hold. It returns what went wrong.
func (mr *modelRun) step(ctx context.Context, i int, c mCmd) (want, problems []string) {
	mr.log = append(mr.log, fmt.Sprintf("%2d. %s (%s): %s [start hook fails: %v, finish hook fails: %v, cancel hook fails: %v]", i+1, c.actor, c.via, c.text, c.startFails, c.finishFails, c.cancelFails))
	mr.start.setFail(c.startFails)
	mr.finish.setFail(c.finishFails)
	mr.cancel.setFail(c.cancelFails)
	msg := commands.Message{EventID: fmt.Sprintf("Ev%d-%d", mr.seed, i), User: c.actor, Channel: "C0REL",
		Text: c.text, Via: c.via, Time: mr.now}
	if fresh, err := mr.svc.Receive(ctx, msg); err != nil || !fresh {
		return nil, []string{fmt.Sprintf("Receive: fresh %v, %v", fresh, err)}
	}
	if err := mr.svc.Handle(ctx, msg); err != nil {
		return nil, []string{fmt.Sprintf("Handle: %v", err)}
	}
	mr.svc.Wait()
	at := mr.now
	mr.now = mr.now.Add(time.Minute)
	mr.clk.Advance(time.Minute) // no timer: Schedule runs only in advance
	want = mr.m.apply(c, at)
	problems = mr.verify(ctx, want, c.actor)
	mr.asked = append(mr.asked, msg)
	return want, problems
}

// advance is a time step: the clock moves by d while nothing else happens,
// then the scheduler runs until it sleeps again (every due time up to now
// fired once), and the model predicts what it did.
func (mr *modelRun) advance(ctx context.Context, i int, d time.Duration) (want, problems []string) {
	mr.log = append(mr.log, fmt.Sprintf("%2d. (time passes: %v)", i+1, d))
	mr.clk.Advance(d)
	mr.now = mr.now.Add(d)
	mr.advanced += d
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	n := mr.clk.Created()
	go func() {
		defer close(done)
		mr.svc.Schedule(sctx)
	}()
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	err := mr.clk.WaitCreated(wctx, n)
	wcancel()
	cancel()
	<-done
	if err != nil {
		return nil, []string{fmt.Sprintf("Schedule did not go back to sleep: %v", err)}
	}
	want = mr.m.expire(mr.now)
	return want, mr.verify(ctx, want, commands.ActorDobrobot)
}

// verify checks, after a step whose audit entries the model predicts as
// want, all by actor, that the store and the model agree and that the
// invariants hold.
func (mr *modelRun) verify(ctx context.Context, want []string, actor string) (problems []string) {
	snap, err := takeSnapshot(ctx, mr.db)
	if err != nil {
		return []string{err.Error()}
	}
	problems = snap.violations(mr.prevOpen, false)
	mr.prevOpen = snap.openIDs()
	mr.probeMu.Lock()
	problems = append(problems, mr.probeProblems...)
	mr.probeProblems = nil
	mr.probeMu.Unlock()

	// The audit entries this step appended: exactly the model's, all by the actor.
	var got []string
	for _, e := range snap.audit {
		if e.Seq <= mr.seenSeq {
			continue
		}
		got = append(got, entry(e.Action, e.Ticket, e.Env, e.Version, e.From, e.To))
		if e.Actor != actor {
			problems = append(problems, fmt.Sprintf("audit seq %d names %s, the actor is %s", e.Seq, e.Actor, actor))
		}
		mr.seenSeq = e.Seq
	}
	if !slices.Equal(want, got) {
		problems = append(problems, "audit entries of the step (-model +real):\n"+cmp.Diff(want, got))
	}

	// The store's releases and freezes: exactly the model's.
	var real []mRelease
	for _, r := range snap.releases {
		real = append(real, mRelease{ID: r.ID, Ticket: r.Ticket, Env: r.Env, Build: r.Build, State: r.State, NeedAdmin: r.NeedAdmin,
			Requester: r.Requester, Approver: r.Approver, Admin: r.Admin, Approvals: r.Approvals, Components: r.Components, Locks: r.Locks,
			Hotfix: r.Hotfix, FirstBy: r.FirstBy, RollbackOf: r.RollbackOf, RolledBack: r.RolledBack, Replaced: r.Replaced})
	}
	if model := mr.m.releases(); !slices.EqualFunc(model, real, sameRelease) {
		problems = append(problems, "releases (-model +real):\n"+cmp.Diff(model, real, cmpopts.EquateEmpty(), cmpopts.IgnoreUnexported(mRelease{})))
	}
	frozen := map[mFreeze]bool{}
	for _, l := range snap.locks {
		if l.Frozen() {
			frozen[mFreeze{l.Component, l.Env}] = true
		}
	}
	if !maps.Equal(mr.m.frozen, frozen) {
		problems = append(problems, fmt.Sprintf("freezes: model %v, real %v", mr.m.frozen, frozen))
	}
	return problems
}

// checkReplies checks the effects of the whole sequence, in outbox order:
// every command got exactly one answer (a reply, or the audit file an
// admin asked for), to the asker where they asked (a
// hook's result may follow by DM to whoever ran it), and every effect comes
// from a command or from a hook it ran.
func (mr *modelRun) checkReplies(ctx context.Context) []string {
	effects, err := mr.db.Pending(ctx, 0)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	replies := make([]int, len(mr.asked))
	step := -1
	for _, e := range effects {
		if e.Event != "" {
			next := slices.IndexFunc(mr.asked, func(m commands.Message) bool { return m.EventID == e.Event })
			if next < step {
				problems = append(problems, fmt.Sprintf("effect %d of event %s comes after effects of a later command", e.ID, e.Event))
			}
			step = next
		}
		if step < 0 {
			problems = append(problems, fmt.Sprintf("effect %d (%s) comes from no command", e.ID, e.Kind))
			continue
		}
		m := mr.asked[step]
		switch {
		case e.Kind == commands.EffectFile && e.Event == m.EventID:
			replies[step]++ // audit by DM: the file is the answer
		case e.Kind != commands.EffectReply:
		case e.Event == m.EventID:
			replies[step]++
			if e.User != m.User || e.Via != m.Via || e.Channel != m.Channel {
				problems = append(problems, fmt.Sprintf("step %d: reply to %s via %s in %q, want %s via %s in %s", step+1, e.User, e.Via, e.Channel, m.User, m.Via, m.Channel))
			}
		case e.User != m.User || e.Via != commands.ViaDM || e.Channel != "":
			problems = append(problems, fmt.Sprintf("step %d: hook result told to %s via %s in %q, want %s by DM", step+1, e.User, e.Via, e.Channel, m.User))
		}
	}
	for i, n := range replies {
		if n != 1 {
			problems = append(problems, fmt.Sprintf("step %d: %d replies to the asker, want 1", i+1, n))
		}
	}
	return problems
}

// modelDir returns where the sequences keep their databases:
// DOBROBOT_MODEL_DIR, else a directory in /dev/shm when there is one, else
// t.TempDir(). The databases are real bbolt files either way; this test
// checks the logic and the transactions, not durability (the crash tests
// do), and on a RAM disk it is bound by the CPU, not by fsync.
func modelDir(t *testing.T) string {
	base := os.Getenv("DOBROBOT_MODEL_DIR")
	if base == "" {
		if fi, err := os.Stat("/dev/shm"); err != nil || !fi.IsDir() {
			return t.TempDir()
		}
		base = "/dev/shm"
	}
	dir, err := os.MkdirTemp(base, "dobrobot-model-")
	if err != nil {
		t.Logf("falling back to a temporary directory: %v", err)
		return t.TempDir()
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func modelConfig(t *testing.T) (sequences int, seed uint64) {
	switch {
	case testing.Short():
		sequences = 100
	case raceEnabled:
		sequences = raceModelSequences
	default:
		sequences = defaultModelSequences
	}
	if s := os.Getenv("DOBROBOT_MODEL_SEQUENCES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("DOBROBOT_MODEL_SEQUENCES=%q: want a positive number", s)
		}
		sequences = n
	}
	seed = 1
	switch s := os.Getenv("DOBROBOT_MODEL_SEED"); s {
	case "":
	case "random":
		seed = rand.Uint64() >> 1
	default:
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("DOBROBOT_MODEL_SEED=%q: want a number or random", s)
		}
		seed = n
	}
	return sequences, seed
}

// TestModelBasedSequences runs the sequences in this process: all of them
// without the race detector, raceModelSequences with it (which slows them
// eightfold); TestModelBasedSequencesWithoutRace then runs the rest.
func TestModelBasedSequences(t *testing.T) {
	sequences, seed0 := modelConfig(t)
	runModel(t, sequences, seed0)
}

// TestModelBasedSequencesWithoutRace, in a test binary built with -race (as
// make test builds it), runs defaultModelSequences more sequences in a child
// go test without the race detector, so that CI checks thousands of
// sequences in seconds. The in-process run above keeps the same code under
// the race detector.
func TestModelBasedSequencesWithoutRace(t *testing.T) {
	if !raceEnabled {
		t.Skip("built without -race: TestModelBasedSequences runs every sequence")
	}
	if testing.Short() || os.Getenv("DOBROBOT_MODEL_SEQUENCES") != "" {
		t.Skip("-short or DOBROBOT_MODEL_SEQUENCES: TestModelBasedSequences runs the sequences asked for")
	}
	_, seed0 := modelConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-run", "^TestModelBasedSequences$", "-v", ".")
	cmd.Env = append(os.Environ(),
		"DOBROBOT_MODEL_SEQUENCES="+strconv.Itoa(defaultModelSequences),
		"DOBROBOT_MODEL_SEED="+strconv.FormatUint(seed0+raceModelSequences, 10))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test without -race: %v\n%s", err, out)
	}
	found := false
	for line := range strings.Lines(string(out)) {
		if strings.Contains(line, "FIGURE model") {
			t.Log(strings.TrimSpace(line))
			found = true
		}
	}
	if !found {
		t.Fatalf("the child run reported no figure:\n%s", out)
	}
}

func runModel(t *testing.T, sequences int, seed0 uint64) {
	for _, u := range commands.Help {
		if u.Verb.Changes() && !slices.Contains(modeled, u.Verb) {
			t.Fatalf("the verb table has %q, which changes state, and the model has no rule for it: add one to model.apply and to modeled", u.Verb)
		}
	}
	dir := modelDir(t)
	ctx := context.Background()
	var (
		next                     atomic.Int64
		steps, changes, refusals atomic.Int64
		noops, failed            atomic.Int64
		timeSteps                atomic.Int64
		cancelProbes             atomic.Int64
		stateSeen                sync.Map
		mu                       sync.Mutex
		firstFailure             string
	)
	began := time.Now()
	var wg sync.WaitGroup
	for range 4 * runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(sequences) || failed.Load() > 0 {
					return
				}
				seed := seed0 + uint64(i)
				mr, err := newModelRun(dir, seed)
				if err != nil {
					t.Error(err)
					failed.Add(1)
					return
				}
				g := &gen{rng: rand.New(rand.NewPCG(seed, 0x646f62726f)), m: mr.m}
				// Time steps come from a generator of their own, so that
				// the commands of a seed stay those it had before them.
				timeRNG := rand.New(rand.NewPCG(seed, 0x74696d65))
				// A time step comes between commands, never instead of
				// one: each sequence keeps its modelSteps commands.
				for s, cmds := 0, 0; cmds < modelSteps; s++ {
					var want, problems []string
					if d := []time.Duration{5, 10, 20, 30}[timeRNG.IntN(4)] * time.Minute; timeRNG.IntN(6) == 0 && mr.advanced+d <= modelAdvanceMax {
						want, problems = mr.advance(ctx, s, d)
						timeSteps.Add(1)
					} else {
						want, problems = mr.step(ctx, s, g.next())
						cmds++
						steps.Add(1)
					}
					switch {
					case len(want) == 0:
						noops.Add(1)
					case strings.HasPrefix(want[0], string(commands.ActionRefused)+" "):
						refusals.Add(1)
					default:
						changes.Add(1)
					}
					for _, r := range mr.m.rels {
						stateSeen.Store(r.State, true)
						if r.Env != "" {
							stateSeen.Store(commands.State(r.State+" in "+commands.State(r.Env)), true)
						}
					}
					for _, w := range want {
						if strings.HasPrefix(w, string(commands.ActionApprove)+" ") {
							stateSeen.Store(commands.State("approval short of the last"), true)
						}
						if strings.HasPrefix(w, string(commands.ActionHotfix)+" ") {
							stateSeen.Store(commands.State("a hotfix let go first"), true)
						}
					}
					for k := range mr.m.seen {
						stateSeen.Store(commands.State(k), true)
					}
					if cmds == modelSteps && len(problems) == 0 {
						problems = mr.checkReplies(ctx)
					}
					if len(problems) > 0 {
						failed.Add(1)
						mu.Lock()
						if firstFailure == "" {
							firstFailure = fmt.Sprintf("sequence with seed %d (DOBROBOT_MODEL_SEED=%d DOBROBOT_MODEL_SEQUENCES=1) diverged at step %d:\n%s\n\ncommands:\n%s",
								seed, seed, s+1, strings.Join(problems, "\n"), strings.Join(mr.log, "\n"))
						}
						mu.Unlock()
						break
					}
				}
				mr.probeMu.Lock()
				cancelProbes.Add(int64(mr.probes))
				mr.probeMu.Unlock()
				if err := mr.db.Close(); err != nil {
					t.Error(err)
				}
				_ = os.Remove(mr.db.Path())
			}
		})
	}
	wg.Wait()
	if firstFailure != "" {
		t.Fatal(firstFailure)
	}
	var states []string
	stateSeen.Range(func(k, _ any) bool {
		states = append(states, string(k.(commands.State)))
		return true
	})
	slices.Sort(states)
	t.Logf("FIGURE model: %d sequences × %d steps = %d commands (seeds %d…%d), %d changes, %d refusals, %d no-ops, 0 divergences, %d time steps, invariants I1–I5 checked after every step and while each of %d cancel hooks ran, in %v; states reached: %v",
		sequences, modelSteps, steps.Load(), seed0, seed0+uint64(sequences)-1, changes.Load(), refusals.Load(), noops.Load(),
		timeSteps.Load(), cancelProbes.Load(), time.Since(began).Round(time.Millisecond), states)
	// The generator must reach every state, in both environments of the
	// pipeline too, or the test proves little.
	for _, s := range commands.States {
		if s != commands.StateNone && !slices.Contains(states, string(s)) && sequences >= 100 {
			t.Errorf("no sequence reached %s", s)
		}
	}
	for _, s := range []string{"done in qa", "deploying in production", "done in production", "cancelled in production", "approval short of the last",
		"rolled back", "incident", "a rollback passes over a version rolled back", "an approval expired", "an approval expired in production", "a hotfix let go first", "a failed deploy retried with a ready release ahead", "a hotfix starts ahead of an earlier release", "a hotfix let first holds back an earlier release"} {
		if !slices.Contains(states, s) && sequences >= 100 {
			t.Errorf("no sequence of the pipeline reached %s", s)
		}
	}
}
