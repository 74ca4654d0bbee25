// Package cli holds what the repository's small commands (cmd/publish and
// cmd/token) share: how they start and fail, their -version flag, and
// their repeatable flags.
package cli

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ssegate/ssegate/internal/version"
)

// Main runs a command with the process's arguments and output, and ends
// the process with the status Status gives.
func Main(name string, run func(args []string, stdout, stderr io.Writer) error) {
	os.Exit(Status(name, run(os.Args[1:], os.Stdout, os.Stderr), os.Stderr))
}

// Status is the exit status of a command that ended with err: 0 for nil;
// else 1, after the error is written to stderr after the command's name,
// as in "token: -sub is required".
func Status(name string, err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	return 1
}

// FlagSet is a command's flag set: parse errors are returned rather than
// fatal, the usage goes to stderr, and it has the -version flag whose
// value it returns.
func FlagSet(name string, stderr io.Writer) (*flag.FlagSet, *bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs, fs.Bool("version", false, "print the version and exit")
}

// PrintVersion writes what -version prints: the command's name and the
// ssegate version it was built from.
func PrintVersion(stdout io.Writer, name string) error {
	_, err := fmt.Fprintf(stdout, "%s: ssegate %s\n", name, version.Full())
	return err
}

// List is a repeatable flag: each use adds a value. When Check is set, it
// refuses the values it returns an error for.
type List struct {
	Values []string
	Check  func(string) error
}

func (l *List) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(l.Values, ",")
}

// Set adds v, unless Check refuses it.
func (l *List) Set(v string) error {
	if l.Check != nil {
		if err := l.Check(v); err != nil {
			return err
		}
	}
	l.Values = append(l.Values, v)
	return nil
}
