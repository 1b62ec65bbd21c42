package deploytest

import (
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// manifests are the Kubernetes objects of deployments/k8s, decoded strictly into the API's types
// (an unknown or misspelt field fails the test, as the API server would reject it).
type manifests struct {
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	pdbs        map[string]*policyv1.PodDisruptionBudget
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
	policies    []*networkingv1.NetworkPolicy
	ingresses   map[string]*networkingv1.Ingress
	namespaces  map[string]*corev1.Namespace
	// files maps each object ("Kind/name") to the file that holds it.
	files map[string]string
}

var docSplit = regexp.MustCompile(`(?m)^---\s*$`)

// documents splits a YAML file into its documents, dropping the empty ones.
func documents(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var docs [][]byte
	for _, d := range docSplit.Split(string(b), -1) {
		var probe map[string]any
		if err := yaml.Unmarshal([]byte(d), &probe); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(probe) > 0 {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

func loadManifests(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		pdbs: map[string]*policyv1.PodDisruptionBudget{}, configMaps: map[string]*corev1.ConfigMap{},
		secrets: map[string]*corev1.Secret{}, files: map[string]string{},
		ingresses: map[string]*networkingv1.Ingress{}, namespaces: map[string]*corev1.Namespace{}}
	files, _ := filepath.Glob(filepath.Join(root, "deployments/k8s/*.yaml"))
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		for _, doc := range documents(t, f) {
			var head struct {
				Kind     string `json:"kind"`
				Metadata struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			if err := yaml.Unmarshal(doc, &head); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			var obj any
			switch head.Kind {
			case "Deployment":
				o := &appsv1.Deployment{}
				m.deployments[head.Metadata.Name], obj = o, o
			case "Service":
				o := &corev1.Service{}
				m.services[head.Metadata.Name], obj = o, o
			case "PodDisruptionBudget":
				o := &policyv1.PodDisruptionBudget{}
				m.pdbs[head.Metadata.Name], obj = o, o
			case "ConfigMap":
				o := &corev1.ConfigMap{}
				m.configMaps[head.Metadata.Name], obj = o, o
			case "Secret":
				o := &corev1.Secret{}
				m.secrets[head.Metadata.Name], obj = o, o
			case "Ingress":
				o := &networkingv1.Ingress{}
				m.ingresses[head.Metadata.Name], obj = o, o
			case "Namespace":
				o := &corev1.Namespace{}
				m.namespaces[head.Metadata.Name], obj = o, o
			case "NetworkPolicy":
				o := &networkingv1.NetworkPolicy{}
				m.policies, obj = append(m.policies, o), o
			default:
				t.Fatalf("%s: kind %q is not checked by this test; add it", f, head.Kind)
			}
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				t.Fatalf("%s: %s %s: %v", f, head.Kind, head.Metadata.Name, err)
			}
			m.files[head.Kind+"/"+head.Metadata.Name] = filepath.Base(f)
		}
	}
	return m
}

// kustomization is deployments/k8s/kustomization.yaml.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
		Digest  string `json:"digest"`
	} `json:"images"`
}

func loadKustomization(t *testing.T) kustomization {
	t.Helper()
	var k kustomization
	b, err := os.ReadFile(filepath.Join(root, "deployments/k8s/kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	return k
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	k := loadKustomization(t)
	m := loadManifests(t)
	listed := map[string]bool{}
	for _, r := range k.Resources {
		if _, err := os.Stat(filepath.Join(root, "deployments/k8s", r)); err != nil {
			t.Errorf("kustomization lists %s: %v", r, err)
		}
		listed[r] = true
	}
	for obj, f := range m.files {
		if !listed[f] && f != "secret.example.yaml" {
			t.Errorf("%s (%s) is not applied by kustomization.yaml", obj, f)
		}
	}
	if listed["secret.example.yaml"] {
		t.Error("kustomization applies the example Secret")
	}
}

// TestKubernetesMatchesServiceConfig: per service, the variables, ports and probes agree with the
// code, and the pod meets Pod Security "restricted" with the operational settings issue 15 asks for.
func TestKubernetesMatchesServiceConfig(t *testing.T) {
	m := loadManifests(t)
	k := loadKustomization(t)
	cm, ok := m.configMaps["ownersync-config"]
	if !ok {
		t.Fatal("no ConfigMap ownersync-config")
	}
	secret, ok := m.secrets["ownersync-secrets"]
	if !ok {
		t.Fatal("no Secret ownersync-secrets (secret.example.yaml)")
	}
	for _, svc := range services {
		t.Run(svc, func(t *testing.T) {
			name := "ownersync-" + svc
			d, ok := m.deployments[name]
			if !ok {
				t.Fatalf("no Deployment %s", name)
			}
			pod := d.Spec.Template.Spec
			if len(pod.Containers) != 1 {
				t.Fatalf("%d containers, want 1", len(pod.Containers))
			}
			c := pod.Containers[0]

			// Variables: set ⇒ read by the code; required ⇒ set.
			env := map[string]string{}
			for _, e := range c.Env {
				env[e.Name] = e.Value
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					if _, ok := secret.StringData[e.ValueFrom.SecretKeyRef.Key]; !ok {
						t.Errorf("reads secret key %s that the example Secret lacks", e.ValueFrom.SecretKeyRef.Key)
					}
				}
			}
			for _, ef := range c.EnvFrom {
				if ef.ConfigMapRef != nil && ef.ConfigMapRef.Name == cm.Name {
					for k, v := range cm.Data {
						if _, own := env[k]; !own {
							env[k] = v
						}
					}
				}
			}
			read, required := envOf(t, svc)
			for _, n := range slices.Sorted(maps.Keys(env)) {
				if !readsVar(read, n) {
					t.Errorf("k8s sets %s, which %s does not read", n, svc)
				}
			}
			for n := range required {
				if _, ok := env[n]; !ok {
					t.Errorf("k8s does not set %s, which %s requires", n, svc)
				}
			}

			// Ports: "http" is OWNERSYNC_HTTP_ADDR's, "internal" is OWNERSYNC_INTERNAL_ADDR's.
			ports := map[string]int32{}
			for _, p := range c.Ports {
				ports[p.Name] = p.ContainerPort
			}
			if env["OWNERSYNC_HTTP_ADDR"] == "" || env["OWNERSYNC_INTERNAL_ADDR"] == "" {
				t.Fatalf("OWNERSYNC_HTTP_ADDR %q and OWNERSYNC_INTERNAL_ADDR %q must both be set", env["OWNERSYNC_HTTP_ADDR"], env["OWNERSYNC_INTERNAL_ADDR"])
			}
			if itoa32(ports["http"]) != portOf(t, env["OWNERSYNC_HTTP_ADDR"]) {
				t.Errorf("container port http = %d, OWNERSYNC_HTTP_ADDR = %s", ports["http"], env["OWNERSYNC_HTTP_ADDR"])
			}
			if itoa32(ports["internal"]) != portOf(t, env["OWNERSYNC_INTERNAL_ADDR"]) {
				t.Errorf("container port internal = %d, OWNERSYNC_INTERNAL_ADDR = %s", ports["internal"], env["OWNERSYNC_INTERNAL_ADDR"])
			}
			if a := d.Spec.Template.Annotations; a["prometheus.io/port"] != itoa32(ports["internal"]) || a["prometheus.io/path"] != "/metrics" {
				t.Errorf("scrape annotations %v do not point at /metrics on the internal port", a)
			}

			// Probes: on the internal port, never the public one.
			for _, p := range []struct {
				what  string
				probe *corev1.Probe
				path  string
			}{{"startup", c.StartupProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}, {"liveness", c.LivenessProbe, "/healthz"}} {
				if p.probe == nil || p.probe.HTTPGet == nil {
					t.Errorf("no %s probe", p.what)
					continue
				}
				if p.probe.HTTPGet.Path != p.path || !samePort(p.probe.HTTPGet.Port, "internal", ports["internal"]) {
					t.Errorf("%s probe GETs %s on %s, want %s on the internal port", p.what, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path)
				}
			}

			// Shutdown: a preStop pause, then the drain, within the grace period.
			pre := c.Lifecycle
			if pre == nil || pre.PreStop == nil || pre.PreStop.Sleep == nil || pre.PreStop.Sleep.Seconds < 2 {
				t.Errorf("no preStop sleep of at least 2 s (load balancers keep sending until endpoints update)")
			} else {
				shutdown := 10 * time.Second // servicekit's OWNERSYNC_SHUTDOWN_TIMEOUT default
				if v, ok := env["OWNERSYNC_SHUTDOWN_TIMEOUT"]; ok {
					if shutdown, _ = time.ParseDuration(v); shutdown == 0 {
						t.Errorf("OWNERSYNC_SHUTDOWN_TIMEOUT %q", v)
					}
				}
				need := time.Duration(pre.PreStop.Sleep.Seconds)*time.Second + shutdown
				var grace time.Duration
				if g := pod.TerminationGracePeriodSeconds; g != nil {
					grace = time.Duration(*g) * time.Second
				}
				if grace <= need {
					t.Errorf("terminationGracePeriodSeconds %s does not cover the preStop pause and the %s drain", grace, shutdown)
				}
			}

			// Pod Security "restricted".
			restricted(t, pod)

			// Resources and image.
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("resources %v: want CPU and memory requests and a memory limit", c.Resources)
			}
			pinned(t, c.Image, k)

			// Service and PodDisruptionBudget select these pods and name existing ports.
			s, ok := m.services[name]
			if !ok {
				t.Fatalf("no Service %s", name)
			}
			if !selects(s.Spec.Selector, d.Spec.Template.Labels) {
				t.Errorf("Service selector %v does not select the pods %v", s.Spec.Selector, d.Spec.Template.Labels)
			}
			for _, sp := range s.Spec.Ports {
				if sp.TargetPort.Type != intstr.String || ports[sp.TargetPort.StrVal] == 0 {
					t.Errorf("Service port %s targets %s, not a named container port", sp.Name, sp.TargetPort.String())
				}
			}
			pdb, ok := m.pdbs[name]
			if !ok {
				t.Fatalf("no PodDisruptionBudget %s", name)
			}
			if pdb.Spec.Selector == nil || !selects(pdb.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
				t.Errorf("PodDisruptionBudget selector %v does not select the pods", pdb.Spec.Selector)
			}
			if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() < 1 {
				t.Errorf("PodDisruptionBudget maxUnavailable %v: a budget of 0 blocks every node drain", pdb.Spec.MaxUnavailable)
			}
		})
	}
}

// restricted checks the Pod Security Standard "restricted" profile.
func restricted(t *testing.T, pod corev1.PodSpec) {
	t.Helper()
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Error("pod securityContext.runAsNonRoot is not true")
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("pod seccompProfile is not RuntimeDefault")
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the service account token is mounted; the services never call the Kubernetes API")
	}
	for _, c := range pod.Containers {
		sc := c.SecurityContext
		if sc == nil {
			t.Errorf("container %s has no securityContext", c.Name)
			continue
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("container %s: allowPrivilegeEscalation is not false", c.Name)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("container %s: readOnlyRootFilesystem is not true", c.Name)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			t.Errorf("container %s: capabilities %v, want drop [ALL] and add none", c.Name, sc.Capabilities)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("container %s is privileged", c.Name)
		}
		if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			t.Errorf("container %s runs as root", c.Name)
		}
	}
}

var versionTag = regexp.MustCompile(`^v?\d+\.\d+(\.\d+)?([-+.][0-9A-Za-z.-]+)?$`)

// pinned checks that an image names a version (or digest), in the manifest and in kustomization's
// images: override.
func pinned(t *testing.T, image string, k kustomization) {
	t.Helper()
	name, tag, ok := strings.Cut(image, ":")
	if strings.Contains(image, "@sha256:") {
		return
	}
	if !ok || !versionTag.MatchString(tag) {
		t.Errorf("image %q is not pinned to a version (latest or no tag)", image)
	}
	for _, img := range k.Images {
		if img.Name == name {
			if img.Digest == "" && !versionTag.MatchString(img.NewTag) {
				t.Errorf("kustomization sets %s to tag %q, not a version", name, img.NewTag)
			}
			return
		}
	}
	t.Errorf("kustomization.yaml's images: does not pin %s", name)
}

func samePort(p intstr.IntOrString, name string, number int32) bool {
	return (p.Type == intstr.String && p.StrVal == name) || (p.Type == intstr.Int && p.IntVal == number)
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func itoa32(n int32) string { return strconv.Itoa(int(n)) }

// TestNamespaceEnforcesRestricted: the namespace the kustomization deploys into refuses pods that
// do not meet Pod Security "restricted" at admission.
func TestNamespaceEnforcesRestricted(t *testing.T) {
	k := loadKustomization(t)
	m := loadManifests(t)
	ns, ok := m.namespaces[k.Namespace]
	if k.Namespace == "" || !ok {
		t.Fatalf("kustomization namespace %q has no Namespace manifest", k.Namespace)
	}
	if ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("Namespace %s labels %v: want pod-security.kubernetes.io/enforce: restricted", ns.Name, ns.Labels)
	}
}

// TestRoutesMatchPublicURLs: the hosts the CRMs and admins reach are those of OWNERSYNC_PUBLIC_URL
// (HubSpot signs over it) and OWNERSYNC_ADMIN_URL, routed to named ports of existing Services, and
// the webhook route accepts the Salesforce body limit.
func TestRoutesMatchPublicURLs(t *testing.T) {
	m := loadManifests(t)
	routed := map[string]string{} // host → Service
	for name, ing := range m.ingresses {
		for _, r := range ing.Spec.Rules {
			if r.HTTP == nil {
				continue
			}
			for _, p := range r.HTTP.Paths {
				b := p.Backend.Service
				if b == nil {
					t.Errorf("Ingress %s: a path without a Service backend", name)
					continue
				}
				s, ok := m.services[b.Name]
				if !ok {
					t.Errorf("Ingress %s routes to unknown Service %s", name, b.Name)
					continue
				}
				if !slices.ContainsFunc(s.Spec.Ports, func(sp corev1.ServicePort) bool { return sp.Name == b.Port.Name }) {
					t.Errorf("Ingress %s routes to port %q, which Service %s does not name", name, b.Port.Name, b.Name)
				}
				if b.Port.Name == "internal" {
					t.Errorf("Ingress %s exposes the internal port of %s", name, b.Name)
				}
				routed[r.Host] = b.Name
			}
		}
	}
	for _, tt := range []struct{ svc, env string }{{"ingress", "OWNERSYNC_PUBLIC_URL"}, {"mapper", "OWNERSYNC_ADMIN_URL"}} {
		d := m.deployments["ownersync-"+tt.svc]
		if d == nil {
			t.Fatalf("no Deployment ownersync-%s", tt.svc)
		}
		var raw string
		for _, e := range d.Spec.Template.Spec.Containers[0].Env {
			if e.Name == tt.env {
				raw = e.Value
			}
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			t.Errorf("%s %s = %q", tt.svc, tt.env, raw)
			continue
		}
		if routed[u.Hostname()] != "ownersync-"+tt.svc {
			t.Errorf("%s's host %s is routed to %q, want ownersync-%s", tt.env, u.Hostname(), routed[u.Hostname()], tt.svc)
		}
	}
	hooks := m.ingresses["ownersync-webhooks"]
	if hooks == nil {
		t.Fatal("no Ingress ownersync-webhooks")
	}
	size := hooks.Annotations["nginx.ingress.kubernetes.io/proxy-body-size"]
	mb, err := strconv.Atoi(strings.TrimSuffix(size, "m"))
	if err != nil || !strings.HasSuffix(size, "m") || mb < 5 {
		t.Errorf("webhook route proxy-body-size %q: want at least 5m (Salesforce messages up to OWNERSYNC_SALESFORCE_BODY_LIMIT, 5 MB)", size)
	}
}
