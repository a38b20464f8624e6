package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

// invocation is one run of one command.
type invocation struct {
	g      *globals
	cmd    *command
	stdout io.Writer
	stderr io.Writer

	target    string // the address dialled, after normalizeAddr
	conn      *grpc.ClientConn
	actor     holdfastv1.ActorServiceClient
	admin     holdfastv1.AdminServiceClient
	requestID string // of the mutating call in flight, for error hints
}

// connect creates the client. grpc.NewClient does not dial; the first call
// connects and fails fast (wait-for-ready is off) when the node is down.
func (inv *invocation) connect() error {
	creds, err := inv.g.transportCredentials()
	if err != nil {
		return err
	}
	inv.target = normalizeAddr(inv.g.addr)
	conn, err := grpc.NewClient(inv.target,
		grpc.WithTransportCredentials(creds),
		grpc.WithUserAgent("holdctl/"+versionString()),
	)
	if err != nil {
		return &exitError{code: exitFail, msg: fmt.Sprintf("cannot reach holdfast at %s: %v", inv.target, err)}
	}
	inv.conn = conn
	inv.actor = holdfastv1.NewActorServiceClient(conn)
	inv.admin = holdfastv1.NewAdminServiceClient(conn)
	return nil
}

// transportCredentials is plain text unless --tls-ca is given.
func (g *globals) transportCredentials() (credentials.TransportCredentials, error) {
	if g.tlsCA == "" {
		return insecure.NewCredentials(), nil
	}
	pem, err := os.ReadFile(g.tlsCA)
	if err != nil {
		return nil, fmt.Errorf("--tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--tls-ca: no PEM certificates in %s", g.tlsCA)
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12, ServerName: g.tlsServerName}
	if g.cert != "" {
		pair, err := tls.LoadX509KeyPair(g.cert, g.key)
		if err != nil {
			return nil, fmt.Errorf("--cert/--key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return credentials.NewTLS(cfg), nil
}

// normalizeAddr adds the default port to a bare host ("localhost" ->
// "localhost:7070"); gRPC target URIs ("dns:///h:p", "unix:///path") pass.
func normalizeAddr(addr string) string {
	if strings.Contains(addr, "://") || strings.HasPrefix(addr, "unix:") {
		return addr
	}
	if _, _, err := net.SplitHostPort(addr); err != nil && strings.Contains(err.Error(), "missing port") {
		return net.JoinHostPort(strings.Trim(addr, "[]"), defaultPort)
	}
	return addr
}

// call runs one unary RPC with the per-call deadline and the token.
func call[Req, Resp any](inv *invocation, f func(context.Context, Req, ...grpc.CallOption) (Resp, error), req Req) (Resp, error) {
	ctx := context.Background()
	if inv.g.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, inv.g.timeout)
		defer cancel()
	}
	if inv.g.token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+inv.g.token)
	}
	resp, err := f(ctx, req, grpc.WaitForReady(false))
	if err != nil {
		return resp, inv.rpcError(err)
	}
	return resp, nil
}

// newRequestID returns id, or 16 random bytes in hex when id is empty, and
// remembers it for error hints.
func (inv *invocation) newRequestID(id string) string {
	if id == "" {
		var b [16]byte
		_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
		id = hex.EncodeToString(b[:])
	}
	inv.requestID = id
	return id
}

// rpcError turns a failed call into the message and exit status to report.
func (inv *invocation) rpcError(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return &exitError{code: exitFail, msg: err.Error()}
	}
	ready := inv.conn.GetState() == connectivity.Ready
	msg := st.Message()
	switch st.Code() {
	case codes.Unavailable:
		if !ready || strings.HasPrefix(msg, "connection error") || strings.Contains(msg, "name resolver error") {
			return &exitError{code: exitFail, msg: fmt.Sprintf("cannot reach holdfast at %s: %s", inv.target, transportDetail(msg))}
		}
	case codes.DeadlineExceeded:
		if !ready {
			return &exitError{code: exitFail, msg: fmt.Sprintf("cannot reach holdfast at %s: no connection within %s (--timeout)", inv.target, inv.g.timeout)}
		}
	}
	if strings.HasPrefix(msg, "unexpected HTTP status code") || strings.Contains(msg, "missing HTTP content-type") {
		return &exitError{code: exitFail, msg: fmt.Sprintf("no gRPC service at %s (is it the node's HTTP address?): %s", inv.target, msg)}
	}
	text := formatStatus(st)
	switch st.Code() {
	case codes.NotFound:
		return &exitError{code: exitNotFound, msg: text}
	case codes.Unauthenticated, codes.PermissionDenied:
		text += " (check --token or HOLDCTL_TOKEN)"
	case codes.DeadlineExceeded, codes.Unavailable, codes.Unknown, codes.Aborted, codes.Canceled:
		if inv.requestID != "" {
			text += fmt.Sprintf("; the outcome is unknown: retry with --request-id %s to apply it at most once", inv.requestID)
		}
	}
	return &exitError{code: exitFail, msg: text}
}

// transportDetail shortens grpc-go's connection error text to its cause.
func transportDetail(msg string) string {
	m := strings.TrimPrefix(msg, "connection error: desc = ")
	m = strings.Trim(m, `"`)
	m = strings.TrimPrefix(m, "transport: Error while dialing: ")
	m = strings.TrimPrefix(m, "transport: ")
	if m == "" {
		return "unavailable"
	}
	return m
}

// formatStatus renders a gRPC status: its message, code, and the details
// holdfast attaches (ErrorInfo reason and metadata, bad-request fields,
// retry delay).
func formatStatus(st *status.Status) string {
	msg := st.Message()
	if msg == "" {
		msg = strings.ToLower(st.Code().String())
	}
	parts := []string{"code " + st.Code().String()}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			p := "reason " + d.GetReason()
			md := d.GetMetadata()
			keys := make([]string, 0, len(md))
			for k := range md {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for i, k := range keys {
				sep := " "
				if i == 0 {
					sep = ": "
				}
				p += sep + k + "=" + md[k]
			}
			parts = append(parts, p)
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				parts = append(parts, "field "+v.GetField()+": "+v.GetDescription())
			}
		case *errdetails.RetryInfo:
			if d.GetRetryDelay() != nil {
				parts = append(parts, "retry after "+d.GetRetryDelay().AsDuration().String())
			}
		case *errdetails.QuotaFailure:
			for _, v := range d.GetViolations() {
				parts = append(parts, "quota "+v.GetSubject()+": "+v.GetDescription())
			}
		case *errdetails.PreconditionFailure:
			for _, v := range d.GetViolations() {
				parts = append(parts, "precondition "+v.GetType()+" "+v.GetSubject()+": "+v.GetDescription())
			}
		}
	}
	return msg + " (" + strings.Join(parts, "; ") + ")"
}

// fail prints err and returns the exit status for it.
func (inv *invocation) fail(err error) int {
	var ue *usageError
	if errors.As(err, &ue) {
		return usageFail(inv.stderr, inv.g, ue.msg, commandUsage(inv.cmd))
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintf(inv.stderr, "holdctl: %s\n", redact(ee.msg, inv.g.token))
		}
		return ee.code
	}
	fmt.Fprintf(inv.stderr, "holdctl: %s\n", redact(err.Error(), inv.g.token))
	return exitFail
}

// redact removes the token from text bound for the terminal, in case a node
// or proxy echoes it back in an error.
func redact(s, token string) string {
	if token == "" {
		return s
	}
	return strings.ReplaceAll(s, token, "[redacted]")
}
