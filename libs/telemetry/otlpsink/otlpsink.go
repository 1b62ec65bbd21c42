// Package otlpsink is an OTLP/HTTP receiver that keeps what it is sent in memory: point
// OTEL_EXPORTER_OTLP_ENDPOINT at a Sink served by an HTTP server and read back the spans and
// metric names a process exported. It decodes the real protobuf bodies (POST /v1/traces,
// /v1/metrics, gzip or not) so a test sees exactly what a collector would.
package otlpsink

import (
	"compress/gzip"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"sync"

	collmetric "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	colltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"
)

// Span is a received span flattened with its resource.
type Span struct {
	Service      string
	Resource     map[string]string
	Name         string
	Kind         int32
	TraceID      string
	SpanID       string
	ParentSpanID string
	Attributes   map[string]string
	// Links are the linked spans as "traceid/spanid".
	Links []string
}

// Sink collects exported telemetry.
type Sink struct {
	mu      sync.Mutex
	spans   []Span
	metrics map[string]map[string]bool // metric name -> service names
}

// New returns an empty sink.
func New() *Sink { return &Sink{metrics: map[string]map[string]bool{}} }

// ServeHTTP accepts OTLP/HTTP protobuf exports.
func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var resp proto.Message
	switch r.URL.Path {
	case "/v1/traces":
		var req colltrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.addTraces(&req)
		resp = &colltrace.ExportTraceServiceResponse{}
	case "/v1/metrics":
		var req collmetric.ExportMetricsServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.addMetrics(&req)
		resp = &collmetric.ExportMetricsServiceResponse{}
	default:
		http.NotFound(w, r)
		return
	}
	out, _ := proto.Marshal(resp)
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = anyString(kv.GetValue())
	}
	return m
}

func anyString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_BoolValue:
		if x.BoolValue {
			return "true"
		}
		return "false"
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	}
	return v.String()
}

func (s *Sink) addTraces(req *colltrace.ExportTraceServiceRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		res := attrs(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				span := Span{
					Service: res["service.name"], Resource: res, Name: sp.GetName(), Kind: int32(sp.GetKind()),
					TraceID: hex.EncodeToString(sp.GetTraceId()), SpanID: hex.EncodeToString(sp.GetSpanId()),
					Attributes: attrs(sp.GetAttributes()),
				}
				if p := sp.GetParentSpanId(); len(p) > 0 {
					span.ParentSpanID = hex.EncodeToString(p)
				}
				for _, l := range sp.GetLinks() {
					span.Links = append(span.Links, hex.EncodeToString(l.GetTraceId())+"/"+hex.EncodeToString(l.GetSpanId()))
				}
				s.spans = append(s.spans, span)
			}
		}
	}
}

func (s *Sink) addMetrics(req *collmetric.ExportMetricsServiceRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rm := range req.GetResourceMetrics() {
		svc := attrs(rm.GetResource().GetAttributes())["service.name"]
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				if s.metrics[m.GetName()] == nil {
					s.metrics[m.GetName()] = map[string]bool{}
				}
				s.metrics[m.GetName()][svc] = true
			}
		}
	}
}

// Spans returns a copy of every span received so far.
func (s *Sink) Spans() []Span {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Span(nil), s.spans...)
}

// MetricServices returns the services that exported the named metric.
func (s *Sink) MetricServices(name string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for svc := range s.metrics[name] {
		out = append(out, svc)
	}
	return out
}
