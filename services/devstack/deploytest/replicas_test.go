package deploytest

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"
)

// replicaState says what keeps a service's replicas in agreement (issue 15). A service may run
// more than one replica only when none of its state is held per process.
type replicaState struct {
	// shared names the mechanisms the replicas already share.
	shared string
	// perProcess is the state still held in one process, each with a marker: a string of the
	// service's Go code that holds it. When the state moves to shared storage the marker goes away
	// and this test fails until the entry is moved to shared — and only then may replicas grow.
	perProcess []perProcessState
}

type perProcessState struct {
	what, marker string
}

// state is the table. Update it when a piece of shared state lands (and say which mechanism).
var state = map[string]replicaState{
	"ingress": {
		shared: "stateless: tenants are read from MongoDB and refreshed on every tenant change (core NATS " +
			"announcement); duplicate webhooks are dropped by JetStream's Nats-Msg-Id window, on the stream, not in the process",
	},
	"mapper": {
		shared: "mappings in MongoDB (unique indexes), one Sync Users run per tenant (the sync_locks collection), " +
			"the ownersync_mappings KV view, JetStream consumers, console sessions in MongoDB (console_sessions: a cookie " +
			"works on every replica and after a restart, signing out ends it on all; services/mapper/internal/auth/sessions.go), " +
			"the rule lease per (tenant, provider) between a Sync Users run, user events and manual mappings and the claim of each " +
			"due Sync Users schedule, both in the ownersync_coord KV bucket (services/mapper/internal/coordkv: a lease expires 30 s " +
			"after its last renewal, so a killed holder blocks nobody for longer), pending Connect flows in MongoDB (connect_flows: " +
			"the OAuth callback may reach any replica, also after a restart, and spends the state once; services/mapper/internal/connect/flows.go)",
	},
	"writer": {
		shared: "per-record state in the ownersync_records KV bucket, history in MongoDB, JetStream consumers, " +
			"the CRM API budget per (tenant, provider) in the ownersync_coord KV bucket (leases of calls by compare-and-set, " +
			"429 pauses and daily-quota holds seen by every replica: services/writer/internal/budget)",
	},
	"notifier": {
		shared: "reports sent once (notifications keyed on the report id in MongoDB), JetStream consumers, the alert queue in MongoDB " +
			"and one alert digest per tenant and interval: the replica whose digest is due claims the window in the ownersync_coord KV bucket " +
			"and sends every alert queued by any replica",
	},
}

// TestReplicaTableMatchesCode: the table covers every service, and each per-process state it
// names is still in the code (when one is gone, it was made shared: update the table).
func TestReplicaTableMatchesCode(t *testing.T) {
	for _, svc := range services {
		st, ok := state[svc]
		if !ok {
			t.Errorf("the replica table has no entry for %s", svc)
			continue
		}
		if st.shared == "" {
			t.Errorf("%s: name what its replicas share", svc)
		}
		for _, p := range st.perProcess {
			if !sourceContains(t, "services/"+svc, p.marker) {
				t.Errorf("%s: the per-process %s (marker %q) is no longer in the code: if it is shared now, "+
					"move it to the shared mechanisms of the table in replicas_test.go (and the manifests may run more replicas)",
					svc, p.what, p.marker)
			}
		}
	}
	if len(state) != len(services) {
		t.Errorf("the replica table has %d entries for %d services", len(state), len(services))
	}
}

// TestReplicasBackedBySharedState: a Deployment runs more than one replica only when the table
// holds no per-process state for it, and a single replica is replaced with Recreate (a rolling
// update's surge pod would be a second replica for a while).
func TestReplicasBackedBySharedState(t *testing.T) {
	m := loadManifests(t)
	for _, svc := range services {
		d, ok := m.deployments["ownersync-"+svc]
		if !ok {
			t.Fatalf("no Deployment ownersync-%s", svc)
		}
		replicas := int32(1)
		if d.Spec.Replicas != nil {
			replicas = *d.Spec.Replicas
		}
		st := state[svc]
		if replicas > 1 && len(st.perProcess) > 0 {
			t.Errorf("%s runs %d replicas but keeps per process: %s", svc, replicas, whats(st.perProcess))
		}
		if len(st.perProcess) > 0 && d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
			t.Errorf("%s: strategy %q; with per-process state use Recreate so old and new pods never overlap", svc, d.Spec.Strategy.Type)
		}
		if len(st.perProcess) == 0 && replicas < 2 {
			t.Errorf("%s shares all its state but runs %d replica: run two or more", svc, replicas)
		}
	}
}

// scaledObject is the part of KEDA's ScaledObject the test reads.
type scaledObject struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		ScaleTargetRef struct {
			Name string `json:"name"`
		} `json:"scaleTargetRef"`
		MinReplicaCount *int32 `json:"minReplicaCount"`
		MaxReplicaCount *int32 `json:"maxReplicaCount"`
		Triggers        []struct {
			Type     string            `json:"type"`
			Metadata map[string]string `json:"metadata"`
		} `json:"triggers"`
	} `json:"spec"`
}

// TestKEDAScalesOnRealConsumers: the example scales writer and mapper on the lag of consumers the
// code declares, on their streams; and it is not applied (not in kustomization.yaml) while a
// service it scales beyond one replica keeps per-process state.
func TestKEDAScalesOnRealConsumers(t *testing.T) {
	const file = "examples/keda-scaledobjects.yaml"
	k := loadKustomization(t)
	applied := slices.Contains(k.Resources, file)
	targets := map[string]bool{}
	for _, doc := range documents(t, filepath.Join(root, "deployments/k8s", file)) {
		var so scaledObject
		if err := yaml.Unmarshal(doc, &so); err != nil {
			t.Fatal(err)
		}
		if so.Kind != "ScaledObject" {
			continue
		}
		svc := so.Spec.ScaleTargetRef.Name[len("ownersync-"):]
		targets[svc] = true
		st, ok := state[svc]
		if !ok {
			t.Errorf("%s scales unknown service %s", so.Metadata.Name, so.Spec.ScaleTargetRef.Name)
			continue
		}
		if so.Spec.MaxReplicaCount == nil || *so.Spec.MaxReplicaCount < 2 {
			t.Errorf("%s: maxReplicaCount %v", so.Metadata.Name, so.Spec.MaxReplicaCount)
		}
		if applied && len(st.perProcess) > 0 {
			t.Errorf("kustomization applies %s, which scales %s beyond one replica while it keeps per process: %s",
				file, svc, whats(st.perProcess))
		}
		if len(so.Spec.Triggers) == 0 {
			t.Errorf("%s has no triggers", so.Metadata.Name)
		}
		for _, tr := range so.Spec.Triggers {
			md := tr.Metadata
			if tr.Type != "nats-jetstream" || md["natsServerMonitoringEndpoint"] == "" || md["account"] == "" || md["lagThreshold"] == "" {
				t.Errorf("%s: trigger %s %v lacks the nats-jetstream scaler's settings", so.Metadata.Name, tr.Type, md)
				continue
			}
			// The consumer must be one the service declares, on that stream.
			if !sourceContains(t, "services/"+svc, `"`+md["consumer"]+`"`) {
				t.Errorf("%s: consumer %q is not declared by %s", so.Metadata.Name, md["consumer"], svc)
			}
			if !sourceContains(t, "libs/streams", `= "`+md["stream"]+`"`) {
				t.Errorf("%s: stream %q is not one of libs/streams", so.Metadata.Name, md["stream"])
			}
		}
	}
	for _, want := range []string{"writer", "mapper"} {
		if !targets[want] {
			t.Errorf("%s has no ScaledObject for %s", file, want)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "deployments/k8s/examples/mongodb-replicaset.yaml")); err != nil {
		t.Error(err)
	}
}

func whats(ps []perProcessState) string {
	var s string
	for i, p := range ps {
		if i > 0 {
			s += "; "
		}
		s += p.what
	}
	return s
}
