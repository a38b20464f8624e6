package cluster

import (
	"time"

	"github.com/holdfast/holdfast/cluster/ownership"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics of one node's lease and directory watch. Registered on
// Config.Registerer when set.
//
// A survivor revokes a dead node's lease only after TTL + ε of credited
// time, so rate(holdfast_cluster_lease_credit_seconds_total) below 1 is
// failover being delayed, and the renewal outcomes and watch restarts
// say why.
type metrics struct {
	renewSeconds  prometheus.Histogram
	renewals      *prometheus.CounterVec
	credit        prometheus.Counter
	watchRestarts *prometheus.CounterVec
}

// Renewal results. "timeout" is a renewal without a reply in time (its
// outcome unknown), "error" one refused before it reached the stream
// leader, "conflict" a revision mismatch: the lease was revoked.
const (
	renewOK       = "ok"
	renewTimeout  = "timeout"
	renewConflict = "conflict"
	renewError    = "error"
)

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		renewSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "holdfast_cluster_lease_renewal_seconds",
			Help:    "Time from sending a renewal of this node's lease (a compare-and-set on the directory) to its result.",
			Buckets: prometheus.ExponentialBuckets(500e-6, 2.5, 12),
		}),
		renewals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "holdfast_cluster_lease_renewals_total",
			Help: "Renewals of this node's lease by result: ok, timeout (no reply in time, outcome unknown), conflict (revoked), error (not applied).",
		}, []string{"result"}),
		credit: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "holdfast_cluster_lease_credit_seconds_total",
			Help: "Claimant time credited: time during which this node's own renewals succeeded. Other nodes' leases expire only on this clock.",
		}),
		watchRestarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "holdfast_cluster_directory_watch_restarts_total",
			Help: "Restarts of the directory watch by reason: lag (a write this node saw acknowledged was not delivered in time), stall (behind the stream), closed.",
		}, []string{"reason"}),
	}
	for _, r := range []string{renewOK, renewTimeout, renewConflict, renewError} {
		m.renewals.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.renewSeconds, m.renewals, m.credit, m.watchRestarts)
	}
	return m
}

// renewal records one renewal's latency and result.
func (m *metrics) renewal(took time.Duration, s ownership.Status) {
	m.renewSeconds.Observe(took.Seconds())
	r := renewError
	switch s {
	case ownership.StatusOK:
		r = renewOK
	case ownership.StatusUnknown:
		r = renewTimeout
	case ownership.StatusMismatch:
		r = renewConflict
	}
	m.renewals.WithLabelValues(r).Inc()
}
