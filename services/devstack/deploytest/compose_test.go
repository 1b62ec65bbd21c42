package deploytest

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"
)

// loadCompose loads docker-compose.yml the way `docker compose config` does (the Compose
// Specification's loader: schema validation, anchors and merges, interpolation), client-side.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(abs, "docker-compose.yml")},
		cli.WithWorkingDirectory(abs), cli.WithName("ownersync"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return p
}

// infrastructure is what the compose stack runs besides the four services; each has a
// healthcheck unless its image has no shell or probe binary (noHealthcheck).
var (
	infrastructure = []string{"nats", "mongo", "mailpit", "jaeger", "otel-collector", "prometheus", "grafana"}
	noHealthcheck  = map[string]string{
		"jaeger":         "distroless image without a probe binary",
		"otel-collector": "distroless image without a probe binary",
	}
)

func TestComposeMatchesServiceConfig(t *testing.T) {
	p := loadCompose(t)
	for _, svc := range services {
		t.Run(svc, func(t *testing.T) {
			s, ok := p.Services[svc]
			if !ok {
				t.Fatalf("compose has no service %s", svc)
			}
			if s.Build == nil || s.Build.Args["SERVICE"] == nil || *s.Build.Args["SERVICE"] != svc {
				t.Errorf("compose builds %s without SERVICE=%s", svc, svc)
			}
			env := map[string]string{}
			for k, v := range s.Environment {
				if v != nil {
					env[k] = *v
				}
			}
			read, required := envOf(t, svc)
			for name := range env {
				if !readsVar(read, name) {
					t.Errorf("compose sets %s for %s, which it does not read", name, svc)
				}
			}
			for name := range required {
				if _, ok := env[name]; !ok {
					t.Errorf("compose does not set %s, which %s requires", name, svc)
				}
			}
			// The public port is published (on loopback); the internal one is not, and the
			// healthcheck asks it for /readyz.
			httpPort, internalPort := portOf(t, env["OWNERSYNC_HTTP_ADDR"]), ""
			if env["OWNERSYNC_INTERNAL_ADDR"] == "" {
				t.Error("compose does not set OWNERSYNC_INTERNAL_ADDR: /metrics and /readyz would be on the public port")
			} else {
				internalPort = portOf(t, env["OWNERSYNC_INTERNAL_ADDR"])
			}
			published := false
			for _, port := range s.Ports {
				target := strings.TrimSpace(strings.Split(port.Published, "-")[0])
				if strconv.FormatUint(uint64(port.Target), 10) == internalPort {
					t.Errorf("the internal port %s is published", internalPort)
				}
				if strconv.FormatUint(uint64(port.Target), 10) == httpPort && target != "" {
					published = true
				}
			}
			if !published {
				t.Errorf("the HTTP port %s (OWNERSYNC_HTTP_ADDR) is not published", httpPort)
			}
			if s.HealthCheck == nil || len(s.HealthCheck.Test) < 3 || s.HealthCheck.Test[0] != "CMD" || s.HealthCheck.Test[1] != "/healthcheck" {
				t.Fatalf("healthcheck = %+v, want [CMD /healthcheck http://127.0.0.1:<internal>/readyz]", s.HealthCheck)
			}
			u, err := url.Parse(s.HealthCheck.Test[2])
			if err != nil || u.Path != "/readyz" || u.Port() != internalPort {
				t.Errorf("healthcheck asks %s, want /readyz on the internal port %s", s.HealthCheck.Test[2], internalPort)
			}
			for _, dep := range []string{"nats", "mongo"} {
				if d, ok := s.DependsOn[dep]; !ok || d.Condition != types.ServiceConditionHealthy {
					t.Errorf("%s does not wait for %s to be healthy (depends_on condition %q)", svc, dep, d.Condition)
				}
			}
			if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
				t.Errorf("%s: read_only %v, cap_drop %v, security_opt %v; want read-only, ALL dropped, no-new-privileges", svc, s.ReadOnly, s.CapDrop, s.SecurityOpt)
			}
		})
	}
}

// TestComposeExposesNothingBeyondLoopback: issue 13 item 14 — NATS and MongoDB have no
// authentication in the compose stack, so nothing is published on other interfaces.
func TestComposeExposesNothingBeyondLoopback(t *testing.T) {
	p := loadCompose(t)
	for name, s := range p.Services {
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("%s publishes %d on %q, want 127.0.0.1", name, port.Target, port.HostIP)
			}
		}
	}
}

// TestComposeStartsInOrder: every depends_on on a service with a healthcheck waits for it to be
// healthy, the infrastructure has healthchecks where its image can run one, and every file the
// stack mounts exists.
func TestComposeStartsInOrder(t *testing.T) {
	p := loadCompose(t)
	for _, name := range infrastructure {
		s, ok := p.Services[name]
		if !ok {
			t.Errorf("compose has no %s", name)
			continue
		}
		if why, ok := noHealthcheck[name]; !ok && (s.HealthCheck == nil || len(s.HealthCheck.Test) == 0) {
			t.Errorf("%s has no healthcheck", name)
		} else if ok && s.HealthCheck != nil {
			t.Errorf("%s has a healthcheck now: drop it from noHealthcheck (%s)", name, why)
		}
		if strings.HasSuffix(s.Image, ":latest") || !strings.Contains(s.Image, ":") {
			t.Errorf("%s image %q is not pinned to a version", name, s.Image)
		}
	}
	for name, s := range p.Services {
		for dep, d := range s.DependsOn {
			target, ok := p.Services[dep]
			if !ok {
				t.Errorf("%s depends on unknown service %s", name, dep)
				continue
			}
			if target.HealthCheck != nil && !target.HealthCheck.Disable && d.Condition != types.ServiceConditionHealthy {
				t.Errorf("%s depends on %s with %q; it has a healthcheck, so wait for service_healthy", name, dep, d.Condition)
			}
		}
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s mounts %s: %v", name, v.Source, err)
			}
		}
	}
}

// TestTelemetryPipeline: the services send OTLP to the collector, which sends traces to Jaeger and
// metrics to Prometheus; Grafana provisions its data sources and the dashboards directory.
func TestTelemetryPipeline(t *testing.T) {
	p := loadCompose(t)
	for _, svc := range services {
		if ep := p.Services[svc].Environment["OTEL_EXPORTER_OTLP_ENDPOINT"]; ep == nil || *ep != "http://otel-collector:4318" {
			t.Errorf("%s sends OTLP to %v, want the collector", svc, ep)
		}
	}
	var collector struct {
		Receivers map[string]any `yaml:"receivers"`
		Exporters map[string]struct {
			Endpoint string `yaml:"endpoint"`
		} `yaml:"exporters"`
		Service struct {
			Pipelines map[string]struct {
				Receivers []string `yaml:"receivers"`
				Exporters []string `yaml:"exporters"`
			} `yaml:"pipelines"`
		} `yaml:"service"`
	}
	readYAML(t, "deployments/otel/collector.yaml", &collector)
	if !strings.HasPrefix(p.Services["otel-collector"].Image, "otel/opentelemetry-collector-contrib:") {
		t.Errorf("collector image %s, want the contrib distribution", p.Services["otel-collector"].Image)
	}
	traces, metrics := collector.Service.Pipelines["traces"], collector.Service.Pipelines["metrics"]
	if !slices.Contains(traces.Receivers, "otlp") || !slices.Contains(metrics.Receivers, "otlp") {
		t.Error("collector pipelines do not receive OTLP traces and metrics")
	}
	if len(traces.Exporters) == 0 || !strings.Contains(collector.Exporters[traces.Exporters[0]].Endpoint, "jaeger:") {
		t.Errorf("traces go to %v, want Jaeger", traces.Exporters)
	}
	if !slices.Contains(metrics.Exporters, "prometheus") {
		t.Fatalf("metrics go to %v, want the prometheus exporter", metrics.Exporters)
	}
	promPort := portOf(t, collector.Exporters["prometheus"].Endpoint)
	var prom struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, "deployments/prometheus/prometheus.yml", &prom)
	scraped := false
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			scraped = scraped || slices.Contains(st.Targets, "otel-collector:"+promPort)
		}
	}
	if !scraped {
		t.Errorf("Prometheus does not scrape the collector's exporter on otel-collector:%s", promPort)
	}
	if !slices.Contains(prom.RuleFiles, "/etc/prometheus/rules/*.yml") || !mounts(p.Services["prometheus"], "deployments/prometheus/rules", "/etc/prometheus/rules") {
		t.Error("Prometheus does not load the rules of deployments/prometheus/rules")
	}
	var dashboards struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "deployments/grafana/provisioning/dashboards/dashboards.yaml", &dashboards)
	if len(dashboards.Providers) != 1 || !mounts(p.Services["grafana"], "deployments/grafana/dashboards", dashboards.Providers[0].Options.Path) {
		t.Errorf("Grafana's dashboard provider %+v does not read the mounted deployments/grafana/dashboards", dashboards.Providers)
	}
	if !mounts(p.Services["grafana"], "deployments/grafana/provisioning", "/etc/grafana/provisioning") {
		t.Error("Grafana does not mount its provisioning directory")
	}
}

func mounts(s types.ServiceConfig, source, target string) bool {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && strings.HasSuffix(filepath.ToSlash(v.Source), source) && v.Target == target {
			return true
		}
	}
	return false
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
