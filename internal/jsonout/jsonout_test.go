package jsonout

import (
	"strings"
	"testing"
)

func TestEncodeKeepsTextAsText(t *testing.T) {
	var b strings.Builder
	if err := Encode(&b, map[string]string{"detail": `channel "a.>" & <b>`}); err != nil {
		t.Fatal(err)
	}
	if got, want := b.String(), `{"detail":"channel \"a.>\" & <b>"}`+"\n"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
