// Package swarm holds the tests of the Docker Swarm stack in stack.yaml:
// that `docker stack config` accepts it as deployed, an end-to-end test
// that deploys it on a single-node swarm of the local engine, and, with
// HERD_TEST_ENGINES=1 as root, one on a swarm of three engines in network
// namespaces of their own (TestStackOnEngines).
package swarm
