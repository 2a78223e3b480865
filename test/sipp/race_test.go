//go:build race

package sipp_test

const raceEnabled = true
