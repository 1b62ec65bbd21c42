package crmsim

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestWindowRolls(t *testing.T) {
	w := NewWindow(3, 10*time.Second)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type step struct {
		at        time.Duration
		ok        bool
		remaining int
	}
	var got []step
	for _, at := range []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second, 10 * time.Second, 10 * time.Second, 11 * time.Second, 12 * time.Second} {
		ok, rem := w.Allow(t0.Add(at))
		got = append(got, step{at, ok, rem})
	}
	want := []step{
		{0, true, 2}, {time.Second, true, 1}, {2 * time.Second, true, 0}, {3 * time.Second, false, 0},
		{10 * time.Second, true, 0}, {10 * time.Second, false, 0}, {11 * time.Second, true, 0}, {12 * time.Second, true, 0},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(step{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if ok, _ := NewWindow(0, time.Second).Allow(t0); !ok {
		t.Error("unlimited window refused")
	}
}

func TestQuotaResetsAtMidnight(t *testing.T) {
	q := NewQuota(2, time.UTC)
	day := time.Date(2026, 1, 1, 23, 59, 0, 0, time.UTC)
	var got []bool
	for _, at := range []time.Time{day, day, day, day.Add(2 * time.Minute)} {
		ok, _, _ := q.Take(at)
		got = append(got, ok)
	}
	if diff := cmp.Diff([]bool{true, true, false, true}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if used, limit := q.Usage(day.Add(2 * time.Minute)); used != 1 || limit != 2 {
		t.Errorf("usage %d/%d", used, limit)
	}
}

func TestFaultMatching(t *testing.T) {
	tests := []struct {
		name   string
		rule   Rule
		method string
		path   string
		body   string
		fires  []bool
	}{
		{"prefix_and_count", Rule{Path: "/crm/v3/owners", Action: ActionStatus, Count: 2}, "GET", "/crm/v3/owners/1", "", []bool{true, true, false}},
		{"glob", Rule{Path: "/services/data/*/query", Action: ActionStatus}, "GET", "/services/data/v62.0/query", "", []bool{true, true}},
		{"glob_no_match", Rule{Path: "/services/data/*/query", Action: ActionStatus}, "GET", "/services/data/v62.0/sobjects", "", []bool{false}},
		{"method", Rule{Method: "POST", Action: ActionHang}, "GET", "/x", "", []bool{false}},
		{"skip", Rule{Action: ActionStatus, Skip: 1, Count: 1}, "GET", "/x", "", []bool{false, true, false}},
		{"record_in_body", Rule{RecordID: "51234", Action: ActionStatus}, "POST", "/batch", `{"id":"51234"}`, []bool{true}},
		{"record_elsewhere", Rule{RecordID: "51234", Action: ActionStatus}, "POST", "/batch", `{"id":"9"}`, []bool{false}},
		{"never_with_tiny_probability", Rule{Action: ActionStatus, Probability: 1e-12}, "GET", "/x", "", []bool{false, false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewFaults(1)
			f.Add(tt.rule)
			var got []bool
			for range tt.fires {
				_, ok := f.Request(tt.method, tt.path, []byte(tt.body))
				got = append(got, ok)
			}
			if diff := cmp.Diff(tt.fires, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestFaultProbabilityIsRoughlyHonoured(t *testing.T) {
	f := NewFaults(7)
	f.Add(Rule{Action: ActionStatus, Probability: 0.3})
	n := 0
	for range 10000 {
		if _, ok := f.Request("GET", "/", nil); ok {
			n++
		}
	}
	if n < 2700 || n > 3300 {
		t.Errorf("fired %d of 10000 at p=0.3", n)
	}
}

func TestRecordFaultsOnlyMatchRecordLevelRules(t *testing.T) {
	f := NewFaults(1)
	f.Add(Rule{Action: ActionStatus})
	id := f.Add(Rule{Action: ActionRecordError, RecordID: "003ABC"})
	if _, ok := f.Record("PATCH", "/x", "003abc"); !ok {
		t.Error("record rule did not fire (ids compare case-insensitively)")
	}
	if _, ok := f.Record("PATCH", "/x", "003XYZ"); ok {
		t.Error("record rule fired for another id")
	}
	f.Remove(id)
	if _, ok := f.Record("PATCH", "/x", "003ABC"); ok {
		t.Error("removed rule fired")
	}
	if len(f.Rules()) != 1 {
		t.Errorf("rules %+v", f.Rules())
	}
}

func TestLogRecordsRequests(t *testing.T) {
	l := NewLog(4)
	h := l.Record(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if string(b) != "hello" {
			t.Errorf("handler saw body %q", b)
		}
		w.WriteHeader(http.StatusTeapot)
	}), time.Now)
	srv := httptest.NewServer(h)
	defer srv.Close()
	for range 5 {
		resp, err := http.Post(srv.URL+"/a/b?x=1", "text/plain", strings.NewReader("hello"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := http.Post(srv.URL+AdminPrefix+"faults", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	es := l.Entries()
	if len(es) > 4 || len(es) == 0 {
		t.Fatalf("kept %d entries with capacity 4", len(es))
	}
	e := es[len(es)-1]
	if e.Method != "POST" || e.Path != "/a/b" || e.Query != "x=1" || string(e.Body) != "hello" || e.Status != http.StatusTeapot {
		t.Errorf("entry %+v", e)
	}
	if c := l.Counters(); c.Requests != 5 {
		t.Errorf("counters %+v", c)
	}
	if got := len(l.Matching("POST", "/a/")); got != len(es) {
		t.Errorf("matching %d", got)
	}
	l.Reset()
	if len(l.Entries()) != 0 || l.Counters().Requests != 0 {
		t.Error("reset kept data")
	}
}
