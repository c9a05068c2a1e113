// Package swarm holds the tests of the Docker Swarm stack in stack.yaml,
// and of stack.tls.yaml on top of it (mutual TLS on the peer links
// instead of the encrypted overlay): that `docker stack config` reads
// both as deployed, an end-to-end test that deploys stack.yaml on a
// single-node swarm of the local engine, and, with HERD_TEST_ENGINES=1 as
// root, one on a swarm of three engines in network namespaces of their
// own (TestStackOnEngines).
package swarm
