package usage

import "testing"

// observe splits stream and feeds every event to acc, returning the info of
// each event.
func observe(t testing.TB, acc Accumulator, stream string) []EventInfo {
	t.Helper()
	var infos []EventInfo
	s := NewSplitter(0)
	yield := func(ev []byte) error {
		infos = append(infos, acc.Observe(ev))
		return nil
	}
	if err := s.Feed([]byte(stream), yield); err != nil {
		t.Fatal(err)
	}
	if rest, err := s.End(yield); err != nil || len(rest) != 0 {
		t.Fatalf("stream ends with %q (%v)", rest, err)
	}
	return infos
}

func checkUsage(t *testing.T, got, want Usage) {
	t.Helper()
	if got != want {
		t.Errorf("usage\n got  %+v\n want %+v", got, want)
	}
}
