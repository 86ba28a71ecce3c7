package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/dobrobot/dobrobot/commands"
	"github.com/dobrobot/dobrobot/storage"
)

// Figure 3's pipeline rows (issue 14): queue, where and dep start with 100k
// finished releases spread over three environments, next to the same
// commands on a three-environment file without history.

// envHistoryShape numbers the shape of the three-environment history (the
// pipeline and the policy): a cached file of another shape is not reused.
const envHistoryShape = 2

// benchEnvs are the environments of the pipeline rows, in promotion order.
var benchEnvs = []string{"dev", "qa", "production"}

// approver2 is production's second approver: it needs two.
const approver2 = "U0APPROVER2"

// envPolicy is the policy dobrobot's configuration resolves for
//
//	environments:
//	  - name: dev
//	    needs_admin: false
//	  - name: qa
//	    after: dev
//	    request: auto
//	    needs_admin: false
//	  - name: production
//	    after: qa
//	    request: auto
//	    approvals: 2
//	    roles: {approvers: [U0APPROVER, U0APPROVER2]}
//
// with the top-level roles and components of newService: the seed flow
// (docs/pipeline.md), approvers in every environment so that figure 3's
// open queue (requested releases, as in the single-environment rows) is
// the same in each. It is built here because the resolution lives in
// cmd/dobrobot's package main, which dobrobench cannot import;
// cmd/dobrobot's resolveEnvs is what it mirrors (each environment a
// complete policy, approvals at least 1, the last environment the
// default).
func envPolicy() commands.Policy {
	env := func(name string) commands.EnvPolicy {
		return commands.EnvPolicy{Name: name, Approvers: []string{approver}, Admins: []string{admin},
			Components: []string{component, "payments"}, Approval: true, Approvals: 1, NeedsAdmin: true}
	}
	dev, qa, prod := env("dev"), env("qa"), env("production")
	dev.NeedsAdmin = false
	qa.NeedsAdmin, qa.After, qa.RequestAuto = false, "dev", true
	prod.After, prod.RequestAuto, prod.Approvals, prod.Approvers = "qa", true, 2, []string{approver, approver2}
	return commands.Policy{Approvers: []string{approver}, Admins: []string{admin},
		Components: []string{component, "payments"}, Channel: channel,
		Envs: []commands.EnvPolicy{dev, qa, prod}, DefaultEnv: "production"}
}

// newEnvService is newService with the three environments.
func newEnvService(store commands.Store, now func() time.Time) *commands.Service {
	return commands.NewService(commands.Config{
		Store: store, Tracker: anyTicket{}, Now: now, Log: zerolog.Nop(), Policy: envPolicy(),
	})
}

// pipeline is one ticket's way through the three environments, as the seed
// flow goes (docs/pipeline.md): requested in dev, approved and deployed
// there, requested in qa by itself, approved and deployed, requested in
// production by itself, approved by two, claimed by an owner and deployed.
// Two refusals are on the way, as in the single-environment history: the
// requester (no approver) accepting their own production release, and a
// dep start before an owner claimed it. The command at index pipelineStart is production's
// dep start, the one figure 3 times; queue and where are timed just before
// it.
func pipeline(ticket, requester, build string) [][2]string {
	return [][2]string{
		{requester, "dobro " + ticket + " to dev version " + build},
		{approver, "accept " + ticket + " in dev"},
		{requester, "dep start " + ticket + " in dev"},
		{requester, "dep finish " + ticket + " in dev"},
		{approver, "accept " + ticket + " in qa"},
		{requester, "dep start " + ticket + " in qa"},
		{requester, "dep finish " + ticket + " in qa"},
		{requester, "accept " + ticket + " in production"},
		{approver, "accept " + ticket + " in production"},
		{approver2, "accept " + ticket + " in production"},
		{requester, "dep start " + ticket + " in production"},
		{admin, "here " + ticket + " in production"},
		{requester, "dep start " + ticket + " in production"},
		{requester, "dep finish " + ticket + " in production"},
	}
}

// pipelineStart is the index of production's (successful) dep start in
// pipeline's commands.
const pipelineStart = 12

// Template names: the generated history copies one ticket's pipeline as the
// core wrote it, with these replaced.
const (
	tplTicket    = "TPL-1"
	tplRequester = "U0TPLREQ"
	tplBuild     = "9.8.7654"
)

// envTemplate is what the core wrote for one ticket's pipeline: its
// releases (oldest first), audit entries and "what is where" entries, at
// times counted from historyStart.
type envTemplate struct {
	releases []commands.Release
	audit    []commands.AuditEntry
	deployed []commands.Deployed
}

// recordTemplate runs pipeline through a Service with the three
// environments on a new file in dir, a minute per command, and returns
// what it stored. Every command must succeed except the two refusals it
// contains; the shape of the history is then the core's own.
func recordTemplate(ctx context.Context, dir string) (envTemplate, error) {
	var tpl envTemplate
	path := filepath.Join(dir, "template-3env.db")
	os.Remove(path)
	defer os.Remove(path)
	db, err := storage.Open(path)
	if err != nil {
		return tpl, err
	}
	defer db.Close()
	now := historyStart
	d := &driver{svc: newEnvService(db, func() time.Time { return now })}
	for _, c := range pipeline(tplTicket, tplRequester, tplBuild) {
		if err := d.do(ctx, c[0], c[1]); err != nil {
			return tpl, fmt.Errorf("template %q: %w", c[1], err)
		}
		now = now.Add(time.Minute)
	}
	err = db.View(ctx, func(tx commands.Tx) error {
		rels, err := tx.Releases(tplTicket, 0)
		if err != nil {
			return err
		}
		for i := len(rels) - 1; i >= 0; i-- {
			tpl.releases = append(tpl.releases, rels[i])
		}
		tpl.deployed, err = tx.Deployed()
		return err
	})
	if err != nil {
		return tpl, err
	}
	err = db.Audit(ctx, commands.AuditFilter{}, func(e commands.AuditEntry) error {
		tpl.audit = append(tpl.audit, e)
		return nil
	})
	if err != nil {
		return tpl, err
	}
	if len(tpl.releases) != len(benchEnvs) {
		return tpl, fmt.Errorf("template: %d releases, want one per environment (%d)", len(tpl.releases), len(benchEnvs))
	}
	for _, r := range tpl.releases {
		if r.State != commands.StateDone {
			return tpl, fmt.Errorf("template: %s in %s is %s, want done", r.Ticket, r.Env, r.State)
		}
	}
	return tpl, nil
}

// generateEnvHistory writes releases finished releases over the three
// environments by copying tpl's pipeline, one ticket after another (the
// last ticket may stop before production), through storage's Tx: each
// release, its audit entries and the "what is where" entries its done
// transition wrote, with the ticket, requester and version of its own, 30
// minutes apart. It returns the audit entries written.
func generateEnvHistory(ctx context.Context, db *storage.DB, tpl envTemplate, releases int) (int, error) {
	const ticketsPerTx = 1000
	written, rel, ticket := 0, 0, 0
	for rel < releases {
		err := db.Update(ctx, func(tx commands.Tx) error {
			for range ticketsPerTx {
				if rel >= releases {
					break
				}
				ticket++
				key := fmt.Sprintf("PAY-%d", ticket)
				shift := time.Duration(ticket) * 30 * time.Minute
				r := strings.NewReplacer(tplTicket, key, tplRequester, fmt.Sprintf("U%08d", ticket%5000),
					tplBuild, fmt.Sprintf("1.%d.%d", ticket/1000, ticket%1000))
				at := func(t time.Time) time.Time {
					if t.IsZero() {
						return t
					}
					return t.Add(shift)
				}
				// A release's audit entries go before the next release
				// is opened, as the core writes them: the entries of
				// each environment end with its done transition.
				next := 0
				for _, src := range tpl.releases[:min(len(tpl.releases), releases-rel)] {
					nr := src
					nr.ID, nr.Version = 0, 0
					nr.Ticket, nr.Requester, nr.Build = r.Replace(src.Ticket), r.Replace(src.Requester), r.Replace(src.Build)
					nr.Summary, nr.URL = r.Replace(src.Summary), r.Replace(src.URL)
					nr.Created, nr.Updated, nr.Started = at(src.Created), at(src.Updated), at(src.Started)
					if src.LastHook != nil {
						h := *src.LastHook
						h.Ended = at(h.Ended)
						nr.LastHook = &h
					}
					stored, err := tx.PutRelease(nr)
					if err != nil {
						return err
					}
					rel++
					for ; next < len(tpl.audit); next++ {
						e := tpl.audit[next]
						if e.Env != "" && e.Env != src.Env && e.Action == commands.ActionRequest {
							break // the next environment's release opens here
						}
						e.Seq, e.PrevHash, e.Hash = 0, "", ""
						e.Time, e.Actor, e.Ticket, e.Version, e.Detail = at(e.Time), r.Replace(e.Actor), r.Replace(e.Ticket), r.Replace(e.Version), r.Replace(e.Detail)
						if _, err := tx.AppendAudit(e); err != nil {
							return err
						}
						written++
					}
					for _, d := range tpl.deployed {
						if d.Release == src.ID {
							d.Release, d.Ticket, d.Build, d.By, d.Done = stored.ID, r.Replace(d.Ticket), r.Replace(d.Build), r.Replace(d.By), at(d.Done)
							if err := tx.PutDeployed(d); err != nil {
								return err
							}
						}
					}
				}
			}
			return nil
		})
		if err != nil {
			return written, fmt.Errorf("generate the three-environment history: %w", err)
		}
	}
	return written, nil
}

// seedOpenEnvs adds figure 3's open queue to each environment through the
// Service: ten requested releases of a version each, as the
// single-environment rows have ten.
func seedOpenEnvs(ctx context.Context, db *storage.DB) error {
	d := &driver{svc: newEnvService(db, time.Now), seq: 1 << 20}
	for _, env := range benchEnvs {
		for i := 1; i <= 10; i++ {
			text := fmt.Sprintf("dobro QUEUED-%d to %s version 2.0.%d", i, env, i)
			if err := d.do(ctx, fmt.Sprintf("U0Q%06d", i), text); err != nil {
				return fmt.Errorf("seed %q: %w", text, err)
			}
		}
	}
	return emptyOutbox(ctx, db)
}

// emptyOutbox marks every effect delivered, as the sender would: nothing
// delivers the outbox in figure 3.
func emptyOutbox(ctx context.Context, db *storage.DB) error {
	pending, err := db.Pending(ctx, 0)
	if err != nil {
		return err
	}
	var ids []uint64
	for _, e := range pending {
		ids = append(ids, e.ID)
	}
	return db.Delivered(ctx, ids...)
}

// envHistoryResult is figure 3's pipeline rows.
type envHistoryResult struct {
	queueEmpty, queueFull, whereEmpty, whereFull, startEmpty, startFull latency
}

// benchEnvHistory runs a ticket's pipeline through a Service with the three
// environments on each of two files with the same open queues, one without
// history and one with fullPath's, alternating between them command by
// command (which goes first alternates by round), and times queue, where and production's dep start (where the
// promotion rule is checked) in each round.
func benchEnvHistory(ctx context.Context, emptyPath, fullPath string, rounds int) (envHistoryResult, error) {
	var res envHistoryResult
	type side struct {
		db                  *storage.DB
		d                   *driver
		queue, where, start []time.Duration
	}
	var sides [2]*side
	for i, path := range []string{emptyPath, fullPath} {
		db, err := storage.Open(path)
		if err != nil {
			return res, err
		}
		defer db.Close()
		sides[i] = &side{db: db, d: &driver{svc: newEnvService(db, time.Now)}}
	}
	timed := func(s *side, into *[]time.Duration, user, text string) error {
		t0 := time.Now()
		if err := s.d.do(ctx, user, text); err != nil {
			return err
		}
		*into = append(*into, time.Since(t0))
		return nil
	}
	for round := range rounds {
		ticket := fmt.Sprintf("HIST-%d", round+1)
		user := fmt.Sprintf("U0HIST%04d", round%100)
		steps := pipeline(ticket, user, fmt.Sprintf("3.0.%d", round+1))
		// Each side goes first every other round: the timed commands of
		// the side that goes second follow the other's dep start (a commit
		// and its garbage), those of the first follow a claim.
		order := []*side{sides[0], sides[1]}
		if round%2 == 1 {
			order[0], order[1] = sides[1], sides[0]
		}
		for i, c := range steps {
			for _, s := range order {
				if i == pipelineStart {
					if err := timed(s, &s.queue, user, "queue"); err != nil {
						return res, err
					}
					if err := timed(s, &s.where, user, "where"); err != nil {
						return res, err
					}
					if err := timed(s, &s.start, c[0], c[1]); err != nil {
						return res, err
					}
					continue
				}
				if err := s.d.do(ctx, c[0], c[1]); err != nil {
					return res, err
				}
			}
		}
		for _, s := range sides {
			if err := emptyOutbox(ctx, s.db); err != nil {
				return res, err
			}
			if err := wentThrough(ctx, s.db, ticket); err != nil {
				return res, fmt.Errorf("round %d on %s: %w", round+1, s.db.Path(), err)
			}
		}
	}
	res.queueEmpty, res.whereEmpty, res.startEmpty = summarize(sides[0].queue), summarize(sides[0].where), summarize(sides[0].start)
	res.queueFull, res.whereFull, res.startFull = summarize(sides[1].queue), summarize(sides[1].where), summarize(sides[1].start)
	return res, nil
}

// wentThrough checks that ticket is done in every environment: a refused
// step of the pipeline (say, a rule of the queue that changed) would
// otherwise be timed as if it were the command.
func wentThrough(ctx context.Context, db *storage.DB, ticket string) error {
	return doneIn(ctx, db, ticket, benchEnvs)
}

// doneIn checks that ticket has a release done in each of envs (a release
// that names no environment is in commands.DefaultEnv).
func doneIn(ctx context.Context, db *storage.DB, ticket string, envs []string) error {
	return db.View(ctx, func(tx commands.Tx) error {
		rels, err := tx.Releases(ticket, 0)
		if err != nil {
			return err
		}
		done := map[string]bool{}
		for _, r := range rels {
			if r.State == commands.StateDone {
				done[r.EnvName()] = true
			}
		}
		for _, env := range envs {
			if !done[env] {
				return fmt.Errorf("%s is not done in %s: a step of the pipeline was refused", ticket, env)
			}
		}
		return nil
	})
}
