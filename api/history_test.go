package api

import (
	"encoding/json"
	"testing"
	"time"
)

func TestAtJSON(t *testing.T) {
	at := time.Date(2026, 12, 6, 4, 52, 34, 549602606, time.UTC)
	tests := []struct {
		in   string
		want At
		bad  bool
	}{
		{`null`, At{}, false},
		{`""`, At{}, false},
		{`42`, At{Seq: 42}, false},
		{`"42"`, At{Seq: 42}, false},
		{`"2026-12-06T04:52:34.549602606Z"`, At{Time: at}, false},
		{`"2026-12-06T05:52:34.549602606+01:00"`, At{Time: at}, false},
		{`"yesterday"`, At{}, true},
		{`-1`, At{}, true},
		{`{}`, At{}, true},
	}
	for _, tc := range tests {
		var got At
		err := json.Unmarshal([]byte(tc.in), &got)
		if (err != nil) != tc.bad || !tc.bad && (got.Seq != tc.want.Seq || !got.Time.Equal(tc.want.Time)) {
			t.Errorf("%s: %+v, %v; want %+v (error %t)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

// FuzzAt checks that no input makes the decoder panic, and that what it
// accepts names one point: a sequence or a time, not both.
func FuzzAt(f *testing.F) {
	for _, s := range []string{`null`, `42`, `"42"`, `"2026-12-06T04:52:34Z"`, `"x"`, `1e3`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var a At
		if json.Unmarshal([]byte(in), &a) == nil && a.Seq != 0 && !a.Time.IsZero() {
			t.Fatalf("%q decoded to both a sequence and a time: %+v", in, a)
		}
	})
}
