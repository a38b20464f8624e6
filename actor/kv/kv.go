// Package kv is the built-in `kv` actor kind: the Durable Objects storage
// API of one actor (get/put/delete of one or many keys, list with
// prefix/start/end/limit/reverse, delete-all, transactions of several
// operations with conditions), exposed as it is, so any app can use
// holdfast as strongly consistent per-key storage. Every operation is one
// turn of the actor named by the request; a transaction's writes commit
// atomically or not at all.
package kv

import (
	"bytes"
	"fmt"

	"github.com/holdfast/holdfast/actor"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/protobuf/proto"
)

// Kind is the kind name used in configuration.
const Kind = "kv"

// Handler is one kv actor. It keeps no state of its own: storage is the
// actor's state.
type Handler struct{}

// New returns the constructor for actor.NamespaceConfig.New.
func New() func(actor.ID) actor.Handler {
	return func(actor.ID) actor.Handler { return Handler{} }
}

// Receive implements actor.Handler.
func (Handler) Receive(t *actor.Turn, msg proto.Message) (proto.Message, error) {
	switch m := msg.(type) {
	case *holdfastv1.KvGetRequest:
		return get(t, m)
	case *holdfastv1.KvPutRequest:
		return put(t, m)
	case *holdfastv1.KvDeleteRequest:
		return del(t, m)
	case *holdfastv1.KvListRequest:
		return list(t, m)
	case *holdfastv1.KvDeleteAllRequest:
		n, err := t.DeleteAll()
		if err != nil {
			return nil, err
		}
		return &holdfastv1.KvDeleteAllResponse{Deleted: int64(n)}, nil
	case *holdfastv1.KvTransactionRequest:
		return transaction(t, m)
	}
	return nil, fmt.Errorf("kv: %w %T", actor.ErrUnknownOperation, msg)
}

func get(t *actor.Turn, m *holdfastv1.KvGetRequest) (*holdfastv1.KvGetResponse, error) {
	vals, err := t.GetMany(m.GetKeys())
	if err != nil {
		return nil, err
	}
	resp := &holdfastv1.KvGetResponse{}
	for _, k := range m.GetKeys() {
		if v, ok := vals[k]; ok {
			resp.Entries = append(resp.Entries, &holdfastv1.Entry{Key: k, Value: v})
		}
	}
	return resp, nil
}

func put(t *actor.Turn, m *holdfastv1.KvPutRequest) (*holdfastv1.KvPutResponse, error) {
	if len(m.GetEntries()) == 0 {
		return nil, fmt.Errorf("%w: put with no entries", actor.ErrInvalidArgument)
	}
	entries := make(map[string][]byte, len(m.GetEntries()))
	for _, e := range m.GetEntries() {
		entries[e.GetKey()] = e.GetValue()
	}
	if len(entries) != len(m.GetEntries()) {
		return nil, fmt.Errorf("%w: put names a key twice", actor.ErrInvalidArgument)
	}
	if err := t.PutMany(entries); err != nil {
		return nil, err
	}
	return &holdfastv1.KvPutResponse{}, nil
}

func del(t *actor.Turn, m *holdfastv1.KvDeleteRequest) (*holdfastv1.KvDeleteResponse, error) {
	n, err := t.DeleteMany(m.GetKeys())
	if err != nil {
		return nil, err
	}
	return &holdfastv1.KvDeleteResponse{Deleted: int64(n)}, nil
}

func list(t *actor.Turn, m *holdfastv1.KvListRequest) (*holdfastv1.KvListResponse, error) {
	if m.GetLimit() < 0 {
		return nil, fmt.Errorf("%w: negative list limit", actor.ErrInvalidArgument)
	}
	kvs, truncated, err := t.List(actor.ListOptions{
		Prefix: m.GetPrefix(), Start: m.GetStart(), End: m.GetEnd(),
		Limit: int(m.GetLimit()), Reverse: m.GetReverse(),
	})
	if err != nil {
		return nil, err
	}
	resp := &holdfastv1.KvListResponse{Truncated: truncated, Entries: make([]*holdfastv1.Entry, len(kvs))}
	for i, e := range kvs {
		resp.Entries[i] = &holdfastv1.Entry{Key: e.Key, Value: e.Value}
	}
	return resp, nil
}

// transaction runs ops in order within the turn. A failed condition makes
// the transaction return committed=false; the handler then returns an
// abort error internally so the runtime rolls every write back, and the
// caller still gets a normal reply.
func transaction(t *actor.Turn, m *holdfastv1.KvTransactionRequest) (proto.Message, error) {
	ops := m.GetOps()
	if len(ops) == 0 {
		return nil, fmt.Errorf("%w: transaction with no operations", actor.ErrInvalidArgument)
	}
	if max := t.Limits().MaxOpsPerTransaction; len(ops) > max {
		return nil, &actor.LimitError{Limit: "max_ops_per_transaction", Max: int64(max), Got: int64(len(ops)), What: "the transaction"}
	}
	resp := &holdfastv1.KvTransactionResponse{Committed: true}
	for i, op := range ops {
		if op.GetIfKey() != "" {
			v, ok, err := t.Get(op.GetIfKey())
			if err != nil {
				return nil, err
			}
			holds := (op.GetIfAbsent() && !ok) || (!op.GetIfAbsent() && ok && bytes.Equal(v, op.GetIfValue()))
			if !holds {
				return nil, &actor.AbortError{Reply: &holdfastv1.KvTransactionResponse{Committed: false, FailedOp: int64(i)}}
			}
		}
		r := &holdfastv1.KvOpResult{}
		switch o := op.GetOp().(type) {
		case *holdfastv1.KvOp_Get:
			g, err := get(t, o.Get)
			if err != nil {
				return nil, err
			}
			r.Result = &holdfastv1.KvOpResult_Get{Get: g}
		case *holdfastv1.KvOp_Put:
			p, err := put(t, o.Put)
			if err != nil {
				return nil, err
			}
			r.Result = &holdfastv1.KvOpResult_Put{Put: p}
		case *holdfastv1.KvOp_Delete:
			d, err := del(t, o.Delete)
			if err != nil {
				return nil, err
			}
			r.Result = &holdfastv1.KvOpResult_Delete{Delete: d}
		case *holdfastv1.KvOp_List:
			l, err := list(t, o.List)
			if err != nil {
				return nil, err
			}
			r.Result = &holdfastv1.KvOpResult_List{List: l}
		case *holdfastv1.KvOp_DeleteAll:
			n, err := t.DeleteAll()
			if err != nil {
				return nil, err
			}
			r.Result = &holdfastv1.KvOpResult_DeleteAll{DeleteAll: &holdfastv1.KvDeleteAllResponse{Deleted: int64(n)}}
		default:
			return nil, fmt.Errorf("%w: transaction op %d has no operation", actor.ErrInvalidArgument, i)
		}
		resp.Results = append(resp.Results, r)
	}
	return resp, nil
}
