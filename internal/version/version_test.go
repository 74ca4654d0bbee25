package version

import (
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	clone := []debug.BuildSetting{{Key: "vcs.revision", Value: "af99d1b0123456789abcdef"}, {Key: "vcs.modified", Value: "true"}}
	for _, tt := range []struct {
		name         string
		bi           debug.BuildInfo
		want, commit string
	}{
		{"go run from a clone", debug.BuildInfo{Main: debug.Module{Path: Module, Version: "(devel)"}}, Release, ""},
		{"go build in a clone without tags", debug.BuildInfo{Main: debug.Module{Path: Module, Version: "v0.0.0-20261203093901-af99d1b01234+dirty"}, Settings: clone},
			Release, "commit af99d1b01234, modified"},
		{"go build at a tag", debug.BuildInfo{Main: debug.Module{Path: Module, Version: "v0.2.0"}, Settings: clone[:1]}, "v0.2.0", "commit af99d1b01234"},
		{"xcaddy with a published version", debug.BuildInfo{Main: debug.Module{Path: "caddy"}, Deps: []*debug.Module{{Path: "github.com/x/y", Version: "v1.0.0"}, {Path: Module, Version: "v0.3.1"}}}, "v0.3.1", ""},
		{"xcaddy with a local clone", debug.BuildInfo{Main: debug.Module{Path: "caddy"}, Deps: []*debug.Module{{Path: Module, Version: "v0.0.0-00010101000000-000000000000", Replace: &debug.Module{Path: "/src/ssegate"}}}}, Release, ""},
		{"replaced by a published fork", debug.BuildInfo{Main: debug.Module{Path: "caddy"}, Deps: []*debug.Module{{Path: Module, Version: "v0.3.1", Replace: &debug.Module{Path: "example.com/fork", Version: "v0.3.2"}}}}, "v0.3.2", ""},
		{"not in the build", debug.BuildInfo{Main: debug.Module{Path: "caddy"}}, Release, ""},
	} {
		v, commit := FromBuildInfo(&tt.bi)
		if v != tt.want || commit != tt.commit {
			t.Errorf("%s: got %q, %q; want %q, %q", tt.name, v, commit, tt.want, tt.commit)
		}
	}
}

// TestStringUnderGoTest: a test binary's main module is the package's
// own, with version (devel), so the release stands in.
func TestStringUnderGoTest(t *testing.T) {
	if got := String(); got != Release {
		t.Errorf("String() = %q, want %q", got, Release)
	}
}
