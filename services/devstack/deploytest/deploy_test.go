// Package deploytest checks the deployment files against the services' configuration code: no
// Docker engine or cluster runs here, so the YAML is parsed and every variable it sets must be one
// the service reads, and every variable a service requires must be set.
package deploytest

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

var services = []string{"ingress", "mapper", "writer", "notifier"}

const root = "../../.."

var (
	readRE     = regexp.MustCompile(`r\.(String|Required|Duration|Int|Bool|URL|List)\("([A-Z0-9_]+)"`)
	requiredRE = regexp.MustCompile(`r\.Required\("([A-Z0-9_]+)"\)`)
	problemRE  = regexp.MustCompile(`r\.Problem\("([A-Z0-9_]+) is required`)
	getenvRE   = regexp.MustCompile(`getenv\("([A-Z0-9_]+)"\)`)
)

// envOf scans the Go sources a service's configuration comes from.
func envOf(t *testing.T, svc string) (read, required map[string]bool) {
	t.Helper()
	read, required = map[string]bool{}, map[string]bool{}
	dirs := []string{"libs/servicekit", "libs/telemetry", "services/" + svc + "/internal/config"}
	for _, d := range dirs {
		files, err := filepath.Glob(filepath.Join(root, d, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no Go files in %s", d)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range readRE.FindAllSubmatch(b, -1) {
				read[string(m[2])] = true
			}
			for _, m := range getenvRE.FindAllSubmatch(b, -1) {
				read[string(m[1])] = true
			}
			for _, m := range requiredRE.FindAllSubmatch(b, -1) {
				required[string(m[1])] = true
			}
			for _, m := range problemRE.FindAllSubmatch(b, -1) {
				required[string(m[1])] = true
			}
		}
	}
	return read, required
}

func readsVar(read map[string]bool, name string) bool {
	// The OTLP exporters read the standard OTEL_* variables themselves.
	return read[name] || strings.HasPrefix(name, "OTEL_")
}

func TestComposeMatchesServiceConfig(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]struct {
			Build *struct {
				Dockerfile string            `yaml:"dockerfile"`
				Args       map[string]string `yaml:"args"`
			} `yaml:"build"`
			Environment map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, svc := range services {
		t.Run(svc, func(t *testing.T) {
			s, ok := doc.Services[svc]
			if !ok {
				t.Fatalf("compose has no service %s", svc)
			}
			if s.Build == nil || s.Build.Args["SERVICE"] != svc {
				t.Errorf("compose builds %s without SERVICE=%s", svc, svc)
			} else if _, err := os.Stat(filepath.Join(root, "services", s.Build.Args["SERVICE"])); err != nil {
				t.Errorf("SERVICE build arg names no service directory: %v", err)
			}
			read, required := envOf(t, svc)
			for name := range s.Environment {
				if !readsVar(read, name) {
					t.Errorf("compose sets %s for %s, which it does not read", name, svc)
				}
			}
			for name := range required {
				if _, ok := s.Environment[name]; !ok {
					t.Errorf("compose does not set %s, which %s requires", name, svc)
				}
			}
		})
	}
}

type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		Template struct {
			Spec struct {
				Containers []struct {
					Name  string `yaml:"name"`
					Ports []struct {
						ContainerPort int `yaml:"containerPort"`
					} `yaml:"ports"`
					Env []struct {
						Name      string `yaml:"name"`
						ValueFrom *struct {
							SecretKeyRef *struct {
								Name string `yaml:"name"`
								Key  string `yaml:"key"`
							} `yaml:"secretKeyRef"`
						} `yaml:"valueFrom"`
					} `yaml:"env"`
					EnvFrom []struct {
						ConfigMapRef *struct {
							Name string `yaml:"name"`
						} `yaml:"configMapRef"`
					} `yaml:"envFrom"`
					ReadinessProbe *probe `yaml:"readinessProbe"`
					LivenessProbe  *probe `yaml:"livenessProbe"`
				} `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port int    `yaml:"port"`
	} `yaml:"httpGet"`
}

func loadK8s(t *testing.T) map[string]k8sObject {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(root, "deployments/k8s/*.yaml"))
	objs := map[string]k8sObject{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var o k8sObject
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if o.Kind != "" && o.Kind != "Kustomization" {
				objs[o.Kind+"/"+o.Metadata.Name] = o
			}
		}
	}
	return objs
}

func TestKubernetesMatchesServiceConfig(t *testing.T) {
	objs := loadK8s(t)
	cm, ok := objs["ConfigMap/ownersync-config"]
	if !ok {
		t.Fatal("no ConfigMap ownersync-config")
	}
	secret, ok := objs["Secret/ownersync-secrets"]
	if !ok {
		t.Fatal("no Secret ownersync-secrets (secret.example.yaml)")
	}
	for _, svc := range services {
		t.Run(svc, func(t *testing.T) {
			d, ok := objs["Deployment/ownersync-"+svc]
			if !ok {
				t.Fatalf("no Deployment ownersync-%s", svc)
			}
			if _, ok := objs["Service/ownersync-"+svc]; !ok {
				t.Errorf("no Service ownersync-%s", svc)
			}
			c := d.Spec.Template.Spec.Containers[0]
			set := map[string]bool{}
			for _, e := range c.Env {
				set[e.Name] = true
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					if _, ok := secret.StringData[e.ValueFrom.SecretKeyRef.Key]; !ok {
						t.Errorf("%s reads secret key %s that the example Secret lacks", svc, e.ValueFrom.SecretKeyRef.Key)
					}
				}
			}
			for _, ef := range c.EnvFrom {
				if ef.ConfigMapRef != nil && ef.ConfigMapRef.Name == "ownersync-config" {
					for k := range cm.Data {
						set[k] = true
					}
				}
			}
			read, required := envOf(t, svc)
			var names []string
			for k := range set {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, name := range names {
				if !readsVar(read, name) {
					t.Errorf("k8s sets %s for %s, which it does not read", name, svc)
				}
			}
			for name := range required {
				if !set[name] {
					t.Errorf("k8s does not set %s, which %s requires", name, svc)
				}
			}
			if len(c.Ports) == 0 {
				t.Fatal("no container port")
			}
			port := c.Ports[0].ContainerPort
			if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.ReadinessProbe.HTTPGet.Port != port {
				t.Errorf("readiness probe must GET /readyz on %d", port)
			}
			if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" || c.LivenessProbe.HTTPGet.Port != port {
				t.Errorf("liveness probe must GET /healthz on %d", port)
			}
		})
	}
}

func TestDockerfileBuildsAnyService(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "deployments/docker/Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{"ARG SERVICE", "CGO_ENABLED=0", `./services/${SERVICE}`, "FROM scratch", "USER 65532"} {
		if !strings.Contains(s, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	for _, svc := range services {
		if _, err := os.Stat(filepath.Join(root, "services", svc, "main.go")); err != nil {
			t.Errorf("service %s has no main.go for the Dockerfile to build", svc)
		}
	}
	if slices.Contains(services, "devstack") {
		t.Error("devstack is not a deployable service")
	}
}
