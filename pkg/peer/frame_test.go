package peer

import (
	"bytes"
	"testing"

	"github.com/herdkit/herd/pkg/store"
)

func TestParseFrame(t *testing.T) {
	tests := []struct {
		name string
		line string
		ok   bool
		kind byte
		seq  uint64
	}{
		{"flood", "F 12 1 Hill 1621464828223371889 kiwi +34.068930-118.445127 1621464827.959498503", true, frameFlood, 12},
		{"reconcile", "C 1 255 Smith 0 k +1-1 1", true, frameReconcile, 1},
		{"mark", "M 99", true, frameMark, 99},
		{"mark zero", "M 0", true, frameMark, 0},
		{"synced", "D 18446744073709551615", true, frameSynced, 18446744073709551615},
		{"ping", "P", true, framePing, 0},
		{"sync", "S 7b4f06e1ab4 12", true, frameSync, 12},
		{"empty", "", false, 0, 0},
		{"unknown kind", "Z 1", false, 0, 0},
		{"announce", "I 7 Hill 1621464828223371889 kiwi 1621464827.959498503", true, frameAnnounce, 7},
		{"announce seq zero", "I 0 Hill 1 kiwi 1", false, 0, 0},
		{"announce bad time", "I 7 Hill 1 kiwi 1x", false, 0, 0},
		{"announce bad origin", "I 7 H!ll 1 kiwi 1", false, 0, 0},
		{"announce missing time", "I 7 Hill 1 kiwi", false, 0, 0},
		{"announce extra field", "I 7 Hill 1 kiwi 1 2", false, 0, 0},
		{"prune", "X Hill", true, framePrune, 0},
		{"prune bad origin", "X Hi ll", false, 0, 0},
		{"graft", "G Hill kiwi", true, frameGraft, 0},
		{"graft no client", "G Hill", false, 0, 0},
		{"graft two clients", "G Hill kiwi kiwi", false, 0, 0},
		{"repair", "R 2 Hill 1 kiwi +1+1 1", true, frameRepair, 0},
		{"repair with a seq", "R 9 2 Hill 1 kiwi +1+1 1", false, 0, 0},
		{"none", "N kiwi", true, frameNone, 0},
		{"none empty", "N ", false, 0, 0},
		{"no space", "M1", false, 0, 0},
		{"timed ping", "P 1621464828223371889", true, framePing, 0},
		{"pong", "Q 1 2 3", true, framePong, 0},
		{"ping with two stamps", "P 1 2", false, 0, 0},
		{"ping with a word", "P x", false, 0, 0},
		{"ping with a trailing space", "P 1 ", false, 0, 0},
		{"pong with two stamps", "Q 1 2", false, 0, 0},
		{"pong with four stamps", "Q 1 2 3 4", false, 0, 0},
		{"pong stamp past 2^62", "Q 1 2 4611686018427387905", false, 0, 0},
		{"bare pong", "Q", false, 0, 0},
		{"seq overflow", "M 18446744073709551616", false, 0, 0},
		{"seq leading zero", "M 01", false, 0, 0},
		{"seq negative", "M -1", false, 0, 0},
		{"record seq zero", "F 0 1 Hill 1 k +1+1 1", false, 0, 0},
		{"hops over 255", "F 1 256 Hill 1 k +1+1 1", false, 0, 0},
		{"bad origin", "F 1 1 Hi!ll 1 k +1+1 1", false, 0, 0},
		{"bad position", "F 1 1 Hill 1 k +91+1 1", false, 0, 0},
		{"bad time", "F 1 1 Hill 1 k +1+1 x", false, 0, 0},
		{"missing field", "F 1 1 Hill 1 k +1+1", false, 0, 0},
		{"extra field", "F 1 1 Hill 1 k +1+1 1 extra", false, 0, 0},
		{"double space", "F 1 1 Hill 1 k  +1+1 1", false, 0, 0},
		{"tab in client", "F 1 1 Hill 1 k\tx +1+1 1", false, 0, 0},
		{"sync bad incarnation", "S xyz 1", false, 0, 0},
		{"sync one field", "S 1", false, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := parseFrame([]byte(tt.line))
			if (err == nil) != tt.ok {
				t.Fatalf("parseFrame(%q) error %v, want ok %v", tt.line, err, tt.ok)
			}
			if tt.ok && (f.kind != tt.kind || f.seq != tt.seq) {
				t.Errorf("parseFrame(%q) = kind %c seq %d", tt.line, f.kind, f.seq)
			}
		})
	}
}

func TestRecordFrameRoundTrip(t *testing.T) {
	r := store.Record{Text: "kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503", Origin: "Hill", Recv: 1621464828223371889, Hops: 1}
	line := appendRecord(nil, frameFlood, 42, store.Pack(r))
	if line[len(line)-1] != '\n' {
		t.Fatal("no newline")
	}
	f, err := parseFrame(line[:len(line)-1])
	if err != nil {
		t.Fatal(err)
	}
	if f.seq != 42 || f.hops != 2 || string(f.origin) != "Hill" || f.recv != r.Recv || string(f.text) != r.Text {
		t.Errorf("round trip gave %+v", f)
	}
	s, err := parseFrame(bytes.TrimSuffix(appendSync(nil, 0x7b4f06e1ab4, 9), []byte("\n")))
	if err != nil || s.inc != 0x7b4f06e1ab4 || s.seq != 9 {
		t.Errorf("sync round trip gave %+v, %v", s, err)
	}
}

func TestParseFrameNeverAllocates(t *testing.T) {
	line := []byte("F 12 1 Hill 1621464828223371889 kiwi +34.068930-118.445127 1621464827.959498503")
	if n := testing.AllocsPerRun(100, func() { parseFrame(line) }); n != 0 {
		t.Errorf("parseFrame allocates %v times", n)
	}
}

// FuzzParseFrame feeds arbitrary frames: parsing must never panic, and a
// record frame that parses must re-encode to the same bytes.
func FuzzParseFrame(f *testing.F) {
	for _, s := range []string{
		"F 12 1 Hill 1621464828223371889 kiwi +34.068930-118.445127 1621464827.959498503",
		"C 1 255 Smith 0 k +1-1 1", "M 99", "D 0", "P", "S 7b4f06e1ab4 12", "F 1 1 Hill 1 k +1+1",
		"I 7 Hill 16 kiwi 1.5", "X Hill", "G Hill kiwi", "R 2 Hill 1 kiwi +1+1 1", "N kiwi",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		fr, err := parseFrame(line)
		if err != nil {
			return
		}
		var got []byte
		switch fr.kind {
		case frameFlood, frameReconcile, frameRepair:
			if fr.hops == 0 {
				return // a record is never sent with no hops
			}
			r := store.Record{Text: string(fr.text), Origin: string(fr.origin), Recv: fr.recv, Hops: fr.hops - 1}
			if got = appendRecord(nil, fr.kind, fr.seq, store.Pack(r)); fr.kind == frameRepair {
				got = appendRepair(nil, store.Pack(r))
			}
		case frameAnnounce:
			text := string(fr.client) + " +0+0 " + string(fr.time)
			got = appendAnnounce(nil, fr.seq, store.Pack(store.Record{Text: text, Origin: string(fr.origin), Recv: fr.recv}))
		case framePrune:
			got = appendControl(nil, framePrune, string(fr.origin))
		case frameGraft:
			got = appendControl(nil, frameGraft, string(fr.origin), string(fr.client))
		case frameNone:
			got = appendControl(nil, frameNone, string(fr.client))
		default:
			return
		}
		if !bytes.Equal(got[:len(got)-1], line) {
			t.Fatalf("%q re-encodes as %q", line, got)
		}
	})
}

func FuzzParseHello(f *testing.F) {
	f.Add("HERD 1 HELLO Hill 7b4f06e1ab4 0123456789abcdef0123456789abcdef", false)
	f.Add("HERD 1 HELLO Hill 1 0123456789abcdef0123456789abcdef 00ff", true)
	f.Add("ERR bad_secret", true)
	f.Add("", false)
	f.Fuzz(func(t *testing.T, line string, withProof bool) {
		h, err := parseHello(line, withProof)
		if err == nil && (h.name == "" || len(h.nonce) != 32) {
			t.Fatalf("accepted %q as %+v", line, h)
		}
	})
}
