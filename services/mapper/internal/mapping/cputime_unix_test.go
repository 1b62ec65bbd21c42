//go:build unix

package mapping

import (
	"syscall"
	"time"
)

// processCPU is the CPU time the test process has used (user + system, every thread, GC included).
// Benchmarks report it per operation because wall time on a shared machine counts other people's
// work too.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
