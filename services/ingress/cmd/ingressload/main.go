// Command ingressload measures ingress over loopback on an embedded NATS JetStream: requests per
// second, server CPU per request and p50/p99 latency of 1-event HubSpot batches and 1-notification
// Salesforce messages, and, in the same run and with the same stream settings, the "bare" limit:
// an Echo handler that only publishes the raw body to the same stream through the same publisher.
//
// The server (ingress and bare handlers, Echo, the publisher and the embedded NATS server) runs in
// a child process, this program's own executable started with OWNERSYNC_INGRESSLOAD_SERVER=1; the
// load generator stays in the parent, so its CPU is neither counted as the server's nor taken from
// it by the Go scheduler (issue 18). Each target is driven closed-loop at full speed to find its
// maximum rate (targets take turns over several rounds, in alternating order), then open-loop at
// half that rate to measure latency under load. Every request carries new event ids, so every
// request stores a new message; after every run the tool checks that the stream holds one new
// message per acknowledged request, and fails otherwise. The load tenant is configured as in
// production: both providers on, a shared key required for Outbound Messages.
//
// Figures: ingress ÷ bare req/s (medians and the median of paired rounds) and bare ÷ ingress server
// CPU per request (medians and paired), the goal being ≥ 0.9 (issue 18). -profile DIR writes a CPU
// profile of the server process for every max-rate run (DIR/<target>-<round>.pprof; `go tool pprof
// -top DIR/ingress-hubspot-*.pprof` merges a target's rounds).
//
//	go run ./services/ingress/cmd/ingressload -duration 5s -rounds 3 -json bench.json -profile prof
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ownersync/ownersync/libs/sfid"
	"github.com/ownersync/ownersync/services/ingress/internal/hubspotsig"
	"github.com/ownersync/ownersync/services/ingress/internal/webhook"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if os.Getenv(serverEnv) == "1" {
		err = serve(ctx, os.Stdin, os.Stdout)
	} else {
		err = run(ctx, os.Args, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ingressload:", err)
		os.Exit(1)
	}
}

const (
	loadTenant = "load"
	loadOrg15  = "00D5g000004XyZa"
	loadPortal = 4412345
	loadApp    = 3100456
	loadSecret = "load-client-secret"
)

// Goal is the ingress ÷ bare ratio issue 18 asks for.
const Goal = 0.9

// Result is one measured run.
type Result struct {
	Target      string  `json:"target"` // ingress-hubspot, bare-hubspot, …
	Mode        string  `json:"mode"`   // max (closed loop) or half (open loop at half the max rate)
	Requests    int     `json:"requests"`
	Errors      int     `json:"errors"`
	Seconds     float64 `json:"seconds"`
	RPS         float64 `json:"rps"`
	TargetRPS   float64 `json:"target_rps,omitempty"`
	P50Millis   float64 `json:"p50_ms"`
	P99Millis   float64 `json:"p99_ms"`
	MaxMillis   float64 `json:"max_ms"`
	Concurrency int     `json:"concurrency,omitempty"`
	// CPUMicros is the server process's CPU time (handlers, Echo, publisher, NATS server and its
	// file store) per request during the run: unlike req/s it does not depend on how much CPU other
	// work on the machine leaves to the server.
	CPUMicros float64 `json:"cpu_us_per_request,omitempty"`
	// GenCPUMicros is the load generator's CPU time per request (the parent process).
	GenCPUMicros float64 `json:"generator_cpu_us_per_request,omitempty"`
	// Stored is how many messages the run added to the stream: one per acknowledged request.
	Stored uint64 `json:"stored"`
	// Profile is the server's CPU profile of the run, when -profile was given.
	Profile string `json:"profile,omitempty"`
}

// Report is the whole run.
type Report struct {
	Date      string `json:"date"`
	GoVersion string `json:"go_version"`
	CPUs      int    `json:"cpus"`
	GOOS      string `json:"goos"`
	GOARCH    string `json:"goarch"`
	Storage   string `json:"storage"`
	// ServerPID is the server's process; the load generator runs in another (GeneratorPID).
	ServerPID    int `json:"server_pid"`
	GeneratorPID int `json:"generator_pid"`
	// LoadBefore and LoadAfter are /proc/loadavg at the start and the end of the run (Linux):
	// other work on the machine takes CPU from all targets alike, but makes single runs noisy.
	LoadBefore string             `json:"loadavg_before,omitempty"`
	LoadAfter  string             `json:"loadavg_after,omitempty"`
	Results    []Result           `json:"results"`
	Ratios     map[string]float64 `json:"ingress_to_bare_ratio"`
	// PairedRatios is the median over rounds of ingress/bare req/s within the same round, where the
	// two ran back to back (in alternating order): less sensitive to load that comes and goes
	// than the ratio of the two medians.
	PairedRatios map[string]float64 `json:"ingress_to_bare_paired_ratio"`
	// CPURatios is bare CPU per request / ingress CPU per request of the server process (medians
	// over rounds): the throughput ratio on a machine where the server had the CPUs to itself.
	CPURatios map[string]float64 `json:"bare_to_ingress_cpu_ratio"`
	// PairedCPURatios is the median over rounds of bare/ingress server CPU per request.
	PairedCPURatios map[string]float64   `json:"bare_to_ingress_paired_cpu_ratio"`
	RoundRatios     map[string][]float64 `json:"ingress_to_bare_round_ratios"`
	RoundCPURatios  map[string][]float64 `json:"bare_to_ingress_round_cpu_ratios"`
	HalfRateOK      map[string]bool      `json:"p99_under_10ms_at_half_rate"`
	// Rounds are every max-rate run of every target, in round order (Results has the median).
	Rounds map[string][]Result `json:"rounds"`
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	duration := fs.Duration("duration", 5*time.Second, "length of each measured run")
	warmup := fs.Duration("warmup", time.Second, "unmeasured warm-up before each max-rate run")
	concurrency := fs.Int("concurrency", 16, "concurrent clients in the max-rate runs")
	memory := fs.Bool("memory", false, "memory storage instead of file storage")
	jsonOut := fs.String("json", "", "also write the report as JSON to this file")
	only := fs.String("targets", "", "comma-separated subset of ingress-hubspot,bare-hubspot,ingress-salesforce,bare-salesforce")
	nRounds := fs.Int("rounds", 3, "max-rate rounds per target (the median counts)")
	profileDir := fs.String("profile", "", "write a CPU profile of the server process for every max-rate run into this directory")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *profileDir != "" {
		if err := os.MkdirAll(*profileDir, 0o755); err != nil {
			return err
		}
		abs, err := filepath.Abs(*profileDir)
		if err != nil {
			return err
		}
		*profileDir = abs
	}

	srv, err := startServer(ctx, *memory)
	if err != nil {
		return err
	}
	defer srv.stop()
	base, org18 := srv.hello.Base, srv.hello.Org18
	sfPath := webhook.SalesforcePath + "?" + webhook.SharedKeyParam + "=" + url.QueryEscape(srv.hello.SharedKey)

	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute}}
	var seq atomic.Int64
	targets := []struct {
		name string
		req  func() (*http.Request, error)
	}{
		{"ingress-hubspot", func() (*http.Request, error) { return hubspotRequest(base, webhook.HubSpotPath, seq.Add(1)) }},
		{"bare-hubspot", func() (*http.Request, error) { return hubspotRequest(base, "/bare/hubspot", seq.Add(1)) }},
		{"ingress-salesforce", func() (*http.Request, error) { return salesforceRequest(base+sfPath, org18, seq.Add(1)) }},
		{"bare-salesforce", func() (*http.Request, error) { return salesforceRequest(base+"/bare/salesforce", org18, seq.Add(1)) }},
	}
	rep := Report{Date: time.Now().UTC().Format(time.RFC3339), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(),
		GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, Storage: "file", ServerPID: srv.hello.PID, GeneratorPID: os.Getpid(),
		Ratios: map[string]float64{}, HalfRateOK: map[string]bool{}, PairedRatios: map[string]float64{},
		RoundRatios: map[string][]float64{}, CPURatios: map[string]float64{}, PairedCPURatios: map[string]float64{},
		RoundCPURatios: map[string][]float64{}}
	if *memory {
		rep.Storage = "memory"
	}
	rep.LoadBefore = loadAvg()
	var active []int
	for i, tg := range targets {
		if *only == "" || strings.Contains(","+*only+",", ","+tg.name+",") {
			active = append(active, i)
		}
	}
	// Max rate: the targets take turns, round after round, so that noise from other work on the
	// machine hits ingress and bare alike; the median round counts.
	rounds := map[string][]Result{}
	for _, i := range active {
		if _, err := srv.measure(ctx, targets[i].name, "", func() Result {
			return closedLoop(ctx, client, targets[i].req, *concurrency, *warmup)
		}); err != nil {
			return err
		}
	}
	for r := 0; r < *nRounds; r++ {
		order := active
		if r%2 == 1 {
			// Odd rounds run the targets in reverse, so that neither side of a pair always goes
			// first.
			order = make([]int, len(active))
			for k, i := range active {
				order[len(active)-1-k] = i
			}
		}
		for _, i := range order {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			prof := ""
			if *profileDir != "" {
				prof = filepath.Join(*profileDir, fmt.Sprintf("%s-%d.pprof", targets[i].name, r+1))
			}
			res, err := srv.measure(ctx, targets[i].name, prof, func() Result {
				return closedLoop(ctx, client, targets[i].req, *concurrency, *duration)
			})
			if err != nil {
				return err
			}
			res.Target, res.Mode = targets[i].name, "max"
			rounds[targets[i].name] = append(rounds[targets[i].name], res)
		}
	}
	maxRPS := map[string]float64{}
	roundRPS := map[string][]float64{} // in round order, before sorting
	roundCPU := map[string][]float64{}
	for _, i := range active {
		for _, r := range rounds[targets[i].name] {
			roundRPS[targets[i].name] = append(roundRPS[targets[i].name], r.RPS)
			roundCPU[targets[i].name] = append(roundCPU[targets[i].name], r.CPUMicros)
		}
	}
	cpuPerReq := map[string]float64{}
	for _, i := range active {
		cpuPerReq[targets[i].name] = median(roundCPU[targets[i].name])
	}
	for _, i := range active {
		rs := append([]Result(nil), rounds[targets[i].name]...)
		sort.Slice(rs, func(a, b int) bool { return rs[a].RPS < rs[b].RPS })
		med := rs[len(rs)/2]
		rep.Results = append(rep.Results, med)
		maxRPS[med.Target] = med.RPS
	}
	// Latency at half the maximum rate, open loop.
	for _, i := range active {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		name := targets[i].name
		half, err := srv.measure(ctx, name, "", func() Result {
			return openLoop(ctx, client, targets[i].req, maxRPS[name]/2, *duration, 4**concurrency)
		})
		if err != nil {
			return err
		}
		half.Target, half.Mode = name, "half"
		rep.Results = append(rep.Results, half)
		rep.HalfRateOK[name] = half.P99Millis < 10 && half.Errors == 0
	}
	for _, p := range []string{"hubspot", "salesforce"} {
		if b := maxRPS["bare-"+p]; b > 0 && maxRPS["ingress-"+p] > 0 {
			rep.Ratios[p] = maxRPS["ingress-"+p] / b
		}
		if c := cpuPerReq["ingress-"+p]; c > 0 && cpuPerReq["bare-"+p] > 0 {
			rep.CPURatios[p] = cpuPerReq["bare-"+p] / c
		}
		if rs := pairedRatios(roundRPS["ingress-"+p], roundRPS["bare-"+p]); len(rs) > 0 {
			rep.RoundRatios[p] = rs
			rep.PairedRatios[p] = median(rs)
		}
		// CPU per request is a cost: bare over ingress, so that ≥ 0.9 reads as for req/s.
		if rs := pairedRatios(roundCPU["bare-"+p], roundCPU["ingress-"+p]); len(rs) > 0 {
			rep.RoundCPURatios[p] = rs
			rep.PairedCPURatios[p] = median(rs)
		}
	}
	rep.Rounds = rounds
	rep.LoadAfter = loadAvg()
	printReport(stdout, rep)
	if *jsonOut != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// pairedRatios is num[k]/den[k] for every round k (nil unless both have every round).
func pairedRatios(num, den []float64) []float64 {
	if len(num) == 0 || len(num) != len(den) {
		return nil
	}
	var rs []float64
	for k := range num {
		if den[k] > 0 && num[k] > 0 {
			rs = append(rs, num[k]/den[k])
		}
	}
	return rs
}

// median of xs (the upper one of an even count); 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func printReport(w io.Writer, rep Report) {
	fmt.Fprintf(w, "ingressload  %s  %s %s/%s  %d CPUs  JetStream %s storage\n", rep.Date, rep.GoVersion, rep.GOOS, rep.GOARCH, rep.CPUs, rep.Storage)
	fmt.Fprintf(w, "server: process %d (handlers, publisher, embedded NATS); load generator: process %d\n", rep.ServerPID, rep.GeneratorPID)
	if rep.LoadBefore != "" {
		fmt.Fprintf(w, "load average before: %s  after: %s\n", rep.LoadBefore, rep.LoadAfter)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-20s %-5s %9s %10s %9s %9s %9s %7s %12s %12s\n", "target", "mode", "requests", "req/s", "p50 ms", "p99 ms", "max ms", "errors", "server µs/req", "loadgen µs/req")
	for _, r := range rep.Results {
		fmt.Fprintf(w, "%-20s %-5s %9d %10.0f %9.2f %9.2f %9.2f %7d %12.0f %12.0f\n", r.Target, r.Mode, r.Requests, r.RPS, r.P50Millis, r.P99Millis, r.MaxMillis, r.Errors, r.CPUMicros, r.GenCPUMicros)
	}
	fmt.Fprintln(w)
	for _, r := range rep.Results {
		if r.Errors > 0 {
			// A failed request is a 503 (publish timeout) or a transport error: the numbers of that
			// run are suspect, but the report is still written.
			fmt.Fprintf(w, "WARNING: %s (%s): %d of %d requests were not acknowledged\n", r.Target, r.Mode, r.Errors, r.Requests)
		}
	}
	for _, p := range []string{"hubspot", "salesforce"} {
		if v, ok := rep.Ratios[p]; ok {
			fmt.Fprintf(w, "%s: ingress / bare req/s = %.2f (medians), %.2f (median of paired rounds %s); server CPU per request bare / ingress = %.2f (medians), %.2f (median of paired rounds %s) (goal ≥ %.2f); p99 < 10 ms at half rate: ingress %v, bare %v\n",
				p, v, rep.PairedRatios[p], fmtRatios(rep.RoundRatios[p]), rep.CPURatios[p], rep.PairedCPURatios[p], fmtRatios(rep.RoundCPURatios[p]), Goal,
				rep.HalfRateOK["ingress-"+p], rep.HalfRateOK["bare-"+p])
		}
	}
}

func fmtRatios(rs []float64) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = strconv.FormatFloat(r, 'f', 2, 64)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// do sends one request and reports whether it was acknowledged.
func do(client *http.Client, mk func() (*http.Request, error)) bool {
	req, err := mk()
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// closedLoop runs n clients back to back for d.
func closedLoop(ctx context.Context, client *http.Client, mk func() (*http.Request, error), n int, d time.Duration) Result {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu   sync.Mutex
		lat  []time.Duration
		errs int
		wg   sync.WaitGroup
	)
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			bad := 0
			for ctx.Err() == nil {
				t0 := time.Now()
				if !do(client, mk) {
					bad++
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			errs += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	r := summarize(lat, time.Since(start))
	r.Errors, r.Concurrency = errs, n
	return r
}

// openLoop offers requests at a fixed rate for d through a pool of workers, and measures latency
// from each request's scheduled send time, so that a server that falls behind cannot hide its
// queueing (no coordinated omission). The pool bounds connections; when every worker is busy the
// schedule slips and the slip counts as latency.
func openLoop(ctx context.Context, client *http.Client, mk func() (*http.Request, error), rate float64, d time.Duration, workers int) Result {
	if rate <= 0 {
		return Result{}
	}
	interval := time.Duration(float64(time.Second) / rate)
	total := int(d.Seconds() * rate)
	var (
		mu   sync.Mutex
		lat  = make([]time.Duration, 0, total)
		errs int
		wg   sync.WaitGroup
	)
	sched := make(chan time.Time, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for at := range sched {
				ok := do(client, mk)
				l := time.Since(at)
				mu.Lock()
				lat = append(lat, l)
				if !ok {
					errs++
				}
				mu.Unlock()
			}
		}()
	}
	start := time.Now()
	for i := 0; i < total && ctx.Err() == nil; i++ {
		at := start.Add(time.Duration(i) * interval)
		if w := time.Until(at); w > 0 {
			time.Sleep(w)
		}
		sched <- at
	}
	close(sched)
	wg.Wait()
	r := summarize(lat, time.Since(start))
	r.Errors, r.TargetRPS, r.Concurrency = errs, rate, workers
	return r
}

func summarize(lat []time.Duration, took time.Duration) Result {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		i := int(p * float64(len(lat)-1))
		return float64(lat[i]) / float64(time.Millisecond)
	}
	return Result{Requests: len(lat), Seconds: took.Seconds(), RPS: float64(len(lat)) / took.Seconds(),
		P50Millis: pct(0.50), P99Millis: pct(0.99), MaxMillis: pct(1)}
}

// hubspotRequest is a signed 1-event batch with a unique eventId.
func hubspotRequest(base, path string, n int64) (*http.Request, error) {
	now := time.Now()
	body := fmt.Sprintf(`[{"eventId":%d,"subscriptionId":2730011,"portalId":%d,"appId":%d,"occurredAt":%d,"subscriptionType":"contact.propertyChange","attemptNumber":0,"objectId":%d,"propertyName":"hubspot_owner_id","propertyValue":"71234567","changeSource":"CRM_UI","sourceId":"userId:9988776"}]`,
		n, loadPortal, loadApp, now.UnixMilli(), 50000+n)
	req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(hubspotsig.HeaderTimestamp, ts)
	req.Header.Set(hubspotsig.HeaderV3, hubspotsig.SignV3(loadSecret, http.MethodPost, base+path, []byte(body), ts))
	return req, nil
}

// salesforceRequest is a 1-notification Outbound Message with a unique notification id.
func salesforceRequest(url, org18 string, n int64) (*http.Request, error) {
	notif, err := sfid.To18(fmt.Sprintf("04l5g%010d", n))
	if err != nil {
		return nil, err
	}
	contact, err := sfid.To18(fmt.Sprintf("0035g%010d", n))
	if err != nil {
		return nil, err
	}
	body := `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>` + org18 + `</OrganizationId>
   <ActionId>04k5g000000AbCdAAK</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/62.0/00D5g000004XyZa</EnterpriseUrl>
   <PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/62.0/00D5g000004XyZa</PartnerUrl>
   <Notification>
    <Id>` + notif + `</Id>
    <sObject xsi:type="sf:Contact" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>` + contact + `</sf:Id>
     <sf:Email>load@example.com</sf:Email>
     <sf:OwnerId>0055g00000AsDfGAAV</sf:OwnerId>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>
`
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	return req, nil
}

// processCPU is the user and system CPU time the process has used so far (0 where getrusage is
// not available).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAvg returns the 1, 5 and 15 minute load averages, or "" where /proc/loadavg does not exist.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
