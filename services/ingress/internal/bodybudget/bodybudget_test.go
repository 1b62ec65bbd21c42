package bodybudget

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadAllChargesAndReleases(t *testing.T) {
	b := New(100, nil)
	body, release, err := b.ReadAll(strings.NewReader(strings.Repeat("x", 60)))
	if err != nil || len(body) != 60 || b.InFlight() != 60 {
		t.Fatalf("ReadAll = %d bytes, %v; in flight %d", len(body), err, b.InFlight())
	}
	if _, release2, err := b.ReadAll(strings.NewReader(strings.Repeat("y", 60))); !errors.Is(err, ErrBusy) {
		t.Errorf("second body past the cap: %v, want ErrBusy", err)
	} else {
		release2()
	}
	release()
	if b.InFlight() != 0 {
		t.Errorf("after release: %d in flight", b.InFlight())
	}
	big := bytes.Repeat([]byte("z"), 3<<20)
	b = New(0, nil)
	got, release, err := b.ReadAll(io.MultiReader(bytes.NewReader(big[:1]), bytes.NewReader(big[1:])))
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("3 MB body: %d bytes, %v", len(got), err)
	}
	release()
}

// TestReleasedBuffersAreReused: a body's buffer goes back to a pool on release, so a webhook of a
// few KB costs no new buffer per request (issue 18: 4.6 KB allocated per Outbound Message); a body
// not yet released is never handed out again, and a second release is harmless.
func TestReleasedBuffersAreReused(t *testing.T) {
	b := New(0, nil)
	body := strings.Repeat("<x/>", 400) // 1.6 KB, a 1-notification Outbound Message
	read := func() ([]byte, func()) {
		t.Helper()
		got, release, err := b.ReadAll(strings.NewReader(body))
		if err != nil || string(got) != body {
			t.Fatalf("ReadAll: %d bytes, %v", len(got), err)
		}
		return got, release
	}
	_, release := read()
	release()
	// Two allocations are the read's state and its release function; none is a buffer.
	r := strings.NewReader(body)
	if n := testing.AllocsPerRun(50, func() {
		r.Reset(body)
		got, release, err := b.ReadAll(r)
		if err != nil || len(got) != len(body) {
			t.Fatalf("ReadAll: %d bytes, %v", len(got), err)
		}
		release()
	}); n > 2 {
		t.Errorf("%.0f allocations per body read and released, want at most 2", n)
	}

	held, releaseHeld := read()
	saved := string(held)
	releaseHeld()
	releaseHeld() // a second release must not put the buffer in the pool twice
	a, releaseA := read()
	bb, releaseB := read()
	if &a[0] == &bb[0] {
		t.Fatal("two bodies held at once share one buffer")
	}
	copy(a, strings.Repeat("A", len(a)))
	if string(bb) != body || saved != body {
		t.Errorf("writing one held body changed another")
	}
	releaseA()
	releaseB()
	if b.InFlight() != 0 {
		t.Errorf("in flight after every release: %d", b.InFlight())
	}
}
