package cluster

import (
	"testing"
	"time"

	"github.com/holdfast/holdfast/cluster/ownership"
	"github.com/prometheus/client_golang/prometheus"
)

func TestRenewalMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	for _, s := range []ownership.Status{ownership.StatusOK, ownership.StatusOK, ownership.StatusUnknown, ownership.StatusMismatch, ownership.StatusFailed} {
		m.renewal(3*time.Millisecond, s)
	}
	m.credit.Add(1.5)
	m.watchRestarts.WithLabelValues("lag").Inc()

	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, mt := range f.GetMetric() {
			name := f.GetName()
			for _, l := range mt.GetLabel() {
				name += "/" + l.GetValue()
			}
			switch {
			case mt.GetCounter() != nil:
				got[name] = mt.GetCounter().GetValue()
			case mt.GetHistogram() != nil:
				got[name] = float64(mt.GetHistogram().GetSampleCount())
			}
		}
	}
	want := map[string]float64{
		"holdfast_cluster_lease_renewals_total/ok":            2,
		"holdfast_cluster_lease_renewals_total/timeout":       1,
		"holdfast_cluster_lease_renewals_total/conflict":      1,
		"holdfast_cluster_lease_renewals_total/error":         1,
		"holdfast_cluster_lease_renewal_seconds":              5,
		"holdfast_cluster_lease_credit_seconds_total":         1.5,
		"holdfast_cluster_directory_watch_restarts_total/lag": 1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}
