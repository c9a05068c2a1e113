// Package helm holds the tests of the herd Helm chart in ./herd: they
// render it with Helm's Go library, as `helm template` does, decode every
// object strictly into the Kubernetes API types, and check what the
// servers depend on; with KUBEBUILDER_ASSETS set, one applies it to a real
// API server with the StatefulSet controller running, and another, as
// root, installs it on a single-node cluster with a kubelet and runs the
// herd in it (TestChartOnKubelet).
package helm
