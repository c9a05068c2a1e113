package testutil

import (
	"io"
	"strings"
	"testing"

	"github.com/herdkit/herd/pkg/protocol"
)

func TestReadReplies(t *testing.T) {
	const (
		at   = "AT Hill +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503"
		json = "{\n   \"results\" : [ {\n      \"name\" : \"x\"\n   } ],\n   \"status\" : \"OK\"\n}"
	)
	transcript := at + "\n" + at + "\n" + json + "\n\n? x\n"
	rs, err := ReadReplies(strings.NewReader(transcript), "IAMAT k +1+1 1", " ", "WHATSAT k 1 1", "x")
	if err != nil || len(rs) != 3 || rs[0].Kind != protocol.ReplyAT || string(rs[1].JSON) != json || rs[2].Kind != protocol.ReplyInvalid {
		t.Fatalf("%d replies %v: %+v", len(rs), err, rs)
	}
	if rs, err := ReadReplies(strings.NewReader(at+"\n"), "IAMAT k +1+1 1", "IAMAT k +1+1 2"); err != io.EOF || len(rs) != 1 {
		t.Fatalf("a reply missing: %d replies, %v", len(rs), err)
	}
}
