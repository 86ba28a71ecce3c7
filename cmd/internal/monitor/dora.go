package monitor

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dobrobot/dobrobot/commands"
)

// DORAWindow is the window of the DORA gauges: the last 7 days, the
// figures report last 7d gives.
const DORAWindow = 7 * 24 * time.Hour

// doraCollector serves the four keys per environment from a rolling
// window fed as entries are appended: a scrape reads no log, and costs the
// environments and what fell out of the window since the last one.
type doraCollector struct {
	cur atomic.Pointer[commands.RollingFigures] // nil until StartDORA
	now func() time.Time
}

var (
	descDeploys = prometheus.NewDesc("dobrobot_dora_deploys", "Releases done in the last 7 days, by environment (deployment frequency).", []string{"env"}, nil)
	descLead    = prometheus.NewDesc("dobrobot_dora_lead_time_p50_seconds", "Median lead time (request to done) of the releases done in the last 7 days; absent while there are none.", []string{"env"}, nil)
	descLeadN   = prometheus.NewDesc("dobrobot_dora_lead_time_releases", "Releases the lead time rests on.", []string{"env"}, nil)
	descCFR     = prometheus.NewDesc("dobrobot_dora_change_failure_rate", "Failed deployments over those that ended in the last 7 days (0 to 1); absent while none ended.", []string{"env"}, nil)
	descCFRN    = prometheus.NewDesc("dobrobot_dora_change_failure_releases", "Deployments that ended in the last 7 days: what the change failure rate rests on.", []string{"env"}, nil)
	descTTR     = prometheus.NewDesc("dobrobot_dora_time_to_restore_p50_seconds", "Median time to restore of the failures of the last 7 days restored since; absent while there are none.", []string{"env"}, nil)
	descTTRN    = prometheus.NewDesc("dobrobot_dora_time_to_restore_releases", "Restored failures the time to restore rests on.", []string{"env"}, nil)
	descUnrest  = prometheus.NewDesc("dobrobot_dora_unrestored", "Failures of the last 7 days not restored yet.", []string{"env"}, nil)
)

// Describe sends the descriptions of the DORA gauges.
func (c *doraCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDeploys, descLead, descLeadN, descCFR, descCFRN, descTTR, descTTRN, descUnrest} {
		ch <- d
	}
}

// Collect sends each environment's figures over the window ending now.
func (c *doraCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.cur.Load()
	if r == nil {
		return
	}
	for _, e := range r.Figures(c.now()) {
		g := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, e.Env)
		}
		g(descDeploys, float64(e.Deploys))
		g(descLeadN, float64(e.Lead.N))
		if e.Lead.N > 0 {
			g(descLead, e.Lead.P50.Seconds())
		}
		g(descCFRN, float64(e.Ended))
		if e.Ended > 0 {
			g(descCFR, float64(e.Failed)/float64(e.Ended))
		}
		g(descTTRN, float64(e.Restore.N))
		if e.Restore.N > 0 {
			g(descTTR, e.Restore.P50.Seconds())
		}
		g(descUnrest, float64(e.Unrestored))
	}
}

// StartDORA primes the DORA gauges from the log, once, with what a report
// of the window ending now reads, and from then on takes the entries
// Audited is given. It is called at the start of each term, before the
// Service writes: a term may follow another instance's, whose entries
// only the log has.
func (m *Metrics) StartDORA(ctx context.Context, log commands.AuditReader) error {
	r := commands.NewRollingFigures(DORAWindow)
	if _, err := commands.PrimeRolling(ctx, log, r, m.dora.now()); err != nil {
		m.dora.cur.Store(nil) // absent rather than the last term's, stale
		return err
	}
	m.dora.cur.Store(r)
	return nil
}

// Audited feeds the entries a transaction appended, once it committed
// (commands.WatchAudit); before StartDORA it does nothing. An entry the
// priming read already is not counted twice.
func (m *Metrics) Audited(es []commands.AuditEntry) {
	r := m.dora.cur.Load()
	if r == nil {
		return
	}
	for _, e := range es {
		r.Add(e)
	}
}

// StopDORA drops the DORA gauges at the end of a term: another instance
// leads and writes now, and a follower's figures would go stale.
func (m *Metrics) StopDORA() { m.dora.cur.Store(nil) }
