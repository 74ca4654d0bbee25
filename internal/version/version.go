// Package version says which ssegate a binary holds. The release number is
// set here, in one place; a binary built from a published module version
// reports that version instead, as Go's build info records it.
package version

import (
	"runtime/debug"
	"strings"
)

// Release is the version of this source tree. It changes here, and only
// here, when a release is cut, together with its section in CHANGELOG.md.
const Release = "v0.1.0"

// Module is ssegate's Go module path.
const Module = "github.com/ssegate/ssegate"

// String is the running binary's ssegate version.
func String() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Release
	}
	v, _ := FromBuildInfo(bi)
	return v
}

// Full is String with the commit and whether the tree was modified, when
// the build recorded them (a go build inside a clone does).
func Full() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Release
	}
	v, commit := FromBuildInfo(bi)
	if commit != "" {
		v += " (" + commit + ")"
	}
	return v
}

// FromBuildInfo finds ssegate in bi, as the main module (a build from a
// clone, such as cmd/caddy) or as a dependency (xcaddy). It takes the
// module's version when that is a published one; "(devel)", the
// v0.0.0-<time>-<commit> that Go stamps on a clone without tags, and the
// v0.0.0-00010101000000-000000000000 that xcaddy requires for a local
// replace say nothing about the release, so Release stands in for them.
// commit is "commit <12 hex>[, modified]" when the build recorded it.
func FromBuildInfo(bi *debug.BuildInfo) (v, commit string) {
	m := findModule(bi)
	v = Release
	switch {
	case m == nil:
	case m.Replace != nil && published(m.Replace.Version):
		v = m.Replace.Version
	case m.Replace == nil && published(m.Version):
		v = m.Version
	}
	if m == &bi.Main {
		commit = vcsCommit(bi.Settings)
	}
	return v, commit
}

func findModule(bi *debug.BuildInfo) *debug.Module {
	if bi.Main.Path == Module {
		return &bi.Main
	}
	for _, d := range bi.Deps {
		if d.Path == Module {
			return d
		}
	}
	return nil
}

func published(v string) bool {
	return strings.HasPrefix(v, "v") && !strings.HasPrefix(v, "v0.0.0-") && v != "v0.0.0"
}

func vcsCommit(settings []debug.BuildSetting) string {
	var rev, modified string
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return ""
	}
	commit := "commit " + rev[:min(12, len(rev))]
	if modified == "true" {
		commit += ", modified"
	}
	return commit
}
