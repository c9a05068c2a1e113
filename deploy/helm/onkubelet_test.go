//go:build linux

package helm

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/herdkit/herd/deploy/internal/herdsrc"
	"github.com/herdkit/herd/deploy/internal/herdtest"
	"github.com/herdkit/herd/deploy/internal/peertls"
)

// requireKubelet returns the directory of the cluster's binaries, or
// skips t: it runs as root where KUBEBUILDER_ASSETS holds what
// build-k8s-test-bins builds.
func requireKubelet(t *testing.T) string {
	t.Helper()
	bins := os.Getenv("KUBEBUILDER_ASSETS")
	const how = "export KUBEBUILDER_ASSETS=$(deploy/scripts/build-k8s-test-bins) and run as root, with Debian's docker.io " +
		"(runc, and the engine that builds the herd image) and iproute2 (docs/deploy.md: about 1.5 minutes and 1.1 GB of memory, " +
		"after about 21 minutes to build the binaries once)"
	if bins == "" {
		t.Skip("KUBEBUILDER_ASSETS is not set: " + how)
	}
	for _, b := range nodeBins {
		if _, err := os.Stat(filepath.Join(bins, b)); err != nil {
			t.Skipf("KUBEBUILDER_ASSETS has no %s (built with `build-k8s-test-bins control-plane`?): %s", b, how)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("not root: " + how)
	}
	for _, c := range []string{"docker", "ip", "nsenter", "runc"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Fatalf("KUBEBUILDER_ASSETS has the node's binaries, but %s is missing: %v", c, err)
		}
	}
	return bins
}

// The release the test installs, and the names its chart derives.
const (
	release   = "herd"
	namespace = "herd-test"
	peers     = "herd-peer." + namespace + ".svc.cluster.local"
)

// pod is server i's DNS name, as its neighbours derive it.
func pod(i int) string { return fmt.Sprintf("herd-%d.%s", i, peers) }

// neighbours are server i's of n, as docs/topology.md derives them:
// i ± 3^k mod n for every 3^k < n.
func neighbours(i, n int) []string {
	var names []string
	for p := 1; p < n; p *= 3 {
		for _, j := range []int{(i + p) % n, (i - p%n + n) % n} {
			if name := fmt.Sprintf("herd-%d", j); j != i && !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
	}
	slices.Sort(names)
	return names
}

// TestChartOnKubelet installs the chart with Helm's library on a
// single-node cluster started here, with mutual TLS on the peer links
// and a local PersistentVolume per pod, and checks that: the five pods
// become ready, each linked over mutual TLS to the neighbours it derives;
// an IAMAT at any pod is answered by a WHATSAT at every other; a pod
// deleted under load comes back with its claim and catches up, with no
// acknowledged IAMAT missing on any pod; and, after an upgrade to seven
// servers (a rolling change of every pod), the seven form one herd that
// has every record.
func TestChartOnKubelet(t *testing.T) {
	bins := requireKubelet(t)
	start := time.Now()
	id := fmt.Sprintf("%06x", time.Now().UnixNano()&0xffffff)
	c := newCluster(t, bins, id)
	image := c.loadHerdImage(id)
	c.localVolumes(7)
	client := &herdtest.Client{Resolver: c.resolver()}
	t.Logf("cluster up, images imported, volumes made: %v", since(start))

	certs := peerCerts(t)
	start = time.Now()
	helmRun(t, c, 5, values("image.repository", strings.Split(image, ":")[0], "image.tag", strings.Split(image, ":")[1],
		"tls.enabled", true, "tls.cert", string(certs.Cert), "tls.key", string(certs.Key), "tls.ca", string(certs.CA)))
	waitHerd(t, c, client, 5)
	t.Logf("helm install: five pods ready and linked %v later", since(start))
	checkMutualTLS(t, client, certs, 5)
	t.Log("every pod's peer port speaks TLS 1.3 with the chart's certificate, and refuses a client without one")
	oneHerd(t, client, 5, "first-"+id)

	acks := deleteUnderLoad(t, c, client, 2, "load-"+id)

	start = time.Now()
	helmRun(t, c, 7, nil)
	waitRollout(t, c, 7)
	waitHerd(t, c, client, 7)
	t.Logf("helm upgrade to seven servers: rolled out, seven pods ready and linked %v later", since(start))
	for i := range 7 {
		poll(context.Background(), t, fmt.Sprintf("every acknowledged IAMAT on herd-%d", i), func() error {
			return missing(client, i, acks)
		})
	}
	oneHerd(t, client, 7, "seven-"+id)
}

// loadHerdImage builds the herd image from this tree on the local
// engine, saves it, imports it into the node's containerd, and removes
// it from the engine; it returns its name.
func (c *cluster) loadHerdImage(id string) string {
	c.t.Helper()
	image := "herd.local/herd:" + id
	herdsrc.BuildImage(c.t, image)
	defer exec.Command("docker", "rmi", "-f", image).Run()
	archive := c.path("herd.tar")
	if out, err := exec.Command("docker", "save", "-o", archive, image).CombinedOutput(); err != nil {
		c.t.Fatalf("docker save: %v\n%s", err, out)
	}
	c.importImage(archive)
	return image
}

// localVolumes makes n local PersistentVolumes of 1 GiB on the node, in
// directories of the cluster's, and a default StorageClass for them that
// binds a claim when its pod is scheduled.
func (c *cluster) localVolumes(n int) {
	c.t.Helper()
	ctx := context.Background()
	mode := storagev1.VolumeBindingWaitForFirstConsumer
	class := &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{Name: "local",
			Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}},
		Provisioner:       "kubernetes.io/no-provisioner",
		VolumeBindingMode: &mode,
	}
	if _, err := c.cs.StorageV1().StorageClasses().Create(ctx, class, metav1.CreateOptions{}); err != nil {
		c.t.Fatal(err)
	}
	for i := range n {
		dir := c.path("pv", strconv.Itoa(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			c.t.Fatal(err)
		}
		pv := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("local-%d", i)},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
				AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
				StorageClassName:              "local",
				PersistentVolumeSource:        corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: dir}},
				NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
					MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname",
						Operator: corev1.NodeSelectorOpIn, Values: []string{nodeName}}}}}}},
			},
		}
		if _, err := c.cs.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
			c.t.Fatal(err)
		}
	}
}

// resolver looks names up in the cluster's DNS, as the pods do.
func (c *cluster) resolver() *net.Resolver {
	dns := net.JoinHostPort(c.node.Addr.String(), "53")
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, dns)
	}}
}

// helmRun installs the chart with vals and servers, or upgrades the
// release to servers, reusing its values, if it is installed.
func helmRun(t *testing.T, c *cluster, servers int, vals map[string]any) {
	t.Helper()
	flags := genericclioptions.NewConfigFlags(false)
	kubeconfig, ns, cache := c.kubeconfig, namespace, c.path("kube-cache")
	flags.KubeConfig, flags.Namespace, flags.CacheDir = &kubeconfig, &ns, &cache
	cfg := new(action.Configuration)
	if err := cfg.Init(flags, namespace, "secret", t.Logf); err != nil {
		t.Fatal(err)
	}
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	if vals == nil {
		vals = map[string]any{}
	}
	vals["servers"] = servers
	if _, err := action.NewHistory(cfg).Run(release); err != nil {
		install := action.NewInstall(cfg)
		install.ReleaseName, install.Namespace, install.CreateNamespace = release, namespace, true
		_, err = install.Run(ch, vals)
		if err != nil {
			t.Fatalf("helm install: %v", err)
		}
		return
	}
	upgrade := action.NewUpgrade(cfg)
	upgrade.Namespace, upgrade.ReuseValues = namespace, true
	if _, err := upgrade.Run(release, ch, vals); err != nil {
		t.Fatalf("helm upgrade: %v", err)
	}
}

// waitHerd waits until pods 0 to n-1 are ready and each has a link up
// to every neighbour it derives, and to no other server.
func waitHerd(t *testing.T, c *cluster, client *herdtest.Client, n int) {
	t.Helper()
	for i := range n {
		poll(context.Background(), t, fmt.Sprintf("herd-%d ready and linked", i), func() error {
			p, err := c.cs.CoreV1().Pods(namespace).Get(context.Background(), fmt.Sprintf("herd-%d", i), metav1.GetOptions{})
			if err != nil {
				return err
			}
			if !podReady(p) {
				return fmt.Errorf("not ready: %s", podState(p))
			}
			up, err := client.PeersUp(net.JoinHostPort(pod(i), "9100"))
			if err != nil {
				return err
			}
			var linked []string
			for name, u := range up {
				if u {
					linked = append(linked, name)
				}
			}
			slices.Sort(linked)
			if want := neighbours(i, n); !slices.Equal(linked, want) {
				return fmt.Errorf("linked to %v, want %v", linked, want)
			}
			return nil
		})
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podState says why a pod is not ready, for failure messages.
func podState(p *corev1.Pod) string {
	s := string(p.Status.Phase)
	for _, cs := range p.Status.ContainerStatuses {
		switch {
		case cs.State.Waiting != nil:
			s += fmt.Sprintf(", waiting: %s %s", cs.State.Waiting.Reason, cs.State.Waiting.Message)
		case cs.State.Terminated != nil:
			s += fmt.Sprintf(", terminated: %s %s", cs.State.Terminated.Reason, cs.State.Terminated.Message)
		}
		s += fmt.Sprintf(", %d restarts", cs.RestartCount)
	}
	for _, c := range p.Status.Conditions {
		if c.Status != corev1.ConditionTrue && c.Message != "" {
			s += fmt.Sprintf(", %s: %s", c.Type, c.Message)
		}
	}
	return s
}

// checkMutualTLS checks each pod's peer port (peertls.Check): TLS 1.3
// with the chart's certificate, for the pod's DNS name, the herd's
// handshake inside, and a client without a certificate refused.
func checkMutualTLS(t *testing.T, client *herdtest.Client, certs *peertls.Bundle, n int) {
	t.Helper()
	d := &net.Dialer{Timeout: 10 * time.Second, Resolver: client.Resolver}
	for i := range n {
		addr := net.JoinHostPort(pod(i), "12300")
		if err := certs.Check(func() (net.Conn, error) { return d.Dial("tcp", addr) }, pod(i)); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
}

// oneHerd tells each of the n servers about a client of its own, and
// checks that every other answers WHATSAT about it with the AT line.
func oneHerd(t *testing.T, client *herdtest.Client, n int, prefix string) {
	t.Helper()
	start := time.Now()
	for from := range n {
		id := fmt.Sprintf("%s-%d", prefix, from)
		at, err := client.IAMAT(net.JoinHostPort(pod(from), "12200"), id)
		if err != nil {
			t.Fatal(err)
		}
		for to := range n {
			poll(context.Background(), t, fmt.Sprintf("herd-%d's record on herd-%d", from, to), func() error {
				return missing(client, to, map[string]string{id: at})
			})
		}
	}
	t.Logf("an IAMAT at each of the %d servers read at every other (%v for all)", n, since(start))
}

// missing returns an error naming the records of want that server i
// does not answer WHATSAT with.
func missing(client *herdtest.Client, i int, want map[string]string) error {
	ids, err := client.Missing(net.JoinHostPort(pod(i), "12200"), want)
	if err != nil {
		return err
	}
	if len(ids) > 0 {
		slices.Sort(ids)
		return fmt.Errorf("herd-%d lacks %d of %d records, %s among them", i, len(ids), len(want), ids[0])
	}
	return nil
}

// deleteUnderLoad puts the five servers under load, deletes pod victim,
// waits for the StatefulSet to recreate it with the same claim (bound to
// the same volume) and for it to be ready and linked, and checks that
// every IAMAT any server acknowledged is then on all five. It returns
// the acknowledged IAMATs.
func deleteUnderLoad(t *testing.T, c *cluster, client *herdtest.Client, victim int, prefix string) map[string]string {
	t.Helper()
	ctx := context.Background()
	addrs := map[string]string{}
	for i := range 5 {
		addrs[fmt.Sprintf("herd-%d", i)] = net.JoinHostPort(pod(i), "12200")
	}
	load := client.StartLoad(prefix, addrs)
	stopLoad := sync.OnceFunc(load.Stop)
	t.Cleanup(stopLoad)
	name := fmt.Sprintf("herd-%d", victim)
	waitAcks(t, load, slices.Collect(maps.Keys(addrs)), 20)

	before, err := c.cs.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	volume := claimVolume(t, c, "data-"+name)
	start := time.Now()
	if err := c.cs.CoreV1().Pods(namespace).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	pollFor(ctx, t, name+" recreated and ready", 2*time.Minute, func() error {
		p, err := c.cs.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.UID == before.UID || !podReady(p) {
			return fmt.Errorf("not yet: uid %s, %s", p.UID, podState(p))
		}
		return nil
	})
	if v := claimVolume(t, c, "data-"+name); v != volume {
		t.Errorf("claim data-%s is bound to %s, was %s", name, v, volume)
	}
	t.Logf("%s deleted under load, recreated with its claim (volume %s) and ready %v later", name, volume, since(start))
	waitAcks(t, load, []string{name}, 20)
	stopLoad()
	want := load.Acks.Lines()
	start = time.Now()
	for i := range 5 {
		poll(ctx, t, fmt.Sprintf("every acknowledged IAMAT on herd-%d", i), func() error { return missing(client, i, want) })
	}
	var per []string
	for i := range 5 {
		s := fmt.Sprintf("herd-%d", i)
		per = append(per, fmt.Sprintf("%s %d (%d failed)", s, load.Acks.Of(s), load.Failures(s)))
	}
	t.Logf("all %d acknowledged IAMATs on all five servers (%v after the load stopped); by server: %s",
		len(want), since(start), strings.Join(per, ", "))
	return want
}

// claimVolume is the volume claim name is bound to.
func claimVolume(t *testing.T, c *cluster, name string) string {
	t.Helper()
	pvc, err := c.cs.CoreV1().PersistentVolumeClaims(namespace).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pvc.Spec.VolumeName == "" {
		t.Fatalf("claim %s is not bound", name)
	}
	return pvc.Spec.VolumeName
}

// waitAcks waits until each of names has acknowledged n more IAMATs than
// it had when called.
func waitAcks(t *testing.T, load *herdtest.Load, names []string, n int) {
	t.Helper()
	base := map[string]int{}
	for _, name := range names {
		base[name] = load.Acks.Of(name)
	}
	poll(context.Background(), t, fmt.Sprintf("%d IAMATs acknowledged by each of %v", n, names), func() error {
		for _, name := range names {
			if got := load.Acks.Of(name) - base[name]; got < n {
				return fmt.Errorf("%s: %d", name, got)
			}
		}
		return nil
	})
}

// waitRollout waits until the StatefulSet has n replicas, all ready and
// of its latest revision.
func waitRollout(t *testing.T, c *cluster, n int32) {
	t.Helper()
	pollFor(context.Background(), t, "the StatefulSet rolled out", 5*time.Minute, func() error {
		s, err := c.cs.AppsV1().StatefulSets(namespace).Get(context.Background(), release, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !rolledOut(s, n) {
			return fmt.Errorf("status %+v", s.Status)
		}
		return nil
	})
}

func rolledOut(s *appsv1.StatefulSet, n int32) bool {
	st := s.Status
	return st.ObservedGeneration == s.Generation && st.Replicas == n && st.ReadyReplicas == n &&
		st.UpdatedReplicas == n && st.CurrentRevision == st.UpdateRevision
}
