package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// Tool returns the path of program (a third-party binary a test runs), or
// ends t without it: install says how to get it.
func Tool(t testing.TB, program, install string) string {
	t.Helper()
	p, err := exec.LookPath(program)
	if err != nil {
		Missing(t, program, install, err)
	}
	return p
}

// Missing ends t for lack of what (a tool, or a module of one), with err
// (nil: none) saying why: a skip, or a failure when CI is set, since CI
// installs everything the tests use (.ci/run).
func Missing(t testing.TB, what, install string, err error) {
	t.Helper()
	msg := fmt.Sprintf("%s not found (%s)", what, install)
	if err != nil {
		msg += ": " + err.Error()
	}
	if os.Getenv("CI") != "" {
		t.Fatal(msg + "; CI is set, so this is a failure, not a skip (.ci/run installs it)")
	}
	t.Skip(msg)
}
