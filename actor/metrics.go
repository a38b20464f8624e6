package actor

import "github.com/prometheus/client_golang/prometheus"

// metrics of one runtime. Registered on Config.Registerer when set.
type metrics struct {
	turnSeconds    *prometheus.HistogramVec
	mailboxDepth   prometheus.Histogram
	commitBatch    prometheus.Histogram
	commitSeconds  prometheus.Histogram
	commitWait     prometheus.Histogram
	commitFailures prometheus.Counter
	alarmsFired    prometheus.Counter
	alarmsRetried  prometheus.Counter
	alarmsFailed   prometheus.Counter
	actorsInMemory prometheus.Gauge
	evictions      prometheus.Counter
	overloaded     prometheus.Counter
	panics         prometheus.Counter
	duplicates     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		turnSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "holdfast_turn_seconds",
			Help:    "Time from a call reaching an actor to its reply leaving the output gate (for CallEarly, to the caller's OutputGate.Wait returning; for a deferred turn, Turn.DeferCommit, including the wait for a commit to ride along in).",
			Buckets: prometheus.ExponentialBuckets(10e-6, 2.5, 14),
		}, []string{"namespace"}),
		mailboxDepth: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "holdfast_mailbox_depth",
			Help:    "Calls already waiting for the actor when a call arrives.",
			Buckets: []float64{0, 1, 2, 4, 8, 16, 64, 256, 1024},
		}),
		commitBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "holdfast_commit_batch_writes",
			Help:    "Turn writes coalesced into one bbolt commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 13),
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "holdfast_fsync_seconds",
			Help:    "Duration of one group commit (bbolt commit with its fdatasyncs).",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 14),
		}),
		commitWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "holdfast_commit_wait_seconds",
			Help:    "Time from a turn write becoming urgent to its being durable: the rest of the commit in flight, if any, then its own group commit. What a writing turn's reply waits. An urgent write counts from its queueing; a demand of a deferred write (Turn.DeferCommit, actor.WithCommitDeferred) by OutputGate.Hurry or a reader of it counts from the demand; deferred writes nobody demanded ride along uncounted.",
			Buckets: prometheus.ExponentialBuckets(25e-6, 1.5, 22),
		}),
		commitFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "holdfast_commit_failures_total", Help: "Failed group commits (each stops the node's writes)."}),
		alarmsFired:    prometheus.NewCounter(prometheus.CounterOpts{Name: "holdfast_alarms_fired_total", Help: "Alarms whose turn succeeded."}),
		alarmsRetried:  prometheus.NewCounter(prometheus.CounterOpts{Name: "holdfast_alarms_retried_total", Help: "Alarm attempts that failed and were scheduled again."}),
		alarmsFailed:   prometheus.NewCounter(prometheus.CounterOpts{Name: "holdfast_alarms_given_up_total", Help: "Alarms dropped after their last retry."}),
		actorsInMemory: prometheus.NewGauge(prometheus.GaugeOpts{Name: "holdfast_actors_in_memory", Help: "Activated actors."}),
		evictions:      prometheus.NewCounter(prometheus.CounterOpts{Name: "holdfast_evictions_total", Help: "Idle actors evicted from memory."}),
		overloaded:     prometheus.NewCounter(prometheus.CounterOpts{Name: "holdfast_overloaded_total", Help: "Calls refused because an actor's mailbox was full."}),
		panics:         prometheus.NewCounter(prometheus.CounterOpts{Name: "holdfast_turn_panics_total", Help: "Turns whose code panicked (rolled back, actor reset)."}),
		duplicates:     prometheus.NewCounter(prometheus.CounterOpts{Name: "holdfast_duplicate_requests_total", Help: "Mutating calls answered from their idempotency record."}),
	}
	if reg != nil {
		reg.MustRegister(m.turnSeconds, m.mailboxDepth, m.commitBatch, m.commitSeconds, m.commitWait, m.commitFailures,
			m.alarmsFired, m.alarmsRetried, m.alarmsFailed, m.actorsInMemory, m.evictions, m.overloaded, m.panics, m.duplicates)
	}
	return m
}
