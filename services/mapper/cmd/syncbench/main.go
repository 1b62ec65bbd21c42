// Command syncbench measures Sync Users (docs/architecture.md#sync-users) end to end: N platform
// users against Salesforce and HubSpot sandboxes holding M users each, with duplicates,
// deactivations and email changes mixed in. Each size runs in its own child process (so peak RSS is
// per size) on embedded NATS and FerretDB, in two runs: the first creates every mapping, the second
// applies a round of CRM changes (deactivations with and without a namesake, email changes, new
// duplicates).
//
//	go run ./services/mapper/cmd/syncbench -sizes 10000,50000,100000 -crm 100000 > report.md
//
// It prints a Markdown table: per run and provider the rules' time, pull, write and whole-run time,
// and the mapper's peak RSS alone (VmHWM of the process that runs Sync Users: the Salesforce and
// HubSpot sandboxes and NATS run in a process of their own, FerretDB in another).
package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/ownersync/ownersync/libs/mongodb"
	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/streams"
	"github.com/ownersync/ownersync/libs/tenantstore"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/mongostore"
	"github.com/ownersync/ownersync/services/mapper/internal/syncbed"
	"github.com/ownersync/ownersync/services/mapper/internal/syncusers"
	"github.com/ownersync/ownersync/workbench/mongoproc"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "syncbench:", err)
		os.Exit(1)
	}
}

// result is one size's measurements, passed from the child as JSON.
type result struct {
	Platform, CRM int
	Runs          []runResult
	// PeakRSSMB is the mapper process's peak RSS (VmHWM); SandboxesRSSMB the peak RSS of the
	// process running NATS and the CRM sandboxes.
	PeakRSSMB      float64
	SandboxesRSSMB float64
	// LoadAvg is the machine's 1-minute load average at the end (other work skews the times).
	LoadAvg      string
	SetupSeconds float64
}

type runResult struct {
	Name      string
	TotalMS   int64
	Providers []domain.RunProvider
	// Commands are the MongoDB commands of the run by kind, with their documents.
	Commands []commandRow
}

// commandRow is one kind of MongoDB command of a run (mongodb.CommandCounter).
type commandRow struct {
	Name, Collection string
	mongodb.CommandCount
}

func commandRows(counts map[mongodb.CommandKind]mongodb.CommandCount) []commandRow {
	var out []commandRow
	for k, v := range counts {
		out = append(out, commandRow{Name: k.Name, Collection: k.Collection, CommandCount: v})
	}
	slices.SortFunc(out, func(a, b commandRow) int {
		return cmp.Or(cmp.Compare(a.Collection, b.Collection), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// commandTotals sums a run's commands: reads (find, getMore, ...) and writes with their documents.
func commandTotals(rows []commandRow) (reads, readDocs, writes, writeDocs, maxWriteDocs int) {
	for _, r := range rows {
		switch {
		case mongodb.Reads[r.Name] || r.Name == "getMore":
			reads += r.Commands
			readDocs += r.Documents
		case mongodb.Writes[r.Name]:
			writes += r.Commands
			writeDocs += r.Documents
			maxWriteDocs = max(maxWriteDocs, r.MaxDocuments)
		}
	}
	return
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("syncbench", flag.ContinueOnError)
	sizes := fs.String("sizes", "10000,50000,100000", "platform user counts, comma-separated")
	crmN := fs.Int("crm", 100000, "CRM users per provider")
	child := fs.Int("child", 0, "internal: run one size in this process")
	cpuProfile := fs.String("cpuprofile", "", "write the mapper process's CPU profile of each size to <this>-<size>.pprof")
	memProfile := fs.String("memprofile", "", "write the mapper process's heap profile (alloc_space for where its memory goes) of each size to <this>-<size>.pprof")
	sandboxes := fs.Int("sandboxes", 0, "internal: serve NATS and the CRM sandboxes for one size in this process")
	bulk := fs.String("bulk", string(mongostore.PerDocument), "how bulk changes replace documents: per_document or delete_insert (OWNERSYNC_MONGODB_BULK_WRITES)")
	mongoURI := fs.String("mongodb-uri", os.Getenv("MONGODB_URI"), "run on this MongoDB-compatible server (a database of its own, dropped at the end) instead of the embedded FerretDB (default $MONGODB_URI)")
	jsonOut := fs.String("json", "", "also write the results as JSON to this file (the charts of make bench read it)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sandboxes > 0 {
		return serveSandboxes(*sandboxes, *crmN, os.Stdin, stdout)
	}
	if *child > 0 {
		if *cpuProfile != "" {
			f, err := os.Create(fmt.Sprintf("%s-%d.pprof", *cpuProfile, *child))
			if err != nil {
				return err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			defer pprof.StopCPUProfile()
		}
		if *memProfile != "" {
			runtime.MemProfileRate = 64 << 10
			defer func() {
				if f, err := os.Create(fmt.Sprintf("%s-%d.pprof", *memProfile, *child)); err == nil {
					_ = pprof.Lookup("allocs").WriteTo(f, 0)
					f.Close()
				}
			}()
		}
		r, err := measure(context.Background(), *child, *crmN, mongostore.BulkWrites(*bulk), *mongoURI)
		if err != nil {
			return err
		}
		return json.NewEncoder(stdout).Encode(r)
	}
	var results []result
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("size %q: %w", s, err)
		}
		self, err := os.Executable()
		if err != nil {
			return err
		}
		cmd := exec.Command(self, "-child", strconv.Itoa(n), "-crm", strconv.Itoa(*crmN), "-bulk", *bulk, "-mongodb-uri", *mongoURI,
			"-cpuprofile", *cpuProfile, "-memprofile", *memProfile)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("size %d: %w", n, err)
		}
		var r result
		if err := json.Unmarshal(out, &r); err != nil {
			return fmt.Errorf("size %d: %w", n, err)
		}
		results = append(results, r)
		fmt.Fprintf(os.Stderr, "size %d done\n", n)
	}
	report(stdout, results)
	if *jsonOut != "" {
		b, err := json.MarshalIndent(results, "", " ")
		if err != nil {
			return err
		}
		return os.WriteFile(*jsonOut, b, 0o644)
	}
	return nil
}

func report(w io.Writer, rs []result) {
	fmt.Fprintf(w, "Sync Users benchmark — %s, %d cores (GOMAXPROCS %d), %s/%s, %s\n\n", time.Now().UTC().Format("2006-01-02"),
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Fprintln(w, "| platform users | CRM users/provider | run | provider | pulled | rules | pull | write | whole run (both providers) | changes | mapper peak RSS | load avg |")
	fmt.Fprintln(w, "|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		for _, run := range r.Runs {
			for _, p := range run.Providers {
				changes := 0
				if p.Outcome != nil {
					changes = p.Outcome.ChangesTotal
				}
				fmt.Fprintf(w, "| %d | %d | %s | %s | %d | %d ms | %d ms | %d ms | %.2f s | %d | %.0f MB | %s |\n", r.Platform, r.CRM, run.Name, p.Provider,
					p.Pulled, p.RulesMS, p.PullMS, p.WriteMS, float64(run.TotalMS)/1000, changes, r.PeakRSSMB, r.LoadAvg)
			}
		}
	}
	fmt.Fprintln(w)
	for _, r := range rs {
		fmt.Fprintf(w, "Peak RSS at %d × %d: mapper process alone %.0f MB; NATS and the CRM sandboxes (another process) %.0f MB; FerretDB runs in a third.\n\n",
			r.Platform, r.CRM, r.PeakRSSMB, r.SandboxesRSSMB)
	}
	if l := os.Getenv("GOMEMLIMIT"); l != "" {
		fmt.Fprintf(w, "The processes ran with GOMEMLIMIT=%s (the Go runtime's soft memory limit).\n\n", l)
	}
	fmt.Fprintln(w, "MongoDB commands per run (both providers; the driver's command monitor): reads are find and getMore, writes insert, update, delete and findAndModify.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| platform users | CRM users/provider | run | changes | read commands | documents read | write commands | documents written | max documents per write |")
	fmt.Fprintln(w, "|---:|---:|---|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		for _, run := range r.Runs {
			changes := 0
			for _, p := range run.Providers {
				if p.Outcome != nil {
					changes += p.Outcome.ChangesTotal
				}
			}
			reads, readDocs, writes, writeDocs, maxDocs := commandTotals(run.Commands)
			fmt.Fprintf(w, "| %d | %d | %s | %d | %d | %d | %d | %d | %d |\n", r.Platform, r.CRM, run.Name, changes, reads, readDocs, writes, writeDocs, maxDocs)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "<details><summary>Commands by collection and kind</summary>")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| platform users | CRM users/provider | run | collection | command | commands | documents | max per command |")
	fmt.Fprintln(w, "|---:|---:|---|---|---|---:|---:|---:|")
	for _, r := range rs {
		for _, run := range r.Runs {
			for _, c := range run.Commands {
				fmt.Fprintf(w, "| %d | %d | %s | %s | %s | %d | %d | %d |\n", r.Platform, r.CRM, run.Name, c.Collection, c.Name, c.Commands, c.Documents, c.MaxDocuments)
			}
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "</details>")
}

func measure(ctx context.Context, platformN, crmN int, bulk mongostore.BulkWrites, mongoURI string) (*result, error) {
	setup := time.Now()
	dir, err := os.MkdirTemp("", "syncbench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	// NATS and the sandboxes run in a process of their own, so this one's peak RSS is the mapper's.
	sb, err := startSandboxes(platformN, crmN)
	if err != nil {
		return nil, err
	}
	defer sb.stop()
	dbName := "bench"
	if mongoURI == "" {
		// FerretDB in a child process (mapper does not link it); on its PostgreSQL backend when
		// OWNERSYNC_EMBEDMONGO_POSTGRESQL_URL is set (scripts/ferretdb-postgres.sh).
		ms, err := mongoproc.Start(ctx, mongoproc.Options{Dir: dir + "/mongo"})
		if err != nil {
			return nil, err
		}
		defer ms.Stop()
		mongoURI = ms.URI()
	} else {
		dbName = fmt.Sprintf("syncbench_%d", os.Getpid())
	}
	bus, err := natsbus.Connect(ctx, natsbus.Options{URL: sb.info.NATS, Name: "syncbench"})
	if err != nil {
		return nil, err
	}
	defer bus.Close()
	if err := natsbus.DeclareStreams(ctx, bus.JS, streams.Configs(streams.Options{})); err != nil {
		return nil, err
	}
	kvs, err := natsbus.DeclareKV(ctx, bus.JS, streams.KVConfigs(streams.Options{}))
	if err != nil {
		return nil, err
	}
	// The service's 30 s per-operation timeout is too short for FerretDB scanning 200k documents on
	// a busy machine; the benchmark connects with a long one.
	counter := mongodb.NewCommandCounter()
	client, err := mongo.Connect(options.Client().ApplyURI(mongoURI).SetTimeout(10 * time.Minute).SetMonitor(counter.Monitor()))
	if err != nil {
		return nil, err
	}
	defer client.Disconnect(context.WithoutCancel(ctx))
	mc := &mongodb.Conn{Client: client, DB: client.Database(dbName)}
	if dbName != "bench" {
		defer mc.DB.Drop(context.WithoutCancel(ctx))
	}
	if err := mongodb.EnsureIndexes(ctx, mc.DB, append(append([]mongodb.Index{}, tenantstore.Indexes...), mongostore.Indexes...)); err != nil {
		return nil, err
	}

	data := newDataset(platformN, crmN)
	// The embedded FerretDB's wrapper indexes the expression FerretDB compares for _id, so writes
	// by _id are index lookups there too: per_document is the default.
	bed := syncbed.New(mc.DB, bus.JS, kvs[streams.MappingsBucket], bulk, "pat-bench")
	store, tenants := bed.Store, bed.Tenants
	if err := store.InsertPlatformUsers(ctx, data.platformUsers()); err != nil {
		return nil, err
	}
	sbs := syncbed.Sandboxes{SFOrgID: sb.info.SFOrgID, SFURL: sb.info.SFURL, HSURL: sb.info.HSURL, HSPortalID: sb.info.HSPortalID, HSAppID: sb.info.HSAppID}
	if err := tenants.Put(ctx, syncbed.Tenant("bench", "Bench", sbs, true)); err != nil {
		return nil, err
	}
	runner := bed.Runner(ctx, syncusers.Options{Log: benchLog()})
	res := &result{Platform: platformN, CRM: crmN, SetupSeconds: time.Since(setup).Seconds()}

	for _, name := range []string{"first (all created)", "second (changes mixed in)"} {
		if len(res.Runs) == 1 {
			if err := sb.mutate(); err != nil {
				return nil, err
			}
		}
		counter.Reset()
		start := time.Now()
		rec, _, err := runner.Run(ctx, domain.SyncRequest{Tenant: "bench", Trigger: domain.TriggerAPI})
		if err != nil {
			return nil, err
		}
		if rec.Status != domain.RunSucceeded {
			return nil, fmt.Errorf("run %s: %s %s %+v", name, rec.Status, rec.Error, rec.Providers)
		}
		res.Runs = append(res.Runs, runResult{Name: name, TotalMS: time.Since(start).Milliseconds(), Providers: rec.Providers,
			Commands: commandRows(counter.Snapshot())})
	}
	res.PeakRSSMB = peakRSSMB()
	res.SandboxesRSSMB = sb.stop()
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		res.LoadAvg = strings.Fields(string(b))[0]
	}
	return res, nil
}

// peakRSSMB reads VmHWM from /proc/self/status (Linux); 0 elsewhere.
func peakRSSMB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}

// benchLog logs the runner's debug timings to stderr when SYNCBENCH_DEBUG is set.
func benchLog() *slog.Logger {
	if os.Getenv("SYNCBENCH_DEBUG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
