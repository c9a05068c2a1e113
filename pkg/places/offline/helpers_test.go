package offline

import (
	"go.uber.org/goleak"

	"context"
	"testing"
	"time"

	"github.com/herdkit/herd/pkg/places/placestest"
)

var bg = context.Background()

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// embeddedTable returns the embedded tables, loaded once for all tests.
func embeddedTable(t testing.TB) *table {
	t.Helper()
	o := New(placestest.Discard)
	select {
	case <-o.Ready():
	case <-time.After(time.Minute):
		t.Fatal("offline data did not load within a minute")
	}
	if o.data.err != nil {
		t.Fatal(o.data.err)
	}
	return o.data.tab
}
