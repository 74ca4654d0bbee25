package ssegate

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ssegate/ssegate/auth"
)

// TestRefusalSeriesExistFromTheStart: the console's not_found, like the
// other codes of refusals before a stream, has a series from the start,
// so that a rate() over it has a zero to begin from.
func TestRefusalSeriesExistFromTheStart(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newMetrics().refusals)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				have[l.GetValue()] = true
			}
		}
	}
	for _, code := range []string{auth.CodeNotFound, auth.CodeMethodNotAllowed, auth.CodeInvalidChannel, auth.CodeTooManyChannels} {
		if !have[code] {
			t.Errorf("no refusals series for %q", code)
		}
	}
}
