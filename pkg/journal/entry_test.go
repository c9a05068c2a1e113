package journal

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/herdkit/herd/pkg/store"
)

// TestRecordEntryFormat: a record entry is written as it was before
// records were packed (the record's text as a string field), so that data
// directories written before read back, and the other way round; and it
// decodes to the record, whether its fields pack or not.
func TestRecordEntryFormat(t *testing.T) {
	tests := []struct {
		name string
		r    store.Record
	}{
		{"packed", store.Record{Text: "kiwi.cs.ucla.edu +34.068930-118.445127 1621464827.959498503", Origin: "Hill", Recv: 1621464828223371889, Hops: 2}},
		{"eight decimals and leading zeros, as text", store.Record{Text: "k +34.06893012-118.4 01621464827.9594985031", Origin: "Jaquez", Recv: -5}},
		{"the shortest", store.Record{Text: "k +0+0 0", Origin: "H", Recv: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := appendRecord(nil, 42, store.Pack(tt.r))
			// The encoding as it was written before: text as a string.
			want := appendEntry(nil, func(b []byte) []byte {
				b = append(b, entryRecord)
				b = binary.AppendUvarint(b, 42)
				b = binary.AppendVarint(b, tt.r.Recv)
				b = append(b, tt.r.Hops)
				b = appendString(b, tt.r.Origin)
				return appendString(b, tt.r.Text)
			})
			if !bytes.Equal(got, want) {
				t.Fatalf("entry %q, want %q", got, want)
			}
			e, err := decode(got[headerSize:])
			if err != nil || e.kind != entryRecord || e.seq != 42 || e.record() != tt.r {
				t.Errorf("decoded %+v (%v), want %+v", e.record(), err, tt.r)
			}
		})
	}
}
