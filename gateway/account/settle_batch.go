package account

import (
	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/api"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/grpc/status"
)

// MaxSettlesPerBatch bounds the settles of one AccountSettleBatchRequest
// (max_settles_per_batch).
const MaxSettlesPerBatch = 1000

// settleBatch applies the settles of a batch in order, in one turn, each
// exactly as a settle of its own would (same time, same arithmetic). An
// invalid settle is reported by index and skipped; any other error fails
// the whole turn, so nothing of the batch is applied. The runtime records
// the reply under the batch's request ID: a retried batch counts once.
func (h *handler) settleBatch(t *actor.Turn, m *holdfastv1.AccountSettleBatchRequest) (*holdfastv1.AccountSettleBatchResponse, error) {
	settles := m.GetSettles()
	if len(settles) > MaxSettlesPerBatch {
		return nil, &actor.LimitError{Limit: "max_settles_per_batch", Max: MaxSettlesPerBatch, Got: int64(len(settles)), What: "the settles of one batch"}
	}
	out := &holdfastv1.AccountSettleBatchResponse{}
	c := newSettleCache(h, t)
	for i, s := range settles {
		if err := validateSettle(s); err != nil {
			out.Failed = append(out.Failed, uint32(i))
			out.Errors = append(out.Errors, status.Convert(api.GRPCError(err)).Proto())
			continue
		}
		day, err := h.applySettle(c, s)
		if err != nil {
			return nil, err
		}
		out.Day = day // the cache's copy: the day's totals after the last settle
	}
	return out, c.flush()
}
