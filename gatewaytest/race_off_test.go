//go:build !race

package ssegate

const raceEnabled = false
