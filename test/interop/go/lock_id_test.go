// What Go valkeyaside does when a Del lands during a slow load and the same client gets the key again: its one
// marker id is every lock's value, so the second lock looks like the first to the first load's compare-and-set.
package interop

import (
	"context"
	"testing"
)

// Documents Go's behaviour (the lock-id reuse the edge coordinator fixed for itself, docs/guarantees.md): the first
// load, computed before the Del, is stored after it, because the second Get re-locked with the same id.
func TestGoStoresALoadComputedBeforeADelWhenTheSameClientRelocks(t *testing.T) {
	goc := newGoClient(t)
	raw := rawClient(t)
	key := randomKey("lock-id")
	startedA, unblockA := make(chan struct{}), make(chan struct{})
	a := async(t, func() string {
		v, _ := goc.Get(ctxT(t), ttl, key, func(ctx context.Context, _ string) (string, error) {
			close(startedA)
			awaitLoader(ctx, unblockA)
			return "computed-before-del", nil
		})
		return v
	})
	await(t, startedA, "the first load to start")
	lockA, _ := raw.Do(ctxT(t), raw.B().Get().Key(key).Build()).ToString()
	if err := goc.Del(ctxT(t), key); err != nil {
		t.Fatal(err)
	}
	startedB, unblockB := make(chan struct{}), make(chan struct{})
	b := async(t, func() string {
		v, _ := goc.Get(ctxT(t), ttl, key, func(ctx context.Context, _ string) (string, error) {
			close(startedB)
			awaitLoader(ctx, unblockB)
			return "computed-after-del", nil
		})
		return v
	})
	await(t, startedB, "the second get to lock and load")
	lockB, _ := raw.Do(ctxT(t), raw.B().Get().Key(key).Build()).ToString()
	if lockA != lockB {
		t.Fatalf("the two locks differ (%q, %q): Go no longer reuses its id", lockA, lockB)
	}
	close(unblockA)
	if v := a(); v != "computed-before-del" {
		t.Fatalf("first get returned %q", v)
	}
	stored, err := raw.Do(ctxT(t), raw.B().Get().Key(key).Build()).ToString()
	if err != nil {
		t.Fatal(err)
	}
	// Go's actual behaviour: the pre-Del value is in Valkey now (the edge would never store it; its second get waits).
	if stored != "computed-before-del" {
		t.Errorf("the server holds %q; Go valkeyaside used to store the pre-Del load here", stored)
	}
	t.Logf("Go valkeyaside reused lock id %s and stored a load computed before the Del", lockA)
	close(unblockB)
	_ = b()
}
