//go:build race

package e2e

// raceEnabled says whether the tests run with the race detector; the
// gateway binary they start is then built with it too.
const raceEnabled = true
