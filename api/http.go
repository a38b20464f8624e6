package api

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/holdfast/holdfast/actor"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// MaxHTTPBody bounds an HTTP actor API request body.
const MaxHTTPBody = 8 << 20

// HTTPHandler serves the actor API over HTTP/JSON:
//
//	PUT    /v1/actors/{ns}/{key}/storage/{k}   body: the raw value
//	GET    /v1/actors/{ns}/{key}/storage/{k}   → the raw value (404 if absent)
//	DELETE /v1/actors/{ns}/{key}/storage/{k}   → {"deleted":N}
//	GET    /v1/actors/{ns}/{key}/storage?prefix=&start=&end=&limit=&reverse=
//	DELETE /v1/actors/{ns}/{key}/storage       → delete all
//	POST   /v1/actors/{ns}/{key}/{op}          body: the op's request as JSON
//	GET    /v1/actors/{ns}/{key}/{op}          for read-only ops
//
// where op is one of the names in Ops (kv.get, ratelimit.take, alarm.set,
// ...). JSON uses the proto field names (protojson); the path names the
// actor, and a request_id may come in the body or the Idempotency-Key
// header. Responses use the proto field names with every field present,
// 64-bit integers as JSON numbers and bytes as base64. Errors are {"error":{"code":REASON,"message":...,"details":{}}}.
type HTTPHandler struct {
	Caller Caller
}

// Ops maps an HTTP operation name to a fresh request message and whether it
// is read-only (allowed with GET).
var Ops = map[string]struct {
	New      func() actorRequest
	ReadOnly bool
}{
	"kv.get":           {func() actorRequest { return &holdfastv1.KvGetRequest{} }, true},
	"kv.put":           {func() actorRequest { return &holdfastv1.KvPutRequest{} }, false},
	"kv.delete":        {func() actorRequest { return &holdfastv1.KvDeleteRequest{} }, false},
	"kv.list":          {func() actorRequest { return &holdfastv1.KvListRequest{} }, true},
	"kv.delete_all":    {func() actorRequest { return &holdfastv1.KvDeleteAllRequest{} }, false},
	"kv.transaction":   {func() actorRequest { return &holdfastv1.KvTransactionRequest{} }, false},
	"ratelimit.take":   {func() actorRequest { return &holdfastv1.RateLimitTakeRequest{} }, false},
	"ratelimit.adjust": {func() actorRequest { return &holdfastv1.RateLimitAdjustRequest{} }, false},
	"ratelimit.get":    {func() actorRequest { return &holdfastv1.RateLimitGetRequest{} }, true},
	"ratelimit.set":    {func() actorRequest { return &holdfastv1.RateLimitSetRequest{} }, false},
	"alarm.get":        {func() actorRequest { return &holdfastv1.AlarmGetRequest{} }, true},
	"alarm.set":        {func() actorRequest { return &holdfastv1.AlarmSetRequest{} }, false},
	"alarm.delete":     {func() actorRequest { return &holdfastv1.AlarmDeleteRequest{} }, false},
}

// ServeHTTP implements http.Handler.
func (h *HTTPHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/v1/actors/")
	if !ok {
		writeErr(w, fmt.Errorf("%w: no route %s", actor.ErrNotFound, r.URL.Path))
		return
	}
	parts := strings.SplitN(rest, "/", 4)
	if len(parts) < 3 {
		writeErr(w, invalid("want /v1/actors/{namespace}/{key}/{operation}"))
		return
	}
	seg := make([]string, len(parts))
	for i, p := range parts {
		s, err := unescape(p)
		if err != nil {
			writeErr(w, invalid("bad path segment %q", p))
			return
		}
		seg[i] = s
	}
	id := actor.ID{Namespace: seg[0], Key: seg[1]}
	if id.Namespace == "" || id.Key == "" {
		writeErr(w, invalid("namespace and key must not be empty"))
		return
	}
	if seg[2] == "storage" {
		key, hasKey := "", len(seg) == 4
		if hasKey {
			key = seg[3]
		}
		h.storage(w, r, id, key, hasKey)
		return
	}
	if len(seg) != 3 {
		writeErr(w, fmt.Errorf("%w: no route %s", actor.ErrNotFound, r.URL.Path))
		return
	}
	h.op(w, r, id, seg[2])
}

func (h *HTTPHandler) op(w http.ResponseWriter, r *http.Request, id actor.ID, name string) {
	op, ok := Ops[name]
	if !ok {
		names := make([]string, 0, len(Ops))
		for n := range Ops {
			names = append(names, n)
		}
		writeErr(w, fmt.Errorf("%w %q (known: %s)", actor.ErrUnknownOperation, name, strings.Join(sortedStrings(names), ", ")))
		return
	}
	req := op.New()
	switch r.Method {
	case http.MethodPost:
		body, err := readBody(r)
		if err != nil {
			writeErr(w, err)
			return
		}
		if len(strings.TrimSpace(string(body))) > 0 {
			if err := (protojson.UnmarshalOptions{}).Unmarshal(body, req); err != nil {
				writeErr(w, invalid("malformed JSON for %s: %v", name, err))
				return
			}
		}
	case http.MethodGet:
		if !op.ReadOnly {
			writeMethodNotAllowed(w, "POST")
			return
		}
	default:
		writeMethodNotAllowed(w, "GET, POST")
		return
	}
	ref := &holdfastv1.ActorRef{Namespace: id.Namespace, Key: id.Key, Shard: id.Shard}
	setField(req, "actor", ref)
	if k := r.Header.Get("Idempotency-Key"); k != "" {
		if cur, ok := req.(interface{ GetRequestId() string }); ok && cur.GetRequestId() == "" {
			req.ProtoReflect().Set(req.ProtoReflect().Descriptor().Fields().ByName("request_id"), protoString(k))
		}
	}
	resp, err := h.Caller.Call(r.Context(), id, req)
	if err != nil {
		writeErr(w, err)
		return
	}
	if t, ok := resp.(*holdfastv1.RateLimitTakeResponse); ok && !t.GetAllowed() && t.GetRetryAfterMs() > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt((t.GetRetryAfterMs()+999)/1000, 10))
	}
	writeProto(w, resp)
}

// setField sets the message field name of m to v.
func setField(m proto.Message, name string, v proto.Message) {
	f := m.ProtoReflect().Descriptor().Fields().ByName(protoreflect.Name(name))
	m.ProtoReflect().Set(f, protoMessageValue(v))
}

func (h *HTTPHandler) storage(w http.ResponseWriter, r *http.Request, id actor.ID, key string, hasKey bool) {
	ref := &holdfastv1.ActorRef{Namespace: id.Namespace, Key: id.Key}
	reqID := r.Header.Get("Idempotency-Key")
	if hasKey && key == "" {
		writeErr(w, invalid("empty storage key"))
		return
	}
	switch {
	case hasKey && r.Method == http.MethodGet:
		resp, err := h.Caller.Call(r.Context(), id, &holdfastv1.KvGetRequest{Actor: ref, Keys: []string{key}})
		if err != nil {
			writeErr(w, err)
			return
		}
		ents := resp.(*holdfastv1.KvGetResponse).GetEntries()
		if len(ents) == 0 {
			writeErr(w, fmt.Errorf("%w: key %q", actor.ErrNotFound, key))
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(ents[0].GetValue())
	case hasKey && r.Method == http.MethodPut:
		body, err := readBody(r)
		if err != nil {
			writeErr(w, err)
			return
		}
		resp, err := h.Caller.Call(r.Context(), id, &holdfastv1.KvPutRequest{Actor: ref, RequestId: reqID, Entries: []*holdfastv1.Entry{{Key: key, Value: body}}})
		if err != nil {
			writeErr(w, err)
			return
		}
		writeProto(w, resp)
	case hasKey && r.Method == http.MethodDelete:
		resp, err := h.Caller.Call(r.Context(), id, &holdfastv1.KvDeleteRequest{Actor: ref, RequestId: reqID, Keys: []string{key}})
		if err != nil {
			writeErr(w, err)
			return
		}
		writeProto(w, resp)
	case !hasKey && r.Method == http.MethodGet:
		q := r.URL.Query()
		req := &holdfastv1.KvListRequest{Actor: ref, Prefix: q.Get("prefix"), Start: q.Get("start"), End: q.Get("end")}
		if l := q.Get("limit"); l != "" {
			n, err := strconv.ParseInt(l, 10, 64)
			if err != nil || n < 0 {
				writeErr(w, invalid("limit %q is not a non-negative integer", l))
				return
			}
			req.Limit = n
		}
		if rv := q.Get("reverse"); rv != "" {
			b, err := strconv.ParseBool(rv)
			if err != nil {
				writeErr(w, invalid("reverse %q is not a boolean", rv))
				return
			}
			req.Reverse = b
		}
		resp, err := h.Caller.Call(r.Context(), id, req)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeEntries(w, resp.(*holdfastv1.KvListResponse))
	case !hasKey && r.Method == http.MethodDelete:
		resp, err := h.Caller.Call(r.Context(), id, &holdfastv1.KvDeleteAllRequest{Actor: ref, RequestId: reqID})
		if err != nil {
			writeErr(w, err)
			return
		}
		writeProto(w, resp)
	default:
		writeMethodNotAllowed(w, "GET, PUT, DELETE")
	}
}

// writeEntries renders a listing with values as text when they are UTF-8,
// else as value_base64, for humans with curl.
func writeEntries(w http.ResponseWriter, l *holdfastv1.KvListResponse) {
	type entry struct {
		Key         string  `json:"key"`
		Value       *string `json:"value,omitempty"`
		ValueBase64 *string `json:"value_base64,omitempty"`
	}
	out := struct {
		Entries   []entry `json:"entries"`
		Truncated bool    `json:"truncated"`
	}{Entries: []entry{}, Truncated: l.GetTruncated()}
	for _, e := range l.GetEntries() {
		en := entry{Key: e.GetKey()}
		if utf8.Valid(e.GetValue()) {
			s := string(e.GetValue())
			en.Value = &s
		} else {
			s := base64.StdEncoding.EncodeToString(e.GetValue())
			en.ValueBase64 = &s
		}
		out.Entries = append(out.Entries, en)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

func readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxHTTPBody+1))
	if err != nil {
		return nil, invalid("reading body: %v", err)
	}
	if len(body) > MaxHTTPBody {
		return nil, &actor.LimitError{Limit: "max_http_body_bytes", Max: MaxHTTPBody, Got: int64(len(body)), What: "the request body"}
	}
	return body, nil
}

func writeProto(w http.ResponseWriter, m proto.Message) {
	b, err := jsonOf(m)
	if err != nil {
		writeErr(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
	w.Write([]byte("\n"))
}

func writeErr(w http.ResponseWriter, err error) {
	writeJSONError(w, Classify(err))
}

func writeJSONError(w http.ResponseWriter, c Classified) {
	w.Header().Set("Content-Type", "application/json")
	if c.Reason == ReasonOverloaded {
		w.Header().Set("X-Should-Retry", "false")
	}
	w.WriteHeader(c.HTTP)
	details := c.Metadata
	if details == nil {
		details = map[string]string{}
	}
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": c.Reason, "message": c.Message, "details": details}})
}

func writeMethodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeJSONError(w, Classified{HTTP: http.StatusMethodNotAllowed, Reason: ReasonInvalidArgument, Message: "method not allowed; use " + allow})
}
