//go:build soak

package scenarios

import (
	"syscall"
	"testing"
	"time"

	"github.com/ownersync/ownersync/libs/streams"
)

// TestSoakKillEachService SIGKILLs each service in the middle of a burst of 10,000 Salesforce owner
// changes and restarts it; every change reaches the platform exactly once.
func TestSoakKillEachService(t *testing.T) {
	for _, victim := range serviceNames {
		t.Run(victim, func(t *testing.T) {
			st := startSoak(t, false, true)
			began := time.Now()
			want := st.burst(10_000, func() {
				cmd := st.procs[victim]
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				killed := time.Now()
				<-st.exited[victim]
				st.startProcess(victim)
				t.Logf("%s SIGKILLed after %d changes and ready again in %s", victim, 10_000/3, time.Since(killed).Round(time.Millisecond))
			})
			st.settle(want, 5*time.Minute, began)
		})
	}
}

// TestSoakClusterLeaderKilled runs the services on a three-node NATS cluster with R3 streams and
// stops the CRM stream's leader in the middle of a burst.
func TestSoakClusterLeaderKilled(t *testing.T) {
	st := startSoak(t, true, false)
	began := time.Now()
	want := st.burst(10_000, func() {
		for i, s := range st.nats {
			if s.JetStreamIsStreamLeader("$G", streams.CRM) {
				t.Logf("stopping node %d (%s), leader of stream CRM", i, s.Name())
				s.Stop()
				st.nats[i] = nil
				return
			}
		}
		t.Fatal("no node leads stream CRM")
	})
	st.settle(want, 5*time.Minute, began)
}

// TestSoakCRMFaults is the long run of TestFaultsCRMErrorsAndRateLimits: 600 changes per CRM in 20
// waves, the sandboxes answering 30 % 503s and 30 % rate limits throughout.
func TestSoakCRMFaults(t *testing.T) { crmFaults(t, 600, 20) }

// TestSoakReplicas is the long run of TestReplicas: 5,000 changes per CRM.
func TestSoakReplicas(t *testing.T) { replicaRun(t, 5000) }
