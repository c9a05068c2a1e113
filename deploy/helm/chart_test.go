package helm

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// imageUser reads the numeric user and group of the image's runtime stage
// from the Dockerfile at the root of the repository.
func imageUser(t *testing.T) (uid, gid int64) {
	t.Helper()
	f, err := os.Open("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "USER "); ok {
			us, gs, _ := strings.Cut(u, ":")
			uid, err1 := strconv.ParseInt(us, 10, 64)
			gid, err2 := strconv.ParseInt(gs, 10, 64)
			if err1 != nil || err2 != nil {
				t.Fatalf("USER %s is not numeric uid:gid", u)
			}
			return uid, gid
		}
	}
	t.Fatal("the Dockerfile has no USER")
	return 0, 0
}

func TestChart(t *testing.T) {
	pem := func(what string) string {
		return "-----BEGIN " + what + "-----\nMIIB\n-----END " + what + "-----\n"
	}
	tests := []struct {
		name, release, namespace string
		vals                     map[string]any

		servers     int
		template    string // HERD_PEER_TEMPLATE
		peerSecret  string // the Secret and key of the peer secret
		peerKey     string
		chartSecret bool   // the chart renders the peer secret's Secret
		tls         string // the Secret of the TLS files; "" without TLS
		chartTLS    bool   // the chart renders the TLS Secret
		persistence bool
		grace       int64
	}{
		{
			name: "defaults", release: "herd", namespace: "default",
			servers: 5, template: "herd-{i}.herd-peer.default.svc.cluster.local:12300",
			peerSecret: "herd-peer-secret", peerKey: "peer-secret", chartSecret: true,
			persistence: true, grace: 25,
		},
		{
			name: "nine servers in another namespace and domain", release: "prod", namespace: "edge",
			vals:    values("servers", 9, "clusterDomain", "k8s.example", "peerSecret.value", "0123456789abcdef0123"),
			servers: 9, template: "prod-herd-{i}.prod-herd-peer.edge.svc.k8s.example:12300",
			peerSecret: "prod-herd-peer-secret", peerKey: "peer-secret", chartSecret: true,
			persistence: true, grace: 25,
		},
		{
			name: "TLS from values", release: "herd", namespace: "herd",
			vals:    values("tls.enabled", true, "tls.cert", pem("CERTIFICATE"), "tls.key", pem("PRIVATE KEY"), "tls.ca", pem("CERTIFICATE")),
			servers: 5, template: "herd-{i}.herd-peer.herd.svc.cluster.local:12300",
			peerSecret: "herd-peer-secret", peerKey: "peer-secret", chartSecret: true,
			tls: "herd-peer-tls", chartTLS: true, persistence: true, grace: 25,
		},
		{
			name: "existing secrets, cert-manager's TLS", release: "herd", namespace: "herd",
			vals: values("peerSecret.existingSecret", "vault-herd", "peerSecret.key", "secret",
				"tls.enabled", true, "tls.existingSecret", "herd-cert"),
			servers: 5, template: "herd-{i}.herd-peer.herd.svc.cluster.local:12300",
			peerSecret: "vault-herd", peerKey: "secret", tls: "herd-cert", persistence: true, grace: 25,
		},
		{
			name: "one server, no volume, longer shutdown", release: "solo", namespace: "default",
			vals: values("servers", 1, "persistence.enabled", false, "shutdownTimeoutSeconds", 30,
				"preStopSleepSeconds", 0, "terminationGracePeriodSeconds", 45),
			servers: 1, template: "solo-herd-{i}.solo-herd-peer.default.svc.cluster.local:12300",
			peerSecret: "solo-herd-peer-secret", peerKey: "peer-secret", chartSecret: true, grace: 45,
		},
	}
	uid, gid := imageUser(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustRender(t, tt.release, tt.namespace, tt.vals)
			sts := r.statefulSet
			pod := sts.Spec.Template
			c := r.container(t)

			// Topology: the pods' names are HERD_NAME, and the
			// template's {i} resolves through the headless Service.
			if sts.Spec.Replicas == nil || int(*sts.Spec.Replicas) != tt.servers {
				t.Errorf("replicas %v, want %d", sts.Spec.Replicas, tt.servers)
			}
			if got := r.envValue(t, "HERD_SERVERS"); got != strconv.Itoa(tt.servers) {
				t.Errorf("HERD_SERVERS=%s, want %d", got, tt.servers)
			}
			if sts.Spec.PodManagementPolicy != "Parallel" {
				t.Errorf("podManagementPolicy %q", sts.Spec.PodManagementPolicy)
			}
			name := r.env(t, "HERD_NAME")
			if name == nil || name.ValueFrom == nil || name.ValueFrom.FieldRef == nil || name.ValueFrom.FieldRef.FieldPath != "metadata.name" {
				t.Errorf("HERD_NAME is %+v, want the pod's name", name)
			}
			if got := r.envValue(t, "HERD_PEER_TEMPLATE"); got != tt.template {
				t.Errorf("HERD_PEER_TEMPLATE=%s, want %s", got, tt.template)
			}
			base, rest, _ := strings.Cut(tt.template, "-{i}.")
			service, _, _ := strings.Cut(rest, ".")
			if sts.Name != base {
				t.Errorf("StatefulSet %s: its pods are not named %s-<i>", sts.Name, base)
			}
			if sts.Spec.ServiceName != service {
				t.Errorf("serviceName %s, want %s", sts.Spec.ServiceName, service)
			}
			if r.env(t, "HERD_PEERS") != nil || r.env(t, "HERD_PEER_SECRET") != nil {
				t.Error("HERD_PEERS or HERD_PEER_SECRET is set; the servers derive their neighbours and read the secret from a file")
			}

			// Services: the headless one publishes every pod, ready or
			// not, on the peer port; the client one spreads clients.
			podLabels := labels.Set(pod.Labels)
			headless := r.services[service]
			if headless == nil {
				t.Fatalf("no Service %s (have %v)", service, keys(r.services))
			}
			if headless.Spec.ClusterIP != corev1.ClusterIPNone || !headless.Spec.PublishNotReadyAddresses {
				t.Errorf("Service %s: clusterIP %q, publishNotReadyAddresses %v", service, headless.Spec.ClusterIP, headless.Spec.PublishNotReadyAddresses)
			}
			checkPort(t, headless, "peer", 12300, c)
			client := r.services[base]
			if client == nil {
				t.Fatalf("no client Service %s", base)
			}
			checkPort(t, client, "client", 12200, c)
			for _, s := range []*corev1.Service{headless, client} {
				if len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) {
					t.Errorf("Service %s selects %v, not the pods (%v)", s.Name, s.Spec.Selector, pod.Labels)
				}
			}

			// Secrets: the peer secret is a file from the Secret.
			secret, key := r.fileFromSecret(t, r.envValue(t, "HERD_PEER_SECRET_FILE"))
			if secret != tt.peerSecret || key != tt.peerKey {
				t.Errorf("peer secret from %s/%s, want %s/%s", secret, key, tt.peerSecret, tt.peerKey)
			}
			if s, ok := r.secrets[tt.peerSecret]; ok != tt.chartSecret {
				t.Errorf("Secret %s rendered: %v, want %v", tt.peerSecret, ok, tt.chartSecret)
			} else if ok && len(s.Data[tt.peerKey]) < 16 {
				t.Errorf("Secret %s: %s holds %d bytes, want at least 16", tt.peerSecret, tt.peerKey, len(s.Data[tt.peerKey]))
			}
			tlsVars := []string{"HERD_PEER_TLS_CERT", "HERD_PEER_TLS_KEY", "HERD_PEER_TLS_CA"}
			if tt.tls == "" {
				for _, v := range tlsVars {
					if r.env(t, v) != nil {
						t.Errorf("%s is set without TLS", v)
					}
				}
			} else {
				for i, v := range tlsVars {
					secret, key := r.fileFromSecret(t, r.envValue(t, v))
					if want := []string{"tls.crt", "tls.key", "ca.crt"}[i]; secret != tt.tls || key != want {
						t.Errorf("%s from %s/%s, want %s/%s", v, secret, key, tt.tls, want)
					}
				}
				if s, ok := r.secrets[tt.tls]; ok != tt.chartTLS {
					t.Errorf("Secret %s rendered: %v, want %v", tt.tls, ok, tt.chartTLS)
				} else if ok && (s.Type != corev1.SecretTypeTLS || len(s.Data["ca.crt"]) == 0) {
					t.Errorf("Secret %s: type %s, keys %v", tt.tls, s.Type, keys(s.Data))
				}
			}
			if len(r.secrets) != btoi(tt.chartSecret)+btoi(tt.chartTLS) {
				t.Errorf("Secrets rendered: %v", keys(r.secrets))
			}

			// Probes: ready on /readyz, alive on /healthz, both on the
			// metrics port.
			checkProbe(t, "readiness", c.ReadinessProbe, "/readyz", c)
			checkProbe(t, "liveness", c.LivenessProbe, "/healthz", c)
			checkProbe(t, "startup", c.StartupProbe, "/healthz", c)

			// Shutdown: the grace covers the preStop sleep and
			// HERD_SHUTDOWN_TIMEOUT, with time to spare.
			shutdown, err := strconv.ParseInt(strings.TrimSuffix(r.envValue(t, "HERD_SHUTDOWN_TIMEOUT"), "s"), 10, 64)
			if err != nil {
				t.Fatalf("HERD_SHUTDOWN_TIMEOUT: %v", err)
			}
			var sleep int64
			if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
				sleep = c.Lifecycle.PreStop.Sleep.Seconds
			}
			grace := pod.Spec.TerminationGracePeriodSeconds
			if grace == nil || *grace != tt.grace || *grace <= sleep+shutdown {
				t.Errorf("terminationGracePeriodSeconds %v, want %d and more than %d + %d", grace, tt.grace, sleep, shutdown)
			}

			// Storage: the journal is on the claim, writable by the image's user.
			if got := r.envValue(t, "HERD_DATA_DIR"); got != "/data" || !mounted(c, "data", "/data") {
				t.Errorf("HERD_DATA_DIR=%s, mounts %+v", got, c.VolumeMounts)
			}
			claims := sts.Spec.VolumeClaimTemplates
			if tt.persistence != (len(claims) == 1 && claims[0].Name == "data") {
				t.Errorf("claims %+v, want a data claim: %v", claims, tt.persistence)
			}
			psc := pod.Spec.SecurityContext
			if psc == nil || psc.FSGroup == nil || *psc.FSGroup != gid || psc.RunAsUser == nil || *psc.RunAsUser != uid ||
				psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
				t.Errorf("pod security context %+v, want the image's user %d and fsGroup %d", psc, uid, gid)
			}
			if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("container security context %+v, want a read-only root", sc)
			}
			if pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken {
				t.Error("the service account token is mounted; herd needs no API access")
			}

			// Budget: at most one server down at a time, for these pods.
			if r.pdb == nil {
				t.Fatal("no PodDisruptionBudget")
			}
			if mu := r.pdb.Spec.MaxUnavailable; mu == nil || mu.IntValue() != 1 {
				t.Errorf("PDB maxUnavailable %v, want 1", mu)
			}
			sel, err := metav1.LabelSelectorAsSelector(r.pdb.Spec.Selector)
			if err != nil || sel.Empty() || !sel.Matches(podLabels) {
				t.Errorf("PDB selector %v does not select the pods (%v): %v", r.pdb.Spec.Selector, pod.Labels, err)
			}

			// Metrics: the scrape annotations point at the metrics port.
			a := pod.Annotations
			if a["prometheus.io/scrape"] != "true" || a["prometheus.io/path"] != "/metrics" || a["prometheus.io/port"] != strconv.Itoa(int(containerPort(t, c, "metrics"))) {
				t.Errorf("pod annotations %v", a)
			}
			if want := ":" + strconv.Itoa(int(containerPort(t, c, "metrics"))); r.envValue(t, "HERD_METRICS_ADDR") != want {
				t.Errorf("HERD_METRICS_ADDR=%s, want %s", r.envValue(t, "HERD_METRICS_ADDR"), want)
			}
			if r.podMonitor != nil {
				t.Error("a PodMonitor without metrics.podMonitor.enabled")
			}
		})
	}
}

func TestPodMonitor(t *testing.T) {
	r := mustRender(t, "herd", "default", values("metrics.podMonitor.enabled", true, "metrics.podMonitor.labels.release", "kube-prometheus"))
	pm := r.podMonitor
	if pm == nil {
		t.Fatal("no PodMonitor")
	}
	sel, err := metav1.LabelSelectorAsSelector(&pm.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(r.statefulSet.Spec.Template.Labels)) {
		t.Errorf("PodMonitor selector %v does not select the pods: %v", pm.Spec.Selector, err)
	}
	if len(pm.Spec.PodMetricsEndpoints) != 1 || pm.Spec.PodMetricsEndpoints[0].Port != "metrics" || pm.Spec.PodMetricsEndpoints[0].Path != "/metrics" {
		t.Errorf("endpoints %+v", pm.Spec.PodMetricsEndpoints)
	}
	containerPort(t, r.container(t), "metrics")
	if pm.Labels["release"] != "kube-prometheus" {
		t.Errorf("labels %v lack the one given", pm.Labels)
	}
}

// TestExtraEnv checks that extra variables reach the container, plain and
// from a Secret.
func TestExtraEnv(t *testing.T) {
	r := mustRender(t, "herd", "default", map[string]any{
		"extraEnv": map[string]any{"HERD_PLACES": "offline", "HERD_PEER_HEARTBEAT": "250ms"},
		"extraEnvVars": []any{map[string]any{"name": "HERD_GOOGLE_API_KEY", "valueFrom": map[string]any{
			"secretKeyRef": map[string]any{"name": "google", "key": "key"}}}},
	})
	if r.envValue(t, "HERD_PLACES") != "offline" || r.envValue(t, "HERD_PEER_HEARTBEAT") != "250ms" {
		t.Error("extraEnv is not in the container")
	}
	if e := r.env(t, "HERD_GOOGLE_API_KEY"); e == nil || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != "google" {
		t.Errorf("HERD_GOOGLE_API_KEY is %+v", e)
	}
}

func checkPort(t *testing.T, s *corev1.Service, name string, port int32, c *corev1.Container) {
	t.Helper()
	for _, p := range s.Spec.Ports {
		if p.Name == name {
			if p.Port != port || p.TargetPort.String() != name {
				t.Errorf("Service %s port %s: %d -> %s, want %d -> %s", s.Name, name, p.Port, p.TargetPort.String(), port, name)
			}
			containerPort(t, c, name)
			return
		}
	}
	t.Errorf("Service %s has no port %s", s.Name, name)
}

func containerPort(t *testing.T, c *corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Errorf("the container has no port named %s", name)
	return 0
}

func checkProbe(t *testing.T, kind string, p *corev1.Probe, path string, c *corev1.Container) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("%s probe %+v is not an HTTP GET", kind, p)
		return
	}
	if p.HTTPGet.Path != path || p.HTTPGet.Port.String() != "metrics" {
		t.Errorf("%s probe GET %s on %s, want %s on metrics", kind, p.HTTPGet.Path, p.HTTPGet.Port.String(), path)
	}
	containerPort(t, c, "metrics")
}

func mounted(c *corev1.Container, volume, path string) bool {
	for _, m := range c.VolumeMounts {
		if m.Name == volume && m.MountPath == path && !m.ReadOnly {
			return true
		}
	}
	return false
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestGoMemLimit checks that the Go runtime's soft limit is set below the
// container's memory limit by default, follows the value given, and is
// left unset when the value is empty.
func TestGoMemLimit(t *testing.T) {
	r := mustRender(t, "herd", "default", nil)
	soft, err := resource.ParseQuantity(strings.TrimSuffix(r.envValue(t, "GOMEMLIMIT"), "B"))
	if err != nil {
		t.Fatal(err)
	}
	hard := r.container(t).Resources.Limits[corev1.ResourceMemory]
	if hard.IsZero() || soft.Cmp(hard) >= 0 || soft.Value() < hard.Value()/2 {
		t.Errorf("GOMEMLIMIT %s, memory limit %s: want between half and all of it", soft.String(), hard.String())
	}
	if v := mustRender(t, "herd", "default", values("goMemLimit", "1GiB")).envValue(t, "GOMEMLIMIT"); v != "1GiB" {
		t.Errorf("goMemLimit 1GiB gives GOMEMLIMIT %q", v)
	}
	if e := mustRender(t, "herd", "default", values("goMemLimit", "")).env(t, "GOMEMLIMIT"); e != nil {
		t.Errorf("goMemLimit empty gives GOMEMLIMIT %+v", e)
	}
}
