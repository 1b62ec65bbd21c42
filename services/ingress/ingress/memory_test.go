package ingress_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ownersync/ownersync/services/ingress/ingress"
	"github.com/ownersync/ownersync/workbench/harness"
)

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// inflightBodyBytes reads the in-flight body gauge from /metrics (-1 when absent).
func inflightBodyBytes(addr string) int64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "ownersync_ingress_body_inflight") {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			return int64(v)
		}
	}
	return -1
}

// openBody starts a POST that declares length bytes and sends the first of them, and leaves the
// connection open.
func openBody(t *testing.T, addr, path string, length int, first []byte) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, addr, length)
	if _, err := c.Write(first); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestIdleBodiesCostNoMemory covers issue 13 item 5 against the running ingress: sockets that
// declare a large Content-Length and send one byte cost no buffer of that length (heap after /
// heap before, measured in the test), and the bytes of bodies in flight are capped per process
// with 503 and Retry-After beyond the cap.
func TestIdleBodiesCostNoMemory(t *testing.T) {
	infra := harness.Start(t)
	addr := harness.Service(t, "ingress", ingress.Run, infra.Env(map[string]string{
		"OWNERSYNC_PUBLIC_URL":              "https://hooks.example.com",
		"OWNERSYNC_PLATFORM_TOKEN":          "platform-token-0123456789",
		"OWNERSYNC_MAX_INFLIGHT_BODY_BYTES": strconv.Itoa(3 << 19), // 1.5 MB
	}))

	const sockets = 150
	before := heapInUse()
	for range sockets {
		openBody(t, addr, "/webhooks/hubspot", 1<<20, []byte("["))
	}
	// Every handler is reading once the gauge holds one byte per socket.
	deadline := time.Now().Add(5 * time.Second)
	for inflightBodyBytes(addr) < sockets && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	after := heapInUse()
	ratio := float64(after) / float64(before)
	t.Logf("heap in use: %d MB before, %d MB with %d idle 1 MB bodies (ratio %.2f); in flight %d bytes",
		before>>20, after>>20, sockets, ratio, inflightBodyBytes(addr))
	if ratio > 3 {
		t.Errorf("%d idle sockets declaring 1 MB each took the heap from %d MB to %d MB (ratio %.2f, want at most 3)",
			sockets, before>>20, after>>20, ratio)
	}

	// One body holds 1 MB of the 1.5 MB cap; a second full 1 MB body is refused with 503.
	held := openBody(t, addr, "/webhooks/hubspot", 1<<20, append([]byte("["), bytes.Repeat([]byte(" "), 1<<20-2)...))
	deadline = time.Now().Add(5 * time.Second)
	for inflightBodyBytes(addr) < sockets+1<<20-2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := inflightBodyBytes(addr); n < sockets+1<<20-2 {
		t.Fatalf("the held body was not read: %d bytes in flight", n)
	}
	body := append([]byte("["), bytes.Repeat([]byte(" "), 1<<20-2)...)
	body = append(body, ']')
	resp, err := http.Post("http://"+addr+"/webhooks/hubspot", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("body past the in-flight cap: status %d, Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	held.Close()
	// Once the held body is gone, a body fits again (refused for its signature, not for memory).
	harness.Eventually(t, 5*time.Second, "the held body released", func() bool { return inflightBodyBytes(addr) < 1<<20 })
	resp, err = http.Post("http://"+addr+"/webhooks/hubspot", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable {
		t.Errorf("after the held body was released: still 503")
	}
}
