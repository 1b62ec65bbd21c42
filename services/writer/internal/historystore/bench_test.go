package historystore

import (
	"context"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/libs/ownerhistory"
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/services/writer/internal/ownership"
	"github.com/ownersync/ownersync/services/writer/internal/writeback"
	"github.com/ownersync/ownersync/workbench/harness"
)

// BenchmarkRecord records b.N history entries from 1,000 concurrent handlers into FerretDB (SQLite),
// the writer's per-change history cost.
func BenchmarkRecord(b *testing.B) {
	ctx := context.Background()
	conn := harness.MongoDB(b, "bench")
	if err := mongodb.EnsureIndexes(ctx, conn.DB, ownerhistory.Indexes()); err != nil {
		b.Fatal(err)
	}
	o := Options{}
	o.MaxBatch, _ = strconv.Atoi(os.Getenv("OWNERSYNC_BENCH_HISTORY_BATCH"))
	o.MaxInFlight, _ = strconv.Atoi(os.Getenv("OWNERSYNC_BENCH_HISTORY_INFLIGHT"))
	s := New(conn.DB, o)
	defer s.Close(ctx)
	b.ResetTimer()
	var wg sync.WaitGroup
	next := make(chan int)
	for range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				e := writeback.Entry{Tenant: "acme", Provider: provider.Salesforce, RecordType: ownership.Contact,
					CRMRecordID: "0035g00000" + strconv.Itoa(100000+i), EventID: "bench-" + strconv.Itoa(i), Origin: ownership.FromPlatform,
					Outcome: writeback.Applied, OwnerID: "0055g00000AsDfGAAV", PlatformUserID: "pu-ada", At: time.Now(), OccurredAt: time.Now()}
				if err := s.Record(ctx, e); err != nil {
					b.Error(err)
				}
			}
		}()
	}
	for i := range b.N {
		next <- i
	}
	close(next)
	wg.Wait()
}
