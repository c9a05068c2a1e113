// Package swarm holds the tests of the Docker Swarm stack in stack.yaml:
// that `docker stack config` accepts it as deployed, and an end-to-end
// test that deploys it on a single-node swarm of the local engine.
package swarm
