// Command benchcharts draws the charts of docs/benchmarks.md (issue 18) from what `make bench`
// measured: ingress req/s and p99 against offered load with the bare publish limit beside it,
// Sync Users time and MongoDB commands against users, and the writer's records/s against its
// rate-limit bound. Each chart names the machine, the date and the load average. It writes SVG
// (gonum/plot) and prints the Markdown that shows them.
//
//	go run ./workbench/benchcharts -in bench/out -out docs/benchmarks -md docs/benchmarks
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchcharts:", err)
		os.Exit(1)
	}
}

// ingressReport is the part of ingressload's -json the charts read.
type ingressReport struct {
	Date       string `json:"date"`
	LoadBefore string `json:"loadavg_before"`
	Results    []struct {
		Target    string  `json:"target"`
		Mode      string  `json:"mode"`
		RPS       float64 `json:"rps"`
		TargetRPS float64 `json:"target_rps"`
		P99Millis float64 `json:"p99_ms"`
	} `json:"results"`
}

// syncResult is the part of syncbench's -json the charts read.
type syncResult struct {
	Platform, CRM int
	LoadAvg       string
	PeakRSSMB     float64
	Runs          []struct {
		Name     string
		TotalMS  int64
		Commands []struct {
			Name     string
			Commands int
		}
	}
}

// writerResult is one BenchmarkFullPathBurst line: the sub-benchmark and its bound ratio.
type writerResult struct {
	Name  string
	Ratio float64
}

type chart struct {
	file, title, caption string
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("benchcharts", flag.ContinueOnError)
	in := fs.String("in", "bench/out", "directory of ingress.json, syncusers.json and writer-fullpath.txt")
	out := fs.String("out", "docs/benchmarks", "directory the SVG files go to")
	rel := fs.String("md", "benchmarks", "path of the SVG directory as the Markdown links name it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	stamp := machine()
	var charts []chart
	var missing []string
	if b, err := os.ReadFile(filepath.Join(*in, "ingress.json")); err == nil {
		var r ingressReport
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("ingress.json: %w", err)
		}
		cs, err := ingressCharts(*out, r, stamp)
		if err != nil {
			return err
		}
		charts = append(charts, cs...)
	} else {
		missing = append(missing, "ingress.json")
	}
	if b, err := os.ReadFile(filepath.Join(*in, "syncusers.json")); err == nil {
		var rs []syncResult
		if err := json.Unmarshal(b, &rs); err != nil {
			return fmt.Errorf("syncusers.json: %w", err)
		}
		cs, err := syncCharts(*out, rs, stamp)
		if err != nil {
			return err
		}
		charts = append(charts, cs...)
	} else {
		missing = append(missing, "syncusers.json")
	}
	if f, err := os.Open(filepath.Join(*in, "writer-fullpath.txt")); err == nil {
		ws, load, err := parseWriter(f)
		f.Close()
		if err != nil {
			return err
		}
		c, err := writerChart(*out, ws, stamp, load)
		if err != nil {
			return err
		}
		charts = append(charts, c)
	} else {
		missing = append(missing, "writer-fullpath.txt")
	}
	for _, c := range charts {
		fmt.Fprintf(stdout, "### %s\n\n![%s](%s/%s)\n\n%s\n\n", c.title, c.title, *rel, c.file, c.caption)
	}
	if len(missing) > 0 {
		fmt.Fprintf(stdout, "Not charted (no input in %s): %s.\n", *in, strings.Join(missing, ", "))
	}
	if len(charts) == 0 {
		return errors.New("nothing to chart")
	}
	return nil
}

// machine names the machine, the date and the load average, for every chart's title.
func machine() string {
	load := "?"
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return fmt.Sprintf("%d cores, %s/%s, %s, load %s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, time.Now().UTC().Format("2006-01-02 15:04 UTC"), load)
}

func newPlot(title, stamp, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title + "\n" + stamp
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	return p
}

func save(p *plot.Plot, dir, file string) error {
	return p.Save(16*vg.Centimeter, 11*vg.Centimeter, filepath.Join(dir, file))
}

// ingressCharts: req/s and p99 against offered load, ingress and the bare publish limit (its peer)
// per provider. The offered load of the closed-loop run ("max") is what it achieved; the open-loop
// run offers half of that.
func ingressCharts(dir string, r ingressReport, stamp string) ([]chart, error) {
	if r.LoadBefore != "" {
		stamp += " (at start of run " + r.LoadBefore + ")"
	}
	rps := newPlot("Ingress req/s vs offered load", stamp, "offered load (req/s)", "achieved req/s")
	p99 := newPlot("Ingress p99 vs offered load", stamp, "offered load (req/s)", "p99 latency (ms)")
	series := map[string]plotter.XYs{}
	lat := map[string]plotter.XYs{}
	for _, res := range r.Results {
		offered := res.TargetRPS
		if res.Mode == "max" || offered == 0 {
			offered = res.RPS
		}
		series[res.Target] = append(series[res.Target], plotter.XY{X: offered, Y: res.RPS})
		lat[res.Target] = append(lat[res.Target], plotter.XY{X: offered, Y: res.P99Millis})
	}
	names := sortedKeys(series)
	var rpsArgs, latArgs []any
	for _, n := range names {
		sortXY(series[n])
		sortXY(lat[n])
		rpsArgs = append(rpsArgs, n, series[n])
		latArgs = append(latArgs, n, lat[n])
	}
	if err := plotutil.AddLinePoints(rps, rpsArgs...); err != nil {
		return nil, err
	}
	if err := plotutil.AddLinePoints(p99, latArgs...); err != nil {
		return nil, err
	}
	if err := save(rps, dir, "ingress-rps.svg"); err != nil {
		return nil, err
	}
	if err := save(p99, dir, "ingress-p99.svg"); err != nil {
		return nil, err
	}
	caption := "Each target at the rate its closed-loop run reached (max) and open-loop at half of it; `bare-*` is the peer: the same Echo server and publish path without ingress's work."
	return []chart{
		{"ingress-rps.svg", "Ingress req/s against offered load, with the bare publish limit", caption},
		{"ingress-p99.svg", "Ingress p99 latency against offered load, with the bare publish limit", caption},
	}, nil
}

// syncCharts: whole-run time and MongoDB commands against platform users, first and second run.
func syncCharts(dir string, rs []syncResult, stamp string) ([]chart, error) {
	loads := []string{}
	times := map[string]plotter.XYs{}
	reads := map[string]plotter.XYs{}
	writes := map[string]plotter.XYs{}
	for _, r := range rs {
		loads = append(loads, r.LoadAvg)
		for _, run := range r.Runs {
			name := strings.Fields(run.Name)[0] // "first", "second"
			x := float64(r.Platform)
			times[name] = append(times[name], plotter.XY{X: x, Y: float64(run.TotalMS) / 1000})
			var nr, nw int
			for _, c := range run.Commands {
				switch c.Name {
				case "find", "getMore", "aggregate", "count", "distinct":
					nr += c.Commands
				case "insert", "update", "delete", "findAndModify":
					nw += c.Commands
				}
			}
			reads[name] = append(reads[name], plotter.XY{X: x, Y: float64(nr)})
			writes[name] = append(writes[name], plotter.XY{X: x, Y: float64(nw)})
		}
	}
	crm := 0
	if len(rs) > 0 {
		crm = rs[0].CRM
	}
	stamp += " (1-min load at end of each size: " + strings.Join(loads, ", ") + ")"
	tp := newPlot(fmt.Sprintf("Sync Users whole run vs users (%d CRM users per provider)", crm), stamp, "platform users", "seconds (both providers)")
	var args []any
	for _, n := range sortedKeys(times) {
		sortXY(times[n])
		args = append(args, n+" run", times[n])
	}
	if err := plotutil.AddLinePoints(tp, args...); err != nil {
		return nil, err
	}
	// The goal of issue 18 for the second run: 5 s at 10k users (and 30 s at 10k × 100k).
	if _, err := hline(tp, 5, "goal: second run 5 s (10k × 10k)"); err != nil {
		return nil, err
	}
	cp := newPlot("Sync Users MongoDB commands vs users", stamp, "platform users", "commands per run")
	args = args[:0]
	for _, n := range sortedKeys(reads) {
		sortXY(reads[n])
		sortXY(writes[n])
		args = append(args, n+" run: reads", reads[n], n+" run: writes", writes[n])
	}
	if err := plotutil.AddLinePoints(cp, args...); err != nil {
		return nil, err
	}
	if err := save(tp, dir, "syncusers-time.svg"); err != nil {
		return nil, err
	}
	if err := save(cp, dir, "syncusers-commands.svg"); err != nil {
		return nil, err
	}
	return []chart{
		{"syncusers-time.svg", "Sync Users time against users", "Whole run, both providers, embedded FerretDB; the second run applies about 4 % CRM changes. The dashed line is the goal for the second run."},
		{"syncusers-commands.svg", "Sync Users MongoDB commands against users", "Counted by the driver's command monitor: reads are find and getMore, writes insert, update, delete and findAndModify. A second run's writes follow its changes, not its users."},
	}, nil
}

func hline(p *plot.Plot, y float64, label string) (*plotter.Line, error) {
	xmin, xmax := p.X.Min, p.X.Max
	if xmax <= xmin {
		xmax = xmin + 1
	}
	l, err := plotter.NewLine(plotter.XYs{{X: xmin, Y: y}, {X: xmax, Y: y}})
	if err != nil {
		return nil, err
	}
	l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(l)
	p.Legend.Add(label, l)
	return l, nil
}

var benchLine = regexp.MustCompile(`^BenchmarkFullPathBurst/(\S+?)(?:-\d+)?\s+\d+\s+.*?([0-9.]+) bound-ratio`)
var loadLine = regexp.MustCompile(`^([0-9.]+ [0-9.]+ [0-9.]+) `)

// parseWriter reads `go test -bench FullPathBurst` output: the bound ratio of each sub-benchmark,
// and a /proc/loadavg line if the script appended one.
func parseWriter(r io.Reader) ([]writerResult, string, error) {
	var out []writerResult
	load := ""
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if m := benchLine.FindStringSubmatch(sc.Text()); m != nil {
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				return nil, "", err
			}
			out = append(out, writerResult{Name: m[1], Ratio: v})
		} else if m := loadLine.FindStringSubmatch(sc.Text()); m != nil {
			load = m[1]
		}
	}
	if len(out) == 0 {
		return nil, "", errors.New("writer-fullpath.txt: no BenchmarkFullPathBurst results")
	}
	return out, load, sc.Err()
}

// writerChart: records/s as a share of the rate-limit bound (batch size × calls per second the
// sandbox allows), per provider and variant, with the bound and the 0.9 goal.
func writerChart(dir string, ws []writerResult, stamp, load string) (chart, error) {
	if load != "" {
		stamp += " (at end of run " + load + ")"
	}
	p := newPlot("Writer records/s vs the rate-limit bound", stamp, "", "records/s ÷ bound")
	// Rounds of the same sub-benchmark are shown side by side.
	var vals plotter.Values
	var names []string
	for _, w := range ws {
		vals = append(vals, w.Ratio)
		names = append(names, w.Name)
	}
	bars, err := plotter.NewBarChart(vals, vg.Points(14))
	if err != nil {
		return chart{}, err
	}
	bars.Color = plotutil.Color(0)
	p.Add(bars)
	p.NominalX(names...)
	p.Y.Min, p.Y.Max = 0, 1.1
	for _, g := range []struct {
		y     float64
		label string
	}{{1, "bound (1.0)"}, {0.9, "goal (0.9)"}} {
		l, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: g.y}, {X: float64(len(vals)) - 0.5, Y: g.y}})
		if err != nil {
			return chart{}, err
		}
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(l)
		p.Legend.Add(g.label, l)
	}
	if err := save(p, dir, "writer-bound.svg"); err != nil {
		return chart{}, err
	}
	return chart{"writer-bound.svg", "Writer records/s against the rate-limit bound",
		"Full path (JetStream → writer → records KV → CRM sandbox → history); each bar one round; `-one429` runs get one rate-limit answer half-way through the burst."}, nil
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func sortXY(xy plotter.XYs) {
	slices.SortFunc(xy, func(a, b plotter.XY) int {
		switch {
		case a.X < b.X:
			return -1
		case a.X > b.X:
			return 1
		}
		return 0
	})
}
