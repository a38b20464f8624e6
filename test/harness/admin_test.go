package harness_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/holdfast/holdfast/gateway/account"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"github.com/holdfast/holdfast/test/harness"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// The admin service of any member lists the actors of every member, and
// reads or deletes an actor on its owner.
func TestAdminThroughAnyMember(t *testing.T) {
	c := harness.New(t, 3, harness.Options{})
	const n = 40
	for i := range n {
		if err := put(t, c, i%3, fmt.Sprintf("adm-%02d", i), "f", "v"); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := grpc.NewClient(c.Node(0).GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	admin := holdfastv1.NewAdminServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := admin.ListActors(ctx, &holdfastv1.ListActorsRequest{Namespace: "kv", Prefix: "adm-"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetActors()) != n || list.GetTruncated() {
		t.Fatalf("listed %d actors (truncated %v), want %d", len(list.GetActors()), list.GetTruncated(), n)
	}
	for i, a := range list.GetActors() {
		if want := fmt.Sprintf("adm-%02d", i); a.GetActor().GetKey() != want {
			t.Fatalf("actor %d is %s, want %s (key order)", i, a.GetActor().GetKey(), want)
		}
	}
	// An actor owned by node-3, read and deleted through node-1.
	key := keyOwnedBy(t, c, "kv", 2)
	if err := put(t, c, 2, key, "f", "v"); err != nil {
		t.Fatal(err)
	}
	ref := &holdfastv1.ActorRef{Namespace: "kv", Key: key}
	got, err := admin.GetActor(ctx, &holdfastv1.GetActorRequest{Actor: ref})
	if err != nil || got.GetSummary().GetKeys() != 1 {
		t.Fatalf("get through a non-owner: %v, %v", got, err)
	}
	del, err := admin.DeleteActor(ctx, &holdfastv1.DeleteActorRequest{Actor: ref})
	if err != nil || del.GetDeletedKeys() != 1 {
		t.Fatalf("delete through a non-owner: %v, %v", del, err)
	}
	if got, err := admin.GetActor(ctx, &holdfastv1.GetActorRequest{Actor: ref}); err != nil || got.GetSummary().GetKeys() != 0 {
		t.Fatalf("get after delete: %v, %v, want no keys", got, err)
	}
	if v, err := get(t, c, 1, key, "f"); err != nil || v != "" {
		t.Fatalf("kv get after delete: %q, %v", v, err)
	}

	// A gateway user's limits, set through any member, are a setting: they
	// land in the replicated settings bucket (every member's cache), not
	// in the user's actor state.
	accounts := holdfastv1.NewAccountServiceClient(conn)
	user := keyOwnedBy(t, c, account.DefaultNamespace, 2)
	if _, err := accounts.SetLimits(ctx, &holdfastv1.SetLimitsRequest{User: user,
		Limits: &holdfastv1.AccountLimits{RequestsPerMinute: 7}, Fields: []string{"requests_per_minute"}}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		c.WaitFor(10*time.Second, fmt.Sprintf("node-%d's settings cache", i+1), func() error {
			l, rev, found := c.Node(i).Cluster().AccountSettings().Get(account.DefaultNamespace, user)
			if !found || l.GetRequestsPerMinute() != 7 {
				return fmt.Errorf("limits %v (rev %d, found %v)", l, rev, found)
			}
			return nil
		})
	}
	state, err := admin.GetActor(ctx, &holdfastv1.GetActorRequest{Actor: &holdfastv1.ActorRef{Namespace: account.DefaultNamespace, Key: user}})
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range state.GetEntries() {
		if kv.GetKey() == "limits" {
			t.Fatal("the user's limits stored in its actor state as well")
		}
	}
	got2, err := accounts.GetLimits(ctx, &holdfastv1.GetLimitsRequest{User: user})
	if err != nil || got2.GetOwn().GetRequestsPerMinute() != 7 {
		t.Fatalf("limits get: %v, %v", got2, err)
	}
}
