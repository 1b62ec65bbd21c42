package deploytest

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestNATSDurability: the NATS configuration shipped follows the Jepsen 2025 findings — fsync
// before acknowledging (sync_interval: always) on the compose server and the Helm values — and the
// production cluster is three nodes with file storage and R3 streams.
func TestNATSDurability(t *testing.T) {
	conf, err := os.ReadFile(filepath.Join(root, "deployments/nats/nats.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^\s*jetstream\s*\{[^}]*^\s*sync_interval:\s*always\s*$`).Match(conf) {
		t.Error("deployments/nats/nats.conf: the jetstream block does not set sync_interval: always")
	}
	var values struct {
		Config struct {
			Cluster struct {
				Enabled  bool `json:"enabled"`
				Replicas int  `json:"replicas"`
			} `json:"cluster"`
			JetStream struct {
				Enabled   bool `json:"enabled"`
				FileStore struct {
					Enabled bool `json:"enabled"`
					PVC     struct {
						Enabled bool `json:"enabled"`
					} `json:"pvc"`
				} `json:"fileStore"`
				MemoryStore struct {
					Enabled bool `json:"enabled"`
				} `json:"memoryStore"`
				Merge map[string]any `json:"merge"`
			} `json:"jetstream"`
		} `json:"config"`
		Container struct {
			Image struct {
				Tag string `json:"tag"`
			} `json:"image"`
		} `json:"container"`
	}
	b, err := os.ReadFile(filepath.Join(root, "deployments/nats/helm-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &values); err != nil {
		t.Fatal(err)
	}
	c := values.Config
	if !c.Cluster.Enabled || c.Cluster.Replicas != 3 {
		t.Errorf("Helm values: cluster %+v, want 3 nodes", c.Cluster)
	}
	js := c.JetStream
	if !js.Enabled || !js.FileStore.Enabled || !js.FileStore.PVC.Enabled || js.MemoryStore.Enabled {
		t.Errorf("Helm values: JetStream %+v, want file storage on persistent volumes and no memory store", js)
	}
	if js.Merge["sync_interval"] != "always" {
		t.Errorf("Helm values: jetstream sync_interval = %v, want always", js.Merge["sync_interval"])
	}
	if !versionTag.MatchString(regexp.MustCompile(`-alpine$`).ReplaceAllString(values.Container.Image.Tag, "")) {
		t.Errorf("Helm values: NATS image tag %q is not a version", values.Container.Image.Tag)
	}
	m := loadManifests(t)
	cm := m.configMaps["ownersync-config"]
	if cm == nil || cm.Data["OWNERSYNC_STREAM_REPLICAS"] != "3" {
		t.Error("the ConfigMap does not make streams and KV buckets R3 (OWNERSYNC_STREAM_REPLICAS: \"3\")")
	}
}

// TestMongoDBDurability: acknowledged work is written with w: majority to a three-member replica
// set, in Kubernetes and in compose.
func TestMongoDBDurability(t *testing.T) {
	m := loadManifests(t)
	if cm := m.configMaps["ownersync-config"]; cm == nil || cm.Data["OWNERSYNC_MONGODB_WRITE_CONCERN"] != "majority" {
		t.Error("the ConfigMap does not set OWNERSYNC_MONGODB_WRITE_CONCERN: majority")
	}
	p := loadCompose(t)
	for _, svc := range services {
		if wc := p.Services[svc].Environment["OWNERSYNC_MONGODB_WRITE_CONCERN"]; wc == nil || *wc != "majority" {
			t.Errorf("compose: %s writes with %v, want majority", svc, wc)
		}
	}
	var rs struct {
		Kind string `json:"kind"`
		Spec struct {
			Members int    `json:"members"`
			Type    string `json:"type"`
			Version string `json:"version"`
		} `json:"spec"`
	}
	found := false
	for _, doc := range documents(t, filepath.Join(root, "deployments/k8s/examples/mongodb-replicaset.yaml")) {
		if err := yaml.Unmarshal(doc, &rs); err != nil {
			t.Fatal(err)
		}
		if rs.Kind == "MongoDBCommunity" {
			found = true
			if rs.Spec.Members != 3 || rs.Spec.Type != "ReplicaSet" || !versionTag.MatchString(rs.Spec.Version) {
				t.Errorf("MongoDB example %+v, want a 3-member ReplicaSet of a pinned version", rs.Spec)
			}
		}
	}
	if !found {
		t.Error("no MongoDBCommunity replica set in the example")
	}
}
