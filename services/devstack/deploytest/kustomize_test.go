package deploytest

import (
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// TestKustomizeBuilds renders deployments/k8s the way `kubectl apply -k` does (kustomize's own
// library) and checks what would be applied: everything in the ownersync namespace, and every
// image rewritten to the registry at a version.
func TestKustomizeBuilds(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join(root, "deployments/k8s"))
	if err != nil {
		t.Fatal(err)
	}
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build deployments/k8s: %v", err)
	}
	k := loadKustomization(t)
	deployments := 0
	for _, r := range resMap.Resources() {
		kind, name := r.GetKind(), r.GetName()
		if kind == "Namespace" {
			continue
		}
		if ns := r.GetNamespace(); ns != k.Namespace {
			t.Errorf("%s/%s renders in namespace %q, want %q", kind, name, ns, k.Namespace)
		}
		if kind != "Deployment" {
			continue
		}
		deployments++
		images, err := r.GetSlice("spec.template.spec.containers")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range images {
			image, _ := c.(map[string]any)["image"].(string)
			ref, tag, ok := strings.Cut(image, ":")
			if !ok || !strings.Contains(ref, "/") || !versionTag.MatchString(tag) {
				t.Errorf("%s renders image %q: want registry/name:version", name, image)
			}
		}
	}
	if deployments != len(services) {
		t.Errorf("kustomize renders %d Deployments, want %d", deployments, len(services))
	}
}
