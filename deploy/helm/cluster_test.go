//go:build linux

package helm

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herdkit/herd/deploy/internal/netlab"
	"github.com/herdkit/herd/deploy/internal/ociarchive"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// The single-node cluster's network: the node's address on its lab, its
// pods' subnet behind it (the CNI bridge), and the Services' range, which
// nothing routes (there is no kube-proxy: the test reaches pods by their
// own addresses, found through the cluster's DNS).
var (
	nodeSubnet    = netip.MustParsePrefix("10.215.0.0/24")
	podSubnet     = netip.MustParsePrefix("10.216.0.0/24")
	serviceSubnet = netip.MustParsePrefix("10.217.0.0/24")
)

// nodeName is the cluster's node, as the kubelet registers it.
const nodeName = "herd-node"

// nodeBins are the binaries the node needs besides the control plane's;
// build-k8s-test-bins builds them all into one directory.
var nodeBins = []string{"kube-scheduler", "kubelet", "containerd", "containerd-shim-runc-v2", "ctr", "coredns",
	"cni/bridge", "cni/host-local", "cni/loopback"}

// process is one program of the cluster, running on the node, with its
// log in a file.
type process struct {
	name, log string
	cmd       *exec.Cmd
	exited    chan error
}

// stop sends SIGTERM and waits for the process to exit, killing it after
// 20 seconds.
func (p *process) stop() error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("%s did not stop within 20 s of SIGTERM", p.name)
	}
}

// logTail is the end of the process's log.
func (p *process) logTail(lines int) string {
	b, _ := os.ReadFile(p.log)
	return tail(string(b), lines)
}

// cluster is a single-node Kubernetes cluster in one network namespace
// (a netlab host): etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, CoreDNS, containerd with its CRI plugin and the CNI
// bridge, and a kubelet. Its files, data included, are in dir.
type cluster struct {
	t          *testing.T
	bins, dir  string
	id         string // of the test run, in the names of what it makes
	node       *netlab.Host
	procs      []*process
	kubeconfig string
	cfg        *rest.Config
	cs         *kubernetes.Clientset
}

// path is a file of the cluster's.
func (c *cluster) path(parts ...string) string {
	return filepath.Join(append([]string{c.dir}, parts...)...)
}

// apiServer is the API server's address.
func (c *cluster) apiServer() string {
	return "https://" + net.JoinHostPort(c.node.Addr.String(), "6443")
}

// cgroup is the kubelet's cgroup root, which holds every pod's.
func (c *cluster) cgroup() string { return netlab.Prefix + c.id + "-kubelet" }

// start runs bins/name with args on the node until the test ends.
func (c *cluster) start(name string, args ...string) *process {
	c.t.Helper()
	log := c.path("logs", filepath.Base(name)+".log")
	f, err := os.Create(log)
	if err != nil {
		c.t.Fatal(err)
	}
	defer f.Close()
	cmd := c.node.Command(filepath.Join(c.bins, name), args...)
	// containerd finds its shim, and the CNI plugins theirs, on PATH.
	cmd.Env = append(os.Environ(), "PATH="+c.bins+":"+os.Getenv("PATH"))
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	p := &process{name: name, log: log, cmd: cmd, exited: make(chan error, 1)}
	go func() { p.exited <- cmd.Wait() }()
	c.procs = append(c.procs, p)
	return p
}

// waitFor polls cond until it returns nil, failing the test after
// timeout with cond's last error and the end of p's log, or at once if p
// exits.
func (c *cluster) waitFor(p *process, what string, timeout time.Duration, cond func() error) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		select {
		case exit := <-p.exited:
			p.exited <- exit
			c.t.Fatalf("%s: %s exited (%v):\n%s", what, p.name, exit, p.logTail(40))
		default:
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: not within %v: %v\n%s's log:\n%s", what, timeout, err, p.name, p.logTail(40))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stopAll stops the cluster's processes, last started first, kills the
// pods (in the kubelet's cgroup) while their shims are there to reap
// them, then what is left in the node's namespace, and undoes the mounts
// in dir.
func (c *cluster) stopAll() error {
	var errs []error
	for i := len(c.procs) - 1; i >= 0; i-- {
		errs = append(errs, c.procs[i].stop())
	}
	errs = append(errs, netlab.RemoveCgroup(c.cgroup()), c.node.Down(), netlab.Unmount(c.dir))
	return errors.Join(errs...)
}

// newCluster starts the cluster with the binaries in bins, and stops and
// removes it when t ends.
func newCluster(t *testing.T, bins, id string) *cluster {
	lab, err := netlab.New(id, nodeSubnet)
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, bins: bins, dir: lab.Dir, id: id, node: lab.Host(0)}
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range c.procs {
				t.Logf("%s's log, last lines:\n%s", p.name, p.logTail(15))
			}
		}
		err := errors.Join(c.stopAll(), lab.Close())
		if err != nil {
			t.Errorf("removing the cluster: %v", err)
		}
	})
	for _, d := range []string{"logs", "pki", "etcd", "containerd", "cni/net.d", "kubelet", "pod-logs", "volume-plugins", "pv"} {
		if err := os.MkdirAll(c.path(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.node.Up(); err != nil {
		t.Fatal(err)
	}
	// The kubelet writes /var/lib/kubelet/device-plugins and
	// /var/log/containers whatever its options, the CNI's library
	// /var/lib/cni, containerd its shims' sockets in /run/containerd: in
	// the node, those are the cluster's directories.
	binds := map[string]string{}
	for _, d := range []string{"/var/lib", "/var/log", "/run"} {
		binds[d] = c.path("host", strings.ReplaceAll(strings.Trim(d, "/"), "/", "-"))
		if err := os.MkdirAll(binds[d], 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.node.Isolate(binds); err != nil {
		t.Fatal(err)
	}
	if err := c.node.Route(podSubnet); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.writePKI()
	c.startControlPlane()
	t.Logf("etcd, kube-apiserver, kube-controller-manager, kube-scheduler and CoreDNS up in %v", since(start))
	start = time.Now()
	c.startContainerd()
	c.startKubelet()
	t.Logf("containerd and the kubelet up, node %s ready, in %v", nodeName, since(start))
	return c
}

func since(t time.Time) time.Duration { return time.Since(t).Round(100 * time.Millisecond) }

// writeFile writes a file of the cluster's, failing the test on an error.
func (c *cluster) writeFile(name, content string) string {
	c.t.Helper()
	path := c.path(name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return path
}

// writePKI writes the cluster's CA, the API server's certificate, the
// service accounts' signing key, the admin token every component uses
// (in system:masters), and a kubeconfig with it.
func (c *cluster) writePKI() {
	c.t.Helper()
	caKey, caCert := newCert(c.t, "herd-test-ca", nil, nil, nil)
	key, cert := newCert(c.t, "kube-apiserver",
		[]string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		[]net.IP{net.IP(c.node.Addr.AsSlice()), net.IP(serviceSubnet.Addr().Next().AsSlice())},
		&signer{caCert, caKey})
	saKey, _ := newCert(c.t, "service-accounts", nil, nil, nil)
	c.writeFile("pki/ca.crt", pemCert(caCert))
	c.writeFile("pki/apiserver.crt", pemCert(cert))
	c.writeFile("pki/apiserver.key", pemKey(c.t, key))
	c.writeFile("pki/sa.key", pemKey(c.t, saKey))
	pub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		c.t.Fatal(err)
	}
	c.writeFile("pki/sa.pub", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})))
	token := randomToken(c.t)
	c.writeFile("pki/tokens.csv", token+",herd-test-admin,herd-test-admin,system:masters\n")
	c.kubeconfig = c.writeFile("kubeconfig", fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: herd
  cluster: {server: %q, certificate-authority: %q}
users:
- name: admin
  user: {token: %q}
contexts:
- name: herd
  context: {cluster: herd, user: admin}
current-context: herd
`, c.apiServer(), c.path("pki/ca.crt"), token))
	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		c.t.Fatal(err)
	}
	c.cfg = cfg
	if c.cs, err = kubernetes.NewForConfig(cfg); err != nil {
		c.t.Fatal(err)
	}
}

// startControlPlane starts etcd (on the node's loopback), the API server
// (on the node's address), the controllers the chart needs, the scheduler
// and CoreDNS, and waits for the API server.
func (c *cluster) startControlPlane() {
	c.t.Helper()
	c.start("etcd", "--name=node", "--data-dir="+c.path("etcd"),
		"--listen-client-urls=http://127.0.0.1:2379", "--advertise-client-urls=http://127.0.0.1:2379",
		"--listen-peer-urls=http://127.0.0.1:2380", "--initial-advertise-peer-urls=http://127.0.0.1:2380",
		"--initial-cluster=node=http://127.0.0.1:2380", "--unsafe-no-fsync", "--log-level=warn")
	api := c.start("kube-apiserver", "--etcd-servers=http://127.0.0.1:2379",
		"--bind-address="+c.node.Addr.String(), "--advertise-address="+c.node.Addr.String(), "--secure-port=6443",
		"--tls-cert-file="+c.path("pki/apiserver.crt"), "--tls-private-key-file="+c.path("pki/apiserver.key"),
		"--client-ca-file="+c.path("pki/ca.crt"), "--token-auth-file="+c.path("pki/tokens.csv"),
		"--authorization-mode=Node,RBAC", "--service-cluster-ip-range="+serviceSubnet.String(),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+c.path("pki/sa.pub"), "--service-account-signing-key-file="+c.path("pki/sa.key"),
		"--kubelet-preferred-address-types=InternalIP", "--profiling=false", "--v=1")
	c.waitFor(api, "the API server ready", 2*time.Minute, func() error {
		_, err := c.cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(context.Background())
		return err
	})
	c.start("kube-controller-manager", "--kubeconfig="+c.kubeconfig, "--leader-elect=false", "--secure-port=0",
		"--controllers=statefulset-controller,disruption-controller,endpoints-controller,endpointslice-controller,"+
			"persistentvolume-binder-controller,persistentvolume-protection-controller,persistentvolumeclaim-protection-controller,"+
			"persistentvolume-attach-detach-controller,serviceaccount-controller,namespace-controller,"+
			"garbage-collector-controller,pod-garbage-collector-controller,"+
			// It takes the taint node.kubernetes.io/not-ready off the node.
			"node-lifecycle-controller",
		"--service-account-private-key-file="+c.path("pki/sa.key"), "--root-ca-file="+c.path("pki/ca.crt"),
		"--flex-volume-plugin-dir="+c.path("volume-plugins"),
		"--use-service-account-credentials=false", "--v=1")
	c.start("kube-scheduler", "--kubeconfig="+c.kubeconfig, "--leader-elect=false",
		"--bind-address=127.0.0.1", "--secure-port=10259", "--v=1")
	// Cluster DNS for the pods, on the node's address: the headless
	// Service's names, from the API server's EndpointSlices.
	c.start("coredns", "-conf", c.writeFile("Corefile", fmt.Sprintf(`cluster.local:53 {
    bind %s
    errors
    kubernetes cluster.local {
        kubeconfig %s herd
        ttl 1
    }
}
`, c.node.Addr, c.kubeconfig)))
}

// containerdConfig is the node's containerd: its own root, state and
// socket, the CRI plugin with the pause image built here, Debian's runc,
// the CNI plugins built here, and its pods' network namespaces under its
// state directory.
const containerdConfig = `version = 3
root = '{{dir}}/containerd/root'
state = '{{dir}}/containerd/state'
imports = []
disabled_plugins = ['io.containerd.nri.v1.nri', 'io.containerd.snapshotter.v1.zfs',
  'io.containerd.snapshotter.v1.devmapper', 'io.containerd.snapshotter.v1.blockfile', 'io.containerd.snapshotter.v1.erofs']
[grpc]
  address = '{{dir}}/containerd/containerd.sock'
[ttrpc]
  address = '{{dir}}/containerd/containerd.sock.ttrpc'
[plugins]
  [plugins.'io.containerd.internal.v1.opt']
    path = '{{dir}}/containerd/opt'
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = '{{pause}}'
  [plugins.'io.containerd.cri.v1.runtime']
    netns_mounts_under_state_dir = true
    # The kubelet gives a pod's sandbox an OOM score of -998; lowering a
    # score needs CAP_SYS_RESOURCE, which root lacks on this project's
    # machines (runc: "failed to update /proc/self/oom_score_adj:
    # Permission denied"). Scores below containerd's own are raised to it.
    restrict_oom_score_adj = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = '{{runc}}'
        SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['{{bins}}/cni']
      conf_dir = '{{dir}}/cni/net.d'
`

// cniConfig is the pods' network: a bridge on the node with an address
// of podSubnet for each pod, and the route to everything through it.
const cniConfig = `{"cniVersion": "1.0.0", "name": "herd-test", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "{{subnet}}"}]], "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": "{{dir}}/cni/ipam"}},
  {"type": "loopback"}]}
`

// pauseImage is the sandbox image, built by buildPause.
const pauseImage = "herd.local/pause:1"

// startContainerd writes containerd's and the CNI's configuration,
// starts containerd and imports the pause image.
func (c *cluster) startContainerd() {
	c.t.Helper()
	runc, err := exec.LookPath("runc")
	if err != nil {
		c.t.Fatalf("runc (Debian's, a dependency of docker.io): %v", err)
	}
	r := strings.NewReplacer("{{dir}}", c.dir, "{{bins}}", c.bins, "{{runc}}", runc, "{{pause}}", pauseImage,
		"{{subnet}}", podSubnet.String())
	c.writeFile("containerd/config.toml", r.Replace(containerdConfig))
	c.writeFile("cni/net.d/10-herd.conflist", r.Replace(cniConfig))
	ctrd := c.start("containerd", "--config", c.path("containerd/config.toml"))
	c.waitFor(ctrd, "containerd answering", time.Minute, func() error {
		_, err := c.ctr("version")
		return err
	})
	var archive bytes.Buffer
	if err := ociarchive.Write(&archive, pauseImage, "pause", buildPause(c.t)); err != nil {
		c.t.Fatal(err)
	}
	c.importImage(c.writeFile("pause.tar", archive.String()))
}

// ctr runs containerd's client in the namespace the CRI plugin uses.
func (c *cluster) ctr(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(c.bins, "ctr"), append([]string{"--address", c.path("containerd/containerd.sock"), "--namespace", "k8s.io"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ctr %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// importImage imports an image archive (OCI or docker save's) for the
// kubelet's pods.
func (c *cluster) importImage(archive string) {
	c.t.Helper()
	if _, err := c.ctr("images", "import", archive); err != nil {
		c.t.Fatal(err)
	}
}

// buildPause builds the pause command static and returns it.
func buildPause(t *testing.T) []byte {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pause")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "../internal/pause")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building pause: %v\n%s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// kubeletConfig is the kubelet's configuration: cgroup v1 allowed (this
// machine's kernel has no other), cgroupfs under a cgroup root of the
// test's, everything it writes under the cluster's directory, the API on
// the node's address only, cluster DNS on the node, and evictions only
// when the machine is nearly full.
const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /{{cgroup}}
containerRuntimeEndpoint: unix://{{dir}}/containerd/containerd.sock
address: {{node}}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
clusterDNS: [{{node}}]
clusterDomain: cluster.local
resolvConf: {{dir}}/resolv.conf
podLogsDir: {{dir}}/pod-logs
volumePluginDir: {{dir}}/volume-plugins
failSwapOn: false
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
`

// startKubelet starts the kubelet and waits for its node to be ready.
func (c *cluster) startKubelet() {
	c.t.Helper()
	if err := netlab.MakeCgroup(c.cgroup()); err != nil {
		c.t.Fatal(err)
	}
	c.writeFile("resolv.conf", "")
	r := strings.NewReplacer("{{dir}}", c.dir, "{{cgroup}}", c.cgroup(), "{{node}}", c.node.Addr.String())
	kubelet := c.start("kubelet", "--config="+c.writeFile("kubelet.yaml", r.Replace(kubeletConfig)),
		"--kubeconfig="+c.kubeconfig, "--root-dir="+c.path("kubelet"), "--cert-dir="+c.path("kubelet", "pki"),
		"--hostname-override="+nodeName, "--node-ip="+c.node.Addr.String(), "--v=1")
	c.waitFor(kubelet, "node "+nodeName+" ready and untainted", 2*time.Minute, func() error {
		n, err := c.cs.CoreV1().Nodes().Get(context.Background(), nodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(n.Spec.Taints) > 0 {
			return fmt.Errorf("taints %v", n.Spec.Taints)
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("conditions %v", n.Status.Conditions)
	})
}

// signer is a certificate and key that sign others.
type signer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// newCert makes a key and a certificate for it, for a server with the
// names and addresses given, signed by by, or a CA of its own if by is
// nil.
func newCert(t *testing.T, cn string, names []string, ips []net.IP, by *signer) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     names, IPAddresses: ips,
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  by == nil,
	}
	parent, signKey := tmpl, k
	if by != nil {
		parent, signKey = by.cert, by.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &k.PublicKey, signKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return k, cert
}

func pemCert(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

func pemKey(t *testing.T, k *ecdsa.PrivateKey) string {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func randomToken(t *testing.T) string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", b)
}
