// Package bench is the herd's load generator and measurer, `herd bench`,
// in the manner of wrk and ghz.
//
//	herd bench load [flags]         load a herd and measure it
//	herd bench propagation [flags]  measure how fast records spread
//	herd bench floor [flags]        serve the floor server
//
// Every mode reports counts, errors, a rate and latency percentiles (p50,
// p90, p99, p99.9, max) from HDR histograms of microsecond resolution and
// three significant figures; a human summary goes to standard output, or
// with -json a JSON summary (LoadReport, PropagationReport) whose field
// names are stable. When standard error is a terminal a progress line on it
// is updated every second. Run returns 0 for a run without errors, 1 for a
// run that counted errors, 2 for a usage error or a run that could not be
// done.
//
// # load
//
// Connections (-c, default 50) go to -addr, or in turn to each of a
// comma-separated list. A run lasts -d (default 10 s) or until -n measured
// requests have been sent, after a -warmup whose requests are counted
// apart (Warmup) and not measured; with -n and -warmup the warm-up's
// requests come on top of the -n.
//
// The closed loop (-pipeline, default 1) keeps that many requests
// outstanding on each connection: it writes all that are missing in one
// write, reads what has arrived, and starts over; latency runs from the
// write to the read that completed the reply. The open loop (-rate) sends
// on one constant-rate schedule shared by all connections, request k of
// connection i being due at (i + k·c)/rate seconds, with latency measured
// from the due time, not the send time: a server that stalls the sender
// cannot hide the wait (the coordinated-omission correction). The two
// exclude each other.
//
// Requests are IAMAT, or with -mix a fraction of WHATSAT -radius -bound
// about a client id that the same connection has sent, so the server knows
// it. Client ids are -prefix (random by default, so that runs do not
// collide) and a number below -clients. Replies are read and checked by
// the protocol's reader (protocol.ReplyReader): an IAMAT gets
// one line starting "AT ", a WHATSAT an AT line, then a JSON object that
// starts with '{', may span lines (the herd's does) and ends with '}', then
// an empty line; "? " replies count as invalid; any other reply is
// malformed and ends its connection, as the framing is lost. Latency is
// recorded for valid replies only. When a run ends, sending stops and the
// replies owed are awaited (at most -timeout without news); requests still
// unanswered then count as errors. Sent and received are reported for IAMAT
// and WHATSAT apart, and TotalSent counts every line the server was sent,
// to compare with its metrics.
//
// Each connection is one goroutine (two in the open loop) that owns its
// buffers, counters and histogram; they are merged when the run ends, so
// nothing is locked per request, and replies are parsed in place without
// allocating.
//
// With -floor, the same load runs first against a floor server in a child
// process (this binary, `bench floor -addr 127.0.0.1:0 -stdin-eof`), then
// against -addr, and the report adds the ratio target/floor. -rounds N
// alternates the two runs N times and reports the round with the median
// ratio, and every round's rates: on a shared machine the capacity drifts
// between runs, and a single pair of runs can be off by a third.
//
// # propagation
//
// For each of -n samples, an IAMAT for a fresh client id goes to the -from
// server and, once it has answered, every other server of -addrs is asked
// WHATSAT id radius 0 on a connection of its own, again as soon as each
// answer comes back, until it knows the id or -timeout has passed. All
// samples are at one position, so a server that caches places answers the
// polls from its cache. A server's delay runs from the origin's receipt
// of the IAMAT to the bench's receipt of the first reply that knew the id:
// an upper bound, by at most one poll round trip, which the report gives
// per server. The origin's receipt is the client time the bench sent plus
// the time difference of the origin's AT reply, so it is exact when the
// servers share the bench's clock (the same machine, containers included);
// a receipt outside its IAMAT's round trip means they do not, and fails
// the run. With -since send, delays run from the IAMAT's sending instead,
// and so include its trip to the origin. The whole herd's delay is the
// largest of a sample's. -load-rate adds an open-loop IAMAT load, with ids
// of its own, against all of -addrs during the samples.
//
// # floor
//
// The floor server (FloorServer) answers every line at once and does
// nothing else, with the herd's framing, so that results can be quoted as
// a fraction of what the machine can do at all.
//
// # JSON summaries
//
// load -json writes a LoadReport:
//
//	{"mode": "load",
//	 "target": LoadSummary, "floor": LoadSummary (with -floor), "ratio": Ratio (with -floor),
//	 "rounds": [{floor, target, ratio}] (with -floor -rounds above 1)}
//
//	LoadSummary: target, connections, pipeline (closed loop) or target_rate
//	  (open loop), mix, seconds, sent, received, rate,
//	  iamat {sent, received, invalid}, whatsat {...}, warmup {...},
//	  errors {total, invalid, malformed, unanswered, connections},
//	  latency {count, min_us, mean_us, p50_us, p90_us, p99_us, p999_us, max_us},
//	  total_sent, total_received
//	Ratio: rate, p50, p90, p99, p999, max (target divided by floor)
//
// propagation -json writes a PropagationReport:
//
//	{"mode": "propagation", "origin", "since", "samples", "complete",
//	 "errors": {total, rejected, missed, connections},
//	 "iamat": latency, "servers": [{addr, known, missed, polls, latency, poll}],
//	 "herd": latency, "load": LoadSummary (with -load-rate)}
package bench
