package memory_test

import (
	"testing"

	"github.com/sluice-gw/sluice/store"
	"github.com/sluice-gw/sluice/store/memory"
	"github.com/sluice-gw/sluice/store/storetest"
)

func TestJobs(t *testing.T) {
	storetest.RunJobs(t, func(testing.TB) func() store.Jobs {
		q := memory.NewJobs()
		return func() store.Jobs { return q }
	})
}
