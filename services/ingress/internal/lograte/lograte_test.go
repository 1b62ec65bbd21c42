package lograte

import (
	"strconv"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(0, 0)
	l := New(2, time.Minute, func() time.Time { return now })
	var got []string
	for i := range 5 {
		if ok, s := l.Allow("a"); ok {
			got = append(got, "a"+strconv.Itoa(i)+"/"+strconv.Itoa(s))
		}
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Error("class b limited by class a")
	}
	now = now.Add(time.Minute)
	if ok, s := l.Allow("a"); !ok || s != 3 {
		t.Errorf("after the window: ok %v suppressed %d, want true 3", ok, s)
	}
	if len(got) != 2 || got[0] != "a0/0" || got[1] != "a1/0" {
		t.Errorf("written %v", got)
	}
	for i := range 3 * maxClasses {
		l.Allow(strconv.Itoa(i))
	}
	if n := len(l.classes); n > maxClasses {
		t.Errorf("%d classes kept, want at most %d", n, maxClasses)
	}
}
