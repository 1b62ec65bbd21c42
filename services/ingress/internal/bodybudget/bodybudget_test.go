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
