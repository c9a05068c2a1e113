// Package testutil holds the helpers that Herd's tests share, written
// once: Eventually polls a condition until a deadline (serf's
// testutil/retry), Logger and LogWriter send logs to t.Log, Buffer is a
// bytes.Buffer safe for concurrent writers, Gather and Scrape read metrics
// from a registry or a /metrics URL, FreeLoopbackAddrs and FreePortBase
// find free ports, ReadReplies reads the replies to lines sent, Apply
// stores a record as a node does (the store exports no single-record
// Apply of its own), and Tmpfs mounts a small file system that can fill
// up.
//
// It is for tests only: non-test code must not import it.
package testutil
