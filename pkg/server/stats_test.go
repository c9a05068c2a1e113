package server

import (
	"testing"

	"github.com/herdkit/herd/pkg/metrics"
	"github.com/herdkit/herd/pkg/protocol"
)

// TestStatsCoverEveryCommand: the per-request statistics come from the
// protocol's command table, so every command, present and future, has
// its counters and its label, and a command with places its places_error.
func TestStatsCoverEveryCommand(t *testing.T) {
	s := newStats(metrics.New())
	for _, c := range protocol.Commands() {
		if commandLabel(c.Kind) != c.Word {
			t.Errorf("%s is labelled %q", c.Word, commandLabel(c.Kind))
		}
		if s.durations[c.Kind] == nil || s.requests[c.Kind][outcomeOK] == nil || s.requests[c.Kind][outcomeInvalid] == nil {
			t.Errorf("%s has no counters", c.Word)
		}
		if places := s.requests[c.Kind][outcomePlacesError] != nil; places != (c.Reply == protocol.PlacesReply) {
			t.Errorf("%s: a places_error counter is %v, its reply form %v", c.Word, places, c.Reply)
		}
	}
	if commandLabel(protocol.Invalid) != "other" || s.requests[protocol.Invalid][outcomeInvalid] == nil {
		t.Error("lines that name no command are not counted as other")
	}
}
