// Package bodybudget reads request bodies without letting unauthenticated clients exhaust memory
// (issue 13 item 5). A body buffer grows with the bytes that actually arrived — never with the
// Content-Length a client declares — and the bytes of all bodies being read at once are capped per
// process: a read that would pass the cap fails with ErrBusy, which handlers answer with 503 and
// Retry-After. Per-request limits (http.MaxBytesReader) stay the caller's.
package bodybudget

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/metric"
)

// DefaultMax is the default cap of in-flight body bytes per process.
const DefaultMax = 128 << 20

// firstChunk is the most a read allocates before bytes arrive: an idle socket that declares 5 MB
// costs this, not 5 MB.
const firstChunk = 4 << 10

// ErrBusy means the process holds as many body bytes as it may; the client should retry later.
var ErrBusy = errors.New("too many request body bytes in flight; retry later")

// Budget is the per-process cap. Its zero value is not usable; call New.
type Budget struct {
	max      int64
	inFlight atomic.Int64
	gauge    metric.Int64UpDownCounter
}

// New returns a budget of max bytes (DefaultMax when max <= 0). meter, when not nil, gets the
// gauge ownersync.ingress.body.inflight (bytes held by bodies being read or handled).
func New(max int64, meter metric.Meter) *Budget {
	if max <= 0 {
		max = DefaultMax
	}
	b := &Budget{max: max}
	if meter != nil {
		b.gauge, _ = meter.Int64UpDownCounter("ownersync.ingress.body.inflight", metric.WithUnit("By"),
			metric.WithDescription("Request body bytes held by requests being read or handled, capped per process."))
	}
	return b
}

// InFlight returns the bytes currently held.
func (b *Budget) InFlight() int64 { return b.inFlight.Load() }

// Max returns the cap.
func (b *Budget) Max() int64 { return b.max }

func (b *Budget) add(n int64) {
	b.inFlight.Add(n)
	if b.gauge != nil {
		b.gauge.Add(context.Background(), n)
	}
}

// poolMax is the largest buffer kept for reuse: webhooks are a few KB; a rare 5 MB Outbound
// Message gets a buffer of its own that the garbage collector takes back.
const poolMax = 64 << 10

// buffers holds released body buffers (as *[]byte, so that putting one back allocates nothing).
// A buffer is only ever handed to one request at a time: release puts it back once, after which
// the body must not be used.
var buffers = sync.Pool{New: func() any {
	b := make([]byte, 0, firstChunk)
	return &b
}}

// ReadAll reads r to its end into a buffer that grows with the bytes read, charging them to the
// budget. It returns the body and a release function the caller must call once it no longer needs
// the body (also on error); the body's memory is reused by later requests after release, so
// nothing may keep the body or a slice of it past release. Calling release again does nothing. A
// read past the cap returns ErrBusy.
func (b *Budget) ReadAll(r io.Reader) (body []byte, release func(), err error) {
	st := &reading{b: b, pooled: buffers.Get().(*[]byte)}
	buf := (*st.pooled)[:0]
	for {
		if len(buf) == cap(buf) {
			// Grow by what has arrived (doubling), bounded by firstChunk at the start.
			n := min(max(cap(buf), 512), 1<<20)
			if cap(buf) < firstChunk {
				n = firstChunk - cap(buf)
			}
			buf = append(buf, make([]byte, n)...)[:len(buf)]
		}
		n, rerr := r.Read(buf[len(buf):cap(buf)])
		if n > 0 {
			if b.inFlight.Add(int64(n)) > b.max {
				b.inFlight.Add(-int64(n))
				st.buf = buf
				return nil, st.release, ErrBusy
			}
			if b.gauge != nil {
				b.gauge.Add(context.Background(), int64(n))
			}
			st.held += int64(n)
			buf = buf[:len(buf)+n]
		}
		if rerr == io.EOF {
			st.buf = buf
			return buf, st.release, nil
		}
		if rerr != nil {
			st.buf = buf
			return buf, st.release, rerr
		}
	}
}

// reading is one body being read or held.
type reading struct {
	b      *Budget
	held   int64
	buf    []byte
	pooled *[]byte // nil once released
}

func (st *reading) release() {
	st.b.add(-st.held)
	st.held = 0
	if st.pooled == nil {
		return
	}
	if cap(st.buf) <= poolMax {
		*st.pooled = st.buf[:0]
		buffers.Put(st.pooled)
	}
	st.pooled, st.buf = nil, nil
}
