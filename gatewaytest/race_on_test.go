//go:build race

package ssegate

// raceEnabled: the race detector roughly doubles the memory a test touches.
const raceEnabled = true
