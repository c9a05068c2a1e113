package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Exit statuses of Run.
const (
	// ExitOK means the run went through without an error.
	ExitOK = 0
	// ExitErrors means the run went through but counted errors.
	ExitErrors = 1
	// ExitFailure means a usage error, or a run that could not be done.
	ExitFailure = 2
)

const usage = `usage: herd bench MODE [flags]

Modes:
  load         load a herd with IAMAT and WHATSAT and measure it
  propagation  measure how long a record takes to reach every server
  floor        serve a floor server: answers at once, does nothing else

Run herd bench MODE -h for the flags of a mode.
`

// Run runs `herd bench` with args, the arguments after the subcommand, and
// returns the exit status.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return ExitFailure
	}
	switch args[0] {
	case "load":
		return runLoad(ctx, args[1:], stdout, stderr)
	case "propagation":
		return runPropagation(ctx, args[1:], stdout, stderr)
	case "floor":
		return runFloor(ctx, args[1:], stdin, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return ExitOK
	}
	fmt.Fprintf(stderr, "herd bench: unknown mode %q\n\n%s", args[0], usage)
	return ExitFailure
}

// parse parses args with fs and returns the exit status to stop with, or
// -1 to go on.
func parse(fs *flag.FlagSet, args []string, stderr io.Writer, title string) int {
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: herd bench %s\n\nFlags:\n", title)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitFailure
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "herd bench: unexpected argument %q\n", fs.Arg(0))
		return ExitFailure
	}
	return -1
}

func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func splitList(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

func writeJSON(w io.Writer, v any) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(v)
}

func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("herd bench load", flag.ContinueOnError)
	var cfg LoadConfig
	addrs := fs.String("addr", DefaultAddr, "server `address`, or a comma-separated list to spread the connections over")
	fs.IntVar(&cfg.Conns, "c", DefaultConns, "connections")
	fs.DurationVar(&cfg.Duration, "d", DefaultDuration, "measured duration (after the warm-up)")
	fs.Int64Var(&cfg.N, "n", 0, "measured requests in all, instead of -d (warm-up requests come on top)")
	fs.IntVar(&cfg.Pipeline, "pipeline", DefaultPipeline, "closed loop: requests outstanding per connection")
	fs.Float64Var(&cfg.Rate, "rate", 0, "open loop: requests per second over all connections, latency measured from the scheduled send time")
	fs.Float64Var(&cfg.Mix, "mix", 0, "fraction of WHATSAT requests, asking about client ids this run has sent")
	fs.StringVar(&cfg.Radius, "radius", DefaultRadius, "WHATSAT radius in km")
	fs.IntVar(&cfg.Bound, "bound", DefaultBound, "WHATSAT bound on results")
	fs.IntVar(&cfg.Clients, "clients", DefaultClients, "distinct client ids")
	fs.StringVar(&cfg.Prefix, "prefix", "", "client id prefix (default: random for each run)")
	fs.DurationVar(&cfg.Warmup, "warmup", 0, "time at the start left out of the results")
	fs.DurationVar(&cfg.Timeout, "timeout", DefaultTimeout, "dial time-out, and how long a connection waits for a reply it is owed")
	fs.StringVar(&cfg.Protocol, "protocol", ProtocolHerd, "wire protocol: herd (IAMAT, WHATSAT), or resp to measure Redis the same way (GEOADD, GEOPOS on the key "+RESPKey+")")
	asJSON := fs.Bool("json", false, "write the summary as JSON (LoadReport)")
	floor := fs.Bool("floor", false, "run the same load against a floor server in a child process first, and report the ratio")
	rounds := fs.Int("rounds", 1, "with -floor: alternate floor and target runs this many times and report the median round")
	if st := parse(fs, args, stderr, "load [flags]"); st >= 0 {
		return st
	}
	if isSet(fs, "pipeline") && isSet(fs, "rate") {
		fmt.Fprintln(stderr, "herd bench load: -pipeline (closed loop) and -rate (open loop) exclude each other")
		return ExitFailure
	}
	if *rounds < 1 || isSet(fs, "rounds") && !*floor {
		fmt.Fprintln(stderr, "herd bench load: -rounds takes a count of at least 1, with -floor")
		return ExitFailure
	}
	if *floor && cfg.Protocol != ProtocolHerd {
		fmt.Fprintln(stderr, "herd bench load: -floor speaks the herd's protocol only")
		return ExitFailure
	}
	if isSet(fs, "n") && !isSet(fs, "d") {
		cfg.Duration = 0
	}
	cfg.Addrs = splitList(*addrs)
	if cfg.Prefix == "" {
		cfg.Prefix = randomPrefix()
	}
	if err := cfg.withDefaults().Validate(); err != nil {
		fmt.Fprintf(stderr, "herd bench load: %v\n", err)
		return ExitFailure
	}
	cfg.Progress = progressTo(stderr)

	var rep *LoadReport
	var err error
	if *floor {
		rep, err = CompareWithFloor(ctx, cfg, StartFloorProcess, *rounds)
	} else {
		var s *LoadSummary
		if s, err = Load(ctx, cfg); err == nil {
			rep = &LoadReport{Mode: "load", Target: s}
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "herd bench load: %v\n", err)
		return ExitFailure
	}
	if *asJSON {
		err = writeJSON(stdout, rep)
	} else {
		rep.print(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "herd bench load: %v\n", err)
		return ExitFailure
	}
	if rep.Target.Errors.Total > 0 || rep.Floor != nil && rep.Floor.Errors.Total > 0 {
		return ExitErrors
	}
	return ExitOK
}

func runPropagation(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("herd bench propagation", flag.ContinueOnError)
	var cfg PropagationConfig
	addrs := fs.String("addrs", DefaultHerd, "comma-separated client `addresses` of the herd's servers")
	from := fs.String("from", "0", "index in -addrs, or address, of the server that receives the IAMATs")
	fs.IntVar(&cfg.N, "n", DefaultSamples, "samples")
	fs.DurationVar(&cfg.Interval, "interval", DefaultInterval, "pause between samples")
	fs.StringVar(&cfg.Radius, "radius", DefaultRadius, "radius of the WHATSAT queries, in km")
	fs.DurationVar(&cfg.Timeout, "timeout", DefaultTimeout, "dial and reply time-out, and the time every server has to learn a sample")
	fs.StringVar(&cfg.Prefix, "prefix", "", "client id prefix (default: random for each run)")
	fs.Float64Var(&cfg.LoadRate, "load-rate", 0, "background open-loop IAMAT load, requests per second, while sampling")
	fs.IntVar(&cfg.LoadConns, "load-c", DefaultLoadConns, "connections of the background load")
	fs.StringVar(&cfg.Since, "since", "", "where delays count from: the origin's `receipt` of the IAMAT, read from its AT reply (the servers must share this machine's clock; the default with -protocol herd), or its send (the default with -protocol resp)")
	fs.StringVar(&cfg.Protocol, "protocol", ProtocolHerd, "wire protocol: herd, or resp to measure Redis (a GEOADD at the primary, GEOPOS polls at its replicas)")
	asJSON := fs.Bool("json", false, "write the summary as JSON (PropagationReport)")
	if st := parse(fs, args, stderr, "propagation [flags]"); st >= 0 {
		return st
	}
	cfg.Addrs = splitList(*addrs)
	if i, err := strconv.Atoi(*from); err == nil {
		cfg.From = i
	} else if cfg.From = slices.Index(cfg.Addrs, *from); cfg.From < 0 {
		fmt.Fprintf(stderr, "herd bench propagation: -from %q is neither an index nor one of -addrs\n", *from)
		return ExitFailure
	}
	if err := cfg.withDefaults().Validate(); err != nil {
		fmt.Fprintf(stderr, "herd bench propagation: %v\n", err)
		return ExitFailure
	}
	cfg.Progress = progressTo(stderr)
	rep, err := Propagation(ctx, cfg)
	if err == nil {
		if *asJSON {
			err = writeJSON(stdout, rep)
		} else {
			rep.print(stdout)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "herd bench propagation: %v\n", err)
		return ExitFailure
	}
	if rep.Errors.Total > 0 || rep.Load != nil && rep.Load.Errors.Total > 0 {
		return ExitErrors
	}
	return ExitOK
}

func runFloor(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("herd bench floor", flag.ContinueOnError)
	addr := fs.String("addr", DefaultFloorAddr, "`address` to listen on; port 0 picks one")
	name := fs.String("name", DefaultFloorName, "server name in AT lines")
	stdinEOF := fs.Bool("stdin-eof", false, "also stop at the end of standard input (how a parent process stops its child)")
	if st := parse(fs, args, stderr, "floor [flags]"); st >= 0 {
		return st
	}
	s, err := ListenFloor(*addr)
	if err != nil {
		fmt.Fprintf(stderr, "herd bench floor: %v\n", err)
		return ExitFailure
	}
	s.Name = *name
	// The address alone on the first line of stdout, for a parent.
	fmt.Fprintln(stdout, s.Addr())
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	eof := make(chan struct{})
	if *stdinEOF && stdin != nil {
		go func() {
			_, _ = io.Copy(io.Discard, stdin)
			close(eof)
		}()
	}
	start := time.Now()
	select {
	case <-ctx.Done():
	case <-eof:
	case err = <-served:
	}
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	c := s.Counts()
	fmt.Fprintf(stderr, "herd bench floor: answered %d lines (%d IAMAT, %d WHATSAT, %d invalid) in %v\n",
		c.Lines(), c.IAMAT, c.WHATSAT, c.Invalid, time.Since(start).Round(time.Millisecond))
	if err != nil {
		fmt.Fprintf(stderr, "herd bench floor: %v\n", err)
		return ExitFailure
	}
	return ExitOK
}
