package api_test

import (
	"net"
	"testing"

	"github.com/holdfast/holdfast/api"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// serveActors runs the actor service over caller on a loopback gRPC server
// built with sopts and returns a client connection to it (dialled with
// dopts as well); server and connection end with the test.
func serveActors(t *testing.T, caller api.Caller, sopts []grpc.ServerOption, dopts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	srv := grpc.NewServer(sopts...)
	holdfastv1.RegisterActorServiceServer(srv, &api.ActorServer{Caller: caller})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, dopts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// clientFor is an actor-service client of a server over c.
func clientFor(t *testing.T, c api.Caller) holdfastv1.ActorServiceClient {
	t.Helper()
	return holdfastv1.NewActorServiceClient(serveActors(t, c, nil))
}
