package helm

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// chartDir is the chart, relative to this package.
const chartDir = "herd"

// kubeVersion is the cluster version the chart is rendered for.
const kubeVersion = "v1.37.0"

// podMonitor is the part of the Prometheus Operator's PodMonitor
// (monitoring.coreos.com/v1) the chart writes. Its API module is not
// imported for one object; decoding strictly into this struct still
// fails on any field the chart writes that is not listed here.
type podMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector            metav1.LabelSelector `json:"selector"`
		PodMetricsEndpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"podMetricsEndpoints"`
	} `json:"spec"`
}

// rendered is a chart rendered and decoded: the manifest, and each
// object by kind and name.
type rendered struct {
	manifest    string
	statefulSet *appsv1.StatefulSet
	services    map[string]*corev1.Service
	secrets     map[string]*corev1.Secret
	pdb         *policyv1.PodDisruptionBudget
	podMonitor  *podMonitor
	docs        []string // each object's YAML, in the manifest's order
}

// render renders the chart as `helm template` does (client only, no
// cluster), for release name in namespace with vals.
func render(name, namespace string, vals map[string]any) (string, error) {
	ch, err := loader.Load(chartDir)
	if err != nil {
		return "", err
	}
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		return "", err
	}
	install := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	install.DryRun = true
	install.ClientOnly = true
	install.Replace = true
	install.ReleaseName = name
	install.Namespace = namespace
	install.KubeVersion = kv
	rel, err := install.Run(ch, vals)
	if err != nil {
		return "", err
	}
	return rel.Manifest, nil
}

// decodeStrict decodes one YAML object into obj as the API server's strict
// field validation does: a key given twice, or a field obj's type does not
// have, is an error, and field names are case-sensitive (encoding/json
// alone would take clusterIp for clusterIP).
func decodeStrict(doc string, obj any) error {
	j, err := yaml.YAMLToJSONStrict([]byte(doc))
	if err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(j, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// mustRender renders and decodes every object strictly into its type.
func mustRender(t *testing.T, name, namespace string, vals map[string]any) *rendered {
	t.Helper()
	manifest, err := render(name, namespace, vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	r := &rendered{manifest: manifest, services: map[string]*corev1.Service{}, secrets: map[string]*corev1.Secret{}}
	for _, doc := range releaseutil.SplitManifests(manifest) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("object without a type: %v\n%s", err, doc)
		}
		var obj interface {
			GetName() string
			GetNamespace() string
			GetLabels() map[string]string
		}
		switch tm.APIVersion + " " + tm.Kind {
		case "apps/v1 StatefulSet":
			if r.statefulSet != nil {
				t.Fatal("two StatefulSets")
			}
			r.statefulSet = &appsv1.StatefulSet{}
			obj = r.statefulSet
		case "v1 Service":
			s := &corev1.Service{}
			obj = s
			defer func() { r.services[s.Name] = s }()
		case "v1 Secret":
			s := &corev1.Secret{}
			obj = s
			defer func() { r.secrets[s.Name] = s }()
		case "policy/v1 PodDisruptionBudget":
			r.pdb = &policyv1.PodDisruptionBudget{}
			obj = r.pdb
		case "monitoring.coreos.com/v1 PodMonitor":
			r.podMonitor = &podMonitor{}
			obj = r.podMonitor
		default:
			t.Fatalf("unexpected object %s %s", tm.APIVersion, tm.Kind)
		}
		if err := decodeStrict(doc, obj); err != nil {
			t.Fatalf("%s does not decode strictly: %v\n%s", tm.Kind, err, doc)
		}
		if obj.GetNamespace() != namespace {
			t.Errorf("%s %s: namespace %q, want %q", tm.Kind, obj.GetName(), obj.GetNamespace(), namespace)
		}
		if obj.GetLabels()["app.kubernetes.io/managed-by"] != "Helm" {
			t.Errorf("%s %s: labels %v lack app.kubernetes.io/managed-by", tm.Kind, obj.GetName(), obj.GetLabels())
		}
		r.docs = append(r.docs, doc)
	}
	if r.statefulSet == nil {
		t.Fatal("no StatefulSet rendered")
	}
	return r
}

// container returns the herd container of the pod template.
func (r *rendered) container(t *testing.T) *corev1.Container {
	t.Helper()
	cs := r.statefulSet.Spec.Template.Spec.Containers
	if len(cs) != 1 || cs[0].Name != "herd" {
		t.Fatalf("containers %+v, want one named herd", cs)
	}
	return &cs[0]
}

// env returns the container's variable name, or nil.
func (r *rendered) env(t *testing.T, name string) *corev1.EnvVar {
	t.Helper()
	var found *corev1.EnvVar
	for i, e := range r.container(t).Env {
		if e.Name == name {
			if found != nil {
				t.Errorf("%s is set twice", name)
			}
			found = &r.container(t).Env[i]
		}
	}
	return found
}

// envValue returns the plain value of variable name, failing when it is
// not set or comes from elsewhere.
func (r *rendered) envValue(t *testing.T, name string) string {
	t.Helper()
	e := r.env(t, name)
	if e == nil {
		t.Fatalf("%s is not set", name)
	}
	if e.ValueFrom != nil {
		t.Fatalf("%s comes from %+v, not a value", name, e.ValueFrom)
	}
	return e.Value
}

// fileFromSecret follows a file path in the container to the volume
// mounted there and returns the Secret and key it comes from.
func (r *rendered) fileFromSecret(t *testing.T, path string) (secret, key string) {
	t.Helper()
	for _, m := range r.container(t).VolumeMounts {
		dir := strings.TrimSuffix(m.MountPath, "/") + "/"
		if !strings.HasPrefix(path, dir) {
			continue
		}
		if !m.ReadOnly {
			t.Errorf("volume %s at %s is writable", m.Name, m.MountPath)
		}
		file := strings.TrimPrefix(path, dir)
		for _, v := range r.statefulSet.Spec.Template.Spec.Volumes {
			if v.Name != m.Name {
				continue
			}
			if v.Secret == nil {
				t.Fatalf("%s is on volume %s, which is not a Secret", path, v.Name)
			}
			for _, item := range v.Secret.Items {
				if item.Path == file {
					return v.Secret.SecretName, item.Key
				}
			}
			t.Fatalf("volume %s has no item at %s (items %+v)", v.Name, file, v.Secret.Items)
		}
		t.Fatalf("mount %s names no volume", m.Name)
	}
	t.Fatalf("no volume is mounted above %s", path)
	return "", ""
}

// values builds a values map from dotted paths, as `--set` does.
func values(kv ...any) map[string]any {
	vals := map[string]any{}
	for i := 0; i < len(kv); i += 2 {
		m := vals
		parts := strings.Split(kv[i].(string), ".")
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = kv[i+1]
	}
	return vals
}

func TestDecodeIsStrict(t *testing.T) {
	tests := []struct {
		name string
		doc  string
	}{
		{"unknown field", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {clusterIp: None}\n"},
		{"field of another case", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {clusterIP: None, ClusterIP: None}\n"},
		{"key given twice", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {clusterIP: None, clusterIP: None}\n"},
		{"wrong type", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: twelve}]}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := decodeStrict(tt.doc, &corev1.Service{}); err == nil {
				t.Errorf("accepted:\n%s", tt.doc)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	pem := "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n"
	tests := []struct {
		name string
		vals map[string]any
		want string // in the error
	}{
		{"grace not longer than shutdown and preStop", values("terminationGracePeriodSeconds", 15), "terminationGracePeriodSeconds"},
		{"grace shorter than shutdown", values("terminationGracePeriodSeconds", 5, "preStopSleepSeconds", 0), "terminationGracePeriodSeconds"},
		{"TLS without material", values("tls.enabled", true), "tls.existingSecret"},
		{"TLS without a CA", values("tls.enabled", true, "tls.cert", pem, "tls.key", pem), "tls.ca"},
		{"short peer secret", values("peerSecret.value", "short"), "peerSecret.value"},
		{"no servers", values("servers", 0), "servers"},
		{"extraEnv overriding the topology", values("extraEnv.HERD_NAME", "x"), "extraEnv.HERD_NAME"},
		{"extraEnv overriding the secret", values("extraEnv.HERD_PEER_SECRET", "0123456789abcdef"), "extraEnv.HERD_PEER_SECRET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := render("herd", "default", tt.vals)
			if err == nil {
				t.Fatal("rendered")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %s", err, tt.want)
			}
		})
	}
}

func TestValuesDocumented(t *testing.T) {
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	var readme string
	for _, f := range ch.Files {
		if f.Name == "README.md" {
			readme = string(f.Data)
		}
	}
	if readme == "" {
		t.Fatal("the chart has no README.md")
	}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			// A value is documented by its own row, or by its
			// parent's when it is part of a map documented whole.
			key := prefix + k
			if strings.Contains(readme, "| `"+key+"` |") {
				continue
			}
			if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
				walk(key+".", sub)
				continue
			}
			t.Errorf("value %s has no row in the chart's README.md", key)
		}
	}
	walk("", ch.Values)
	if fmt.Sprint(ch.Values["servers"]) != "5" {
		t.Errorf("servers defaults to %v, want the classic five", ch.Values["servers"])
	}
}
