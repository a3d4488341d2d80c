//go:build race

package dlp

// raceOn is true in -race builds, where review tests that sweep many
// positions take a coarser step.
const raceOn = true
