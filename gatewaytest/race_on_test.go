//go:build race

package gatewaytest

// raceEnabled: the race detector roughly doubles the memory a test touches.
const raceEnabled = true
