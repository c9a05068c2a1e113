package helm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/releaseutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/herdkit/herd/deploy/internal/peertls"
)

// lockedBuffer collects a process's output for the failure message.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startControllerManager runs kube-controller-manager against cfg's API
// server with the controllers the chart depends on, until t ends.
// envtest starts only etcd and kube-apiserver.
func startControllerManager(t *testing.T, bin string, user *envtest.AuthenticatedUser) {
	t.Helper()
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	cmd := exec.Command(bin,
		"--kubeconfig="+path,
		// The StatefulSet controller creates the pods and claims; the
		// disruption controller counts the pods the budget covers.
		"--controllers=statefulset-controller,disruption-controller",
		"--leader-elect=false",
		"--secure-port=0", // no HTTPS endpoint: no fixed port taken
		"--use-service-account-credentials=false",
		"--v=2")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("kube-controller-manager's log:\n%s", tail(out.String(), 60))
		}
	})
}

func tail(s string, lines int) string {
	ls := strings.Split(s, "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// applyManifest applies every object of manifest server-side, with strict
// field validation, in namespace.
func applyManifest(ctx context.Context, t *testing.T, cfg *rest.Config, namespace, manifest string) {
	t.Helper()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	force := true
	for _, doc := range releaseutil.SplitManifests(manifest) {
		j, err := yaml.YAMLToJSONStrict([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		var u unstructured.Unstructured
		if err := u.UnmarshalJSON(j); err != nil {
			t.Fatal(err)
		}
		gvk := u.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s: %v", gvk, err)
		}
		_, err = dyn.Resource(m.Resource).Namespace(namespace).Patch(ctx, u.GetName(), types.ApplyPatchType, j,
			metav1.PatchOptions{FieldManager: "herd-chart-test", Force: &force, FieldValidation: "Strict"})
		if err != nil {
			t.Fatalf("applying %s %s: %v", gvk.Kind, u.GetName(), err)
		}
	}
}

// TestChartOnAPIServer applies the rendered chart to a real API server
// (server-side, strict field validation) with kube-controller-manager's
// StatefulSet and disruption controllers running, and checks what they
// make of it: every pod and claim created at once (parallel, with no pod
// ever ready: there is no kubelet), each pod's DNS name the one its
// neighbours derive from HERD_PEER_TEMPLATE, and the budget covering the
// pods. It runs where KUBEBUILDER_ASSETS holds kube-apiserver, etcd and
// kube-controller-manager (deploy/scripts/build-k8s-test-bins).
func TestChartOnAPIServer(t *testing.T) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		t.Skip("KUBEBUILDER_ASSETS is not set; export KUBEBUILDER_ASSETS=$(deploy/scripts/build-k8s-test-bins) to run this test")
	}
	kcm := filepath.Join(assets, "kube-controller-manager")
	if _, err := os.Stat(kcm); err != nil {
		t.Fatalf("KUBEBUILDER_ASSETS lacks kube-controller-manager, which this test needs besides envtest's kube-apiserver and etcd: %v", err)
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	start := time.Now()
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting etcd and kube-apiserver: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
	})
	t.Logf("etcd and kube-apiserver up in %v", time.Since(start).Round(time.Millisecond))
	user, err := env.AddUser(envtest.User{Name: "herd-test-controller-manager", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	startControllerManager(t, kcm, user)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const ns, servers = "herd-test", 5
	if _, err := cs.CoreV1().Namespaces().Create(ctx, nsObject(ns), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	certs := peerCerts(t)
	manifest, err := render("herd", ns, values("tls.enabled", true, "tls.cert", string(certs.Cert), "tls.key", string(certs.Key),
		"tls.ca", string(certs.CA)))
	if err != nil {
		t.Fatal(err)
	}
	applied := time.Now()
	applyManifest(ctx, t, cfg, ns, manifest)

	// Every pod and claim, created together although none is ready.
	poll(ctx, t, "five pods and five claims", func() error {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		claims, err := cs.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		if len(pods.Items) != servers || len(claims.Items) != servers {
			return fmt.Errorf("%d pods, %d claims", len(pods.Items), len(claims.Items))
		}
		return nil
	})
	t.Logf("the StatefulSet controller made %d pods and claims %v after the apply", servers, time.Since(applied).Round(time.Millisecond))
	sts, err := cs.AppsV1().StatefulSets(ns).Get(ctx, "herd", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var template string
	for _, e := range sts.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "HERD_PEER_TEMPLATE" {
			template = e.Value
		}
	}
	for i := range servers {
		name := "herd-" + strconv.Itoa(i)
		pod, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("pod %s: %v", name, err)
		}
		for _, c := range pod.Status.Conditions {
			if c.Type == "Ready" && c.Status == "True" {
				t.Errorf("pod %s is ready with no kubelet", name)
			}
		}
		// The name a neighbour dials is the pod's own DNS name.
		dns := fmt.Sprintf("%s.%s.%s.svc.cluster.local:12300", pod.Spec.Hostname, pod.Spec.Subdomain, ns)
		if want := strings.ReplaceAll(template, "{i}", strconv.Itoa(i)); dns != want {
			t.Errorf("pod %s is %s in DNS; its neighbours dial %s", name, dns, want)
		}
		claim := "data-" + name
		var mounted bool
		for _, v := range pod.Spec.Volumes {
			mounted = mounted || v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim
		}
		if !mounted {
			t.Errorf("pod %s does not mount claim %s", name, claim)
		}
		pvc, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, claim, metav1.GetOptions{})
		if err != nil {
			t.Errorf("claim %s: %v", claim, err)
		} else if q := pvc.Spec.Resources.Requests.Storage(); q.String() != "1Gi" {
			t.Errorf("claim %s requests %s", claim, q)
		}
		if g := pod.Spec.SecurityContext.FSGroup; g == nil || *g != 65534 {
			t.Errorf("pod %s: fsGroup %v", name, g)
		}
	}
	// The budget covers the five pods, as the disruption controller counts.
	poll(ctx, t, "the budget counting the pods", func() error {
		pdb, err := cs.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, "herd", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if pdb.Status.ExpectedPods != servers {
			return fmt.Errorf("expectedPods %d", pdb.Status.ExpectedPods)
		}
		return nil
	})
	for _, name := range []string{"herd", "herd-peer"} {
		if _, err := cs.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("service %s: %v", name, err)
		}
	}
}

// poll calls cond until it returns nil, and fails t with its last error
// after a minute, well within ctx, so that the last error is cond's own.
func poll(ctx context.Context, t *testing.T, what string, cond func() error) {
	t.Helper()
	pollFor(ctx, t, what, time.Minute, cond)
}

// pollFor is poll with a time-out of its own.
func pollFor(ctx context.Context, t *testing.T, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func nsObject(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

// peerCerts returns the herd's CA and a certificate it signed for the
// peer names of the chart in namespace herd-test, as the TLS Secret
// holds them.
func peerCerts(t *testing.T) *peertls.Bundle {
	t.Helper()
	b, err := peertls.New("*.herd-peer.herd-test.svc.cluster.local")
	if err != nil {
		t.Fatal(err)
	}
	return b
}
