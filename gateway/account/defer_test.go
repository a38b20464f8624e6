package account_test

import (
	"testing"
	"time"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/gateway/account"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

// A settle is bookkeeping no client waits on: its commit is deferred
// (Turn.DeferCommit) and rides along with the next admit's, one commit
// for both, while the admit is not delayed.
func TestSettleCommitRidesAlongWithAdmit(t *testing.T) {
	e := newEnvAt(t, account.Defaults{InputTokensPerMinute: 6000, OutputTokensPerMinute: 3000}, t0)
	e.commitDefer = actor.MaxCommitDefer // the fake clock never gets there
	gs := actor.NewGatedStore(actor.NewMemStore())
	e.start(gs)

	e.admit("alice", &holdfastv1.AccountAdmitRequest{RequestId: "a1", InputTokensEstimate: 10})
	if n := <-gs.Entered; n != 1 {
		t.Fatalf("the admit's commit carries %d writes", n)
	}
	before := e.rt.EnqueuedSeq()
	settled := make(chan error, 1)
	go func() {
		_, err := e.cl.Settle(ctx(), "alice", &holdfastv1.AccountSettleRequest{RequestId: "s1", Usage: &holdfastv1.TokenUsage{InputTokens: 10, OutputTokens: 5}})
		settled <- err
	}()
	waitQueuedPast(t, e, before)
	select {
	case n := <-gs.Entered:
		t.Fatalf("the settle started a commit (%d writes) of its own", n)
	case err := <-settled:
		t.Fatalf("the settle returned (%v) before its write was committed", err)
	default:
	}
	e.admit("alice", &holdfastv1.AccountAdmitRequest{RequestId: "a2", InputTokensEstimate: 10})
	if n := <-gs.Entered; n != 2 {
		t.Fatalf("the second admit's commit carries %d writes, want 2 (the settle rides along)", n)
	}
	answered(t, "the settle, after the admit's commit", settled)
}

// An admit that takes nothing (no limits) writes nothing and reads none of
// what a settle writes: it answers while the settle's commit is pending
// (Turn.GateOnReads), instead of waiting for it. One that checks a daily
// budget reads the settle's spend and waits for it to be durable.
func TestAdmitWithoutLimitsDoesNotWaitForSettles(t *testing.T) {
	for _, tc := range []struct {
		name  string
		d     account.Defaults
		waits bool
	}{
		{"no limits", account.Defaults{}, false},
		{"daily budget", account.Defaults{DailyBudgetNanos: 1e12}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnvAt(t, tc.d, t0)
			e.commitDefer = actor.MaxCommitDefer // the fake clock never gets there
			gs := actor.NewGatedStore(actor.NewMemStore())
			e.start(gs)
			t.Cleanup(gs.Open) // runs before the env's stop, should a check fail with the gate held

			gs.Hold()
			settled := make(chan error, 1)
			go func() {
				_, err := e.cl.Settle(ctx(), "alice", &holdfastv1.AccountSettleRequest{RequestId: "s1", Usage: &holdfastv1.TokenUsage{InputTokens: 10, OutputTokens: 5}, CostNanos: 1000})
				settled <- err
			}()
			waitQueuedPast(t, e, 0)
			admitted := make(chan error, 1)
			go func() {
				// As the gateway sends it: no request ID (it never resends
				// an admit), so no idempotency record to write.
				ref := &holdfastv1.ActorRef{Namespace: account.DefaultNamespace, Key: "alice"}
				_, err := e.rt.Call(ctx(), actor.ID{Namespace: ref.Namespace, Key: ref.Key}, &holdfastv1.AccountAdmitRequest{Actor: ref, InputTokensEstimate: 10, SpendEstimateNanos: 10})
				admitted <- err
			}()
			if !tc.waits {
				answered(t, "the admit, while the settle's commit is held", admitted)
				if e.rt.DurableSeq() != 0 {
					t.Fatal("something was committed: the check above proves nothing")
				}
				return
			}
			// The admit demands the settle's write at once (it read it):
			// the commit starts without waiting out CommitDefer.
			if n := <-gs.Entered; n != 1 {
				t.Fatalf("the commit carries %d writes, want the settle's", n)
			}
			select {
			case err := <-admitted:
				t.Fatalf("the admit answered (%v) before the spend it read was durable", err)
			default:
			}
			gs.Open()
			answered(t, "the admit, after the commit", admitted)
			answered(t, "the settle, after the commit", settled)
		})
	}
}

// waitQueuedPast polls until e's runtime has queued a write past seq (the
// settle's, started on a goroutine).
func waitQueuedPast(t *testing.T, e *env, seq uint64) {
	t.Helper()
	for guard := time.Now().Add(20 * time.Second); e.rt.EnqueuedSeq() == seq; {
		if time.Now().After(guard) { // deadlock guard
			t.Fatal("the settle's write was never queued")
		}
		time.Sleep(time.Millisecond) // polling a condition: the settle's write queued
	}
}

// answered waits for a call's result on ch and fails the test on its
// error, or when none comes (a deadlock guard, not a timing assertion).
func answered(t *testing.T, what string, ch <-chan error) {
	t.Helper()
	select {
	case err := <-ch:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: still waiting", what)
	}
}
