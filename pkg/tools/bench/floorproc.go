package bench

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// FloorStarter starts a floor server and returns its address and a
// function that stops it.
type FloorStarter func(ctx context.Context) (addr string, stop func() error, err error)

// floorStartTimeout bounds the wait for a child floor server's address.
const floorStartTimeout = 10 * time.Second

// StartFloorProcess starts the floor server as a child process of the same
// binary, `herd bench floor -addr 127.0.0.1:0 -stdin-eof`, so that it does
// not share the load generator's process, and reads the address it prints.
// The child exits when its standard input ends: when stop closes it, or
// when this process dies.
func StartFloorProcess(ctx context.Context) (string, func() error, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", nil, fmt.Errorf("floor server: %w", err)
	}
	return startFloorCommand(ctx, exe, "bench", "floor", "-addr", "127.0.0.1:0", "-stdin-eof")
}

func startFloorCommand(ctx context.Context, name string, args ...string) (string, func() error, error) {
	cmd := exec.Command(name, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	// exec copies the child's standard error into stderr on a goroutine of
	// its own, which Wait waits for; stderr is read only after Wait (the
	// exited channel), so it needs no lock.
	stderr := &bytes.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("floor server: %w", err)
	}
	exited := make(chan error, 1)
	stop := func() error {
		stdin.Close()
		t := time.NewTimer(floorStartTimeout)
		defer t.Stop()
		select {
		case err := <-exited:
			return err
		case <-t.C:
			_ = cmd.Process.Kill()
			return fmt.Errorf("floor server did not exit; killed: %v", <-exited)
		}
	}
	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		line, _ := r.ReadString('\n')
		lines <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, r)
		exited <- cmd.Wait()
	}()
	t := time.NewTimer(floorStartTimeout)
	defer t.Stop()
	select {
	case addr := <-lines:
		if addr != "" {
			return addr, stop, nil
		}
		err = errors.New("it printed no address")
	case <-t.C:
		err = fmt.Errorf("no address within %v", floorStartTimeout)
	case <-ctx.Done():
		err = ctx.Err()
	}
	_ = cmd.Process.Kill()
	<-exited
	if s := strings.TrimSpace(stderr.String()); s != "" {
		err = fmt.Errorf("%w: %s", err, s)
	}
	return "", nil, fmt.Errorf("floor server %s: %w", name, err)
}

// CompareWithFloor runs the load of cfg against a floor server that start
// starts and then against cfg.Addrs, rounds times in alternation, and
// reports the round whose rate ratio is the median, with every round's
// rates. On a shared machine the rate available drifts from one run to
// the next; alternating short rounds and taking the median keeps that
// drift out of the ratio. Every connection of a floor run goes to the one
// floor server.
func CompareWithFloor(ctx context.Context, cfg LoadConfig, start FloorStarter, rounds int) (rep *LoadReport, err error) {
	if rounds < 1 {
		return nil, fmt.Errorf("%d rounds: want at least 1", rounds)
	}
	addr, stop, err := start(ctx)
	if err != nil {
		return nil, err
	}
	defer func() {
		if serr := stop(); err == nil && serr != nil {
			rep, err = nil, fmt.Errorf("floor server: %w", serr)
		}
	}()
	fcfg := cfg
	fcfg.Addrs = []string{addr}
	var runs []*LoadReport
	var all []Round
	for range rounds {
		floor, err := Load(ctx, fcfg)
		if err != nil {
			return nil, err
		}
		target, err := Load(ctx, cfg)
		if err != nil {
			return nil, err
		}
		r := &LoadReport{Mode: "load", Target: target, Floor: floor, Ratio: ratioOf(target, floor)}
		runs = append(runs, r)
		all = append(all, Round{Floor: floor.Rate, Target: target.Rate, Ratio: r.Ratio.Rate})
	}
	slices.SortStableFunc(runs, func(a, b *LoadReport) int { return cmp.Compare(a.Ratio.Rate, b.Ratio.Rate) })
	rep = runs[(len(runs)-1)/2]
	if rounds > 1 {
		rep.Rounds = all
	}
	return rep, nil
}
