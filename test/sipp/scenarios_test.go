package sipp_test

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestRunLinesNameTheirScenario: the run line in a scenario's comment is
// copied by whoever tries it by hand, so it must name that scenario.
func TestRunLinesNameTheirScenario(t *testing.T) {
	files, err := filepath.Glob("*.xml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios found: %v", err)
	}
	runLine := regexp.MustCompile(`sipp -sf (\S+)`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range runLine.FindAllSubmatch(b, -1) {
			if string(m[1]) != f {
				t.Errorf("%s: its run line runs %s", f, m[1])
			}
		}
	}
}
