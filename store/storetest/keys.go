package storetest

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gw/sluice/store"
)

// RunKeys runs the Keys contract against the key stores open returns. Each
// call of open must return a new, empty store.
//
// The times of the keys are whole microseconds, the precision every backend
// keeps.
func RunKeys(t *testing.T, open func(t testing.TB) store.Keys) {
	ctx := context.Background()
	// Times in a zone other than UTC: a store may give them back in any
	// zone, as long as they are the same instants.
	zone := time.FixedZone("UTC-3", -3*3600)
	at := func(sec int64) time.Time { return time.UnixMicro(1_900_000_000_000_000 + sec*1e6 + 123).In(zone) }
	newKey := func(id string, created time.Time) store.Key {
		return store.Key{
			ID: id, Hash: hashOf(id), Name: "key " + id + " ✓", Tenant: "acme", Tier: "pro",
			User: "user-" + id, Created: created,
		}
	}

	t.Run("Missing", func(t *testing.T) {
		k := open(t)
		if _, err := k.KeyByID(ctx, "k_missing"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("KeyByID of a missing key: err = %v, want ErrNotFound", err)
		}
		if _, err := k.KeyByHash(ctx, hashOf("k_missing")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("KeyByHash of a missing key: err = %v, want ErrNotFound", err)
		}
		if err := k.DisableKey(ctx, "k_missing", at(0)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("DisableKey of a missing key: err = %v, want ErrNotFound", err)
		}
		if err := k.RotateKey(ctx, "k_missing", hashOf("new"), at(0)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RotateKey of a missing key: err = %v, want ErrNotFound", err)
		}
		keys, err := k.ListKeys(ctx)
		if err != nil || len(keys) != 0 {
			t.Errorf("ListKeys of an empty store = %+v, %v; want none", keys, err)
		}
	})

	t.Run("CreateGet", func(t *testing.T) {
		k := open(t)
		want := newKey("k_1", at(0))
		if err := k.CreateKey(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := k.KeyByID(ctx, "k_1")
		if err != nil {
			t.Fatal(err)
		}
		checkKey(t, "KeyByID", got, want)
		got, err = k.KeyByHash(ctx, want.Hash)
		if err != nil {
			t.Fatal(err)
		}
		checkKey(t, "KeyByHash", got, want)
	})

	t.Run("CreateWithTimes", func(t *testing.T) {
		// A key created disabled or rotated (restored from elsewhere)
		// keeps those times.
		k := open(t)
		want := newKey("k_1", at(0))
		want.Disabled, want.Rotated = at(5), at(3)
		if err := k.CreateKey(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := k.KeyByID(ctx, "k_1")
		if err != nil {
			t.Fatal(err)
		}
		checkKey(t, "KeyByID", got, want)
	})

	t.Run("CreateInvalid", func(t *testing.T) {
		k := open(t)
		noID := newKey("", at(0))
		noID.Hash = hashOf("x")
		noHash := newKey("k_1", at(0))
		noHash.Hash = ""
		for _, bad := range []store.Key{noID, noHash} {
			if err := k.CreateKey(ctx, bad); err == nil {
				t.Errorf("CreateKey(%+v) succeeded", bad)
			}
		}
		if keys, _ := k.ListKeys(ctx); len(keys) != 0 {
			t.Errorf("invalid keys were stored: %+v", keys)
		}
	})

	t.Run("Duplicate", func(t *testing.T) {
		k := open(t)
		orig := newKey("k_1", at(0))
		if err := k.CreateKey(ctx, orig); err != nil {
			t.Fatal(err)
		}
		sameID := newKey("k_1", at(1))
		sameID.Hash = hashOf("other")
		if err := k.CreateKey(ctx, sameID); err == nil {
			t.Error("CreateKey of an existing ID succeeded")
		}
		sameHash := newKey("k_2", at(1))
		sameHash.Hash = orig.Hash
		if err := k.CreateKey(ctx, sameHash); err == nil {
			t.Error("CreateKey of an existing hash succeeded")
		}
		keys, err := k.ListKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 1 {
			t.Fatalf("ListKeys after refused creates = %+v, want the first key only", keys)
		}
		checkKey(t, "ListKeys", keys[0], orig)
		if _, err := k.KeyByHash(ctx, sameID.Hash); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("KeyByHash of a refused key: err = %v, want ErrNotFound", err)
		}
	})

	t.Run("ListOldestFirst", func(t *testing.T) {
		k := open(t)
		// Created out of order; k_b and k_a at the same time come in
		// order of ID.
		for _, key := range []store.Key{
			newKey("k_c", at(30)), newKey("k_b", at(10)), newKey("k_z", at(0)), newKey("k_a", at(10)),
			newKey("k_A", at(10)),
		} {
			if err := k.CreateKey(ctx, key); err != nil {
				t.Fatal(err)
			}
		}
		keys, err := k.ListKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, key := range keys {
			ids = append(ids, key.ID)
		}
		want := []string{"k_z", "k_A", "k_a", "k_b", "k_c"}
		if !equalStrings(ids, want) {
			t.Errorf("ListKeys order = %v, want %v", ids, want)
		}
		checkKey(t, "ListKeys", keys[0], newKey("k_z", at(0)))
	})

	t.Run("Disable", func(t *testing.T) {
		k := open(t)
		want := newKey("k_1", at(0))
		if err := k.CreateKey(ctx, want); err != nil {
			t.Fatal(err)
		}
		if err := k.DisableKey(ctx, "k_1", at(60)); err != nil {
			t.Fatal(err)
		}
		want.Disabled = at(60)
		// A disabled key is still found, by hash too: the caller refuses
		// it, knowing why.
		got, err := k.KeyByHash(ctx, want.Hash)
		if err != nil {
			t.Fatal(err)
		}
		checkKey(t, "KeyByHash after DisableKey", got, want)
		// Disabling again keeps the first time.
		if err := k.DisableKey(ctx, "k_1", at(120)); err != nil {
			t.Fatal(err)
		}
		got, err = k.KeyByID(ctx, "k_1")
		if err != nil {
			t.Fatal(err)
		}
		checkKey(t, "KeyByID after a second DisableKey", got, want)
	})

	t.Run("Rotate", func(t *testing.T) {
		k := open(t)
		want := newKey("k_1", at(0))
		other := newKey("k_2", at(1))
		for _, key := range []store.Key{want, other} {
			if err := k.CreateKey(ctx, key); err != nil {
				t.Fatal(err)
			}
		}
		oldHash, newHash := want.Hash, hashOf("k_1 rotated")
		if err := k.RotateKey(ctx, "k_1", newHash, at(90)); err != nil {
			t.Fatal(err)
		}
		if _, err := k.KeyByHash(ctx, oldHash); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("KeyByHash of the old hash after RotateKey: err = %v, want ErrNotFound", err)
		}
		want.Hash, want.Rotated = newHash, at(90)
		got, err := k.KeyByHash(ctx, newHash)
		if err != nil {
			t.Fatal(err)
		}
		checkKey(t, "KeyByHash of the new hash", got, want)
		if err := k.RotateKey(ctx, "k_1", "", at(95)); err == nil {
			t.Error("RotateKey to an empty hash succeeded")
		}
		// The old hash is free again; another key's hash is not.
		if err := k.RotateKey(ctx, "k_1", other.Hash, at(100)); err == nil {
			t.Error("RotateKey to another key's hash succeeded")
		}
		got, err = k.KeyByID(ctx, "k_1")
		if err != nil {
			t.Fatal(err)
		}
		checkKey(t, "KeyByID after a refused RotateKey", got, want)
		got, err = k.KeyByHash(ctx, other.Hash)
		if err != nil {
			t.Fatal(err)
		}
		checkKey(t, "the other key after a refused RotateKey", got, other)
		// A disabled key may be rotated; it stays disabled.
		if err := k.DisableKey(ctx, "k_1", at(110)); err != nil {
			t.Fatal(err)
		}
		if err := k.RotateKey(ctx, "k_1", oldHash, at(120)); err != nil {
			t.Fatal(err)
		}
		want.Hash, want.Rotated, want.Disabled = oldHash, at(120), at(110)
		got, err = k.KeyByHash(ctx, oldHash)
		if err != nil {
			t.Fatal(err)
		}
		checkKey(t, "KeyByHash after rotating back", got, want)
	})

	t.Run("ConcurrentCreate", func(t *testing.T) {
		k := open(t)
		// Many creators of distinct keys all succeed; many creators of
		// the same ID, exactly one does.
		const n = 16
		var wg sync.WaitGroup
		var won atomic.Int32
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				if err := k.CreateKey(ctx, newKey("k_"+strconv.Itoa(i), at(int64(i)))); err != nil {
					errs <- err
				}
			})
			wg.Go(func() {
				key := newKey("k_same", at(int64(i)))
				key.Hash = hashOf("same " + strconv.Itoa(i))
				if k.CreateKey(ctx, key) == nil {
					won.Add(1)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("CreateKey: %v", err)
		}
		if got := won.Load(); got != 1 {
			t.Errorf("%d creates of one ID succeeded, want 1", got)
		}
		keys, err := k.ListKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != n+1 {
			t.Errorf("ListKeys has %d keys, want %d", len(keys), n+1)
		}
	})
}

// checkKey compares keys, their times as instants.
func checkKey(t testing.TB, what string, got, want store.Key) {
	t.Helper()
	same := got.ID == want.ID && got.Hash == want.Hash && got.Name == want.Name &&
		got.Tenant == want.Tenant && got.Tier == want.Tier && got.User == want.User &&
		got.Created.Equal(want.Created) && got.Disabled.Equal(want.Disabled) && got.Rotated.Equal(want.Rotated)
	if !same {
		t.Errorf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

// hashOf returns a stand-in for the hash of a secret: any string works as
// well as a real one.
func hashOf(s string) string { return "sha256:" + s }

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
