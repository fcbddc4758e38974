package memory_test

import (
	"testing"

	"github.com/sluice-gw/sluice/store"
	"github.com/sluice-gw/sluice/store/memory"
	"github.com/sluice-gw/sluice/store/storetest"
)

func TestKeys(t *testing.T) {
	storetest.RunKeys(t, func(testing.TB) store.Keys { return memory.NewKeys() })
}
