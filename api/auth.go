package api

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"net/http"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// TokenAuth checks `authorization: Bearer TOKEN`. An empty token disables
// the check (loopback-only nodes). The token is never logged or echoed.
//
// With Peer set (a cluster with mTLS), a client certificate verified
// against the cluster CA authenticates too: role "admin" (holdctl) or
// "node" (another member). The node-to-node PeerService then requires a
// node certificate: the API token alone does not open it.
type TokenAuth struct {
	Token string
	Peer  func(tls.ConnectionState) (role string, ok bool)
}

// peerServicePrefix is the node-to-node service's method prefix.
const peerServicePrefix = "/holdfast.v1.PeerService/"

func (a TokenAuth) certRole(ctx context.Context) string {
	if a.Peer == nil {
		return ""
	}
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return ""
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return ""
	}
	role, ok := a.Peer(ti.State)
	if !ok {
		return ""
	}
	return role
}

func (a TokenAuth) ok(header string) bool {
	if a.Token == "" {
		return true
	}
	got, found := strings.CutPrefix(header, "Bearer ")
	if !found {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(a.Token)) == 1
}

func (a TokenAuth) checkGRPC(ctx context.Context, method string) error {
	role := a.certRole(ctx)
	if a.Peer != nil && strings.HasPrefix(method, peerServicePrefix) {
		if role != "node" {
			return status.Error(codes.PermissionDenied, "the peer service needs a node certificate of this cluster")
		}
		return nil
	}
	if role != "" || a.Token == "" {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if a.ok(v) {
			return nil
		}
	}
	return status.Error(codes.Unauthenticated, "missing or invalid token (send authorization: Bearer TOKEN)")
}

// Unary is a gRPC interceptor enforcing the token. The reflection service
// stays open so grpcurl can describe the API.
func (a TokenAuth) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := a.checkGRPC(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

// Stream is the streaming counterpart of Unary.
func (a TokenAuth) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if !strings.HasPrefix(info.FullMethod, "/grpc.reflection.") {
		if err := a.checkGRPC(ss.Context(), info.FullMethod); err != nil {
			return err
		}
	}
	return h(srv, ss)
}

// HTTP wraps an HTTP handler with the token check.
func (a TokenAuth) HTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.ok(r.Header.Get("Authorization")) {
			writeJSONError(w, Classified{HTTP: http.StatusUnauthorized, Reason: ReasonUnauthenticated,
				Message: "missing or invalid token (send Authorization: Bearer TOKEN)"})
			return
		}
		next.ServeHTTP(w, r)
	})
}
