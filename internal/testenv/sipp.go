package testenv

import (
	"encoding/csv"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// SIPpTotals reads the cumulative SuccessfulCall(C) and FailedCall(C)
// columns of the last row of a -trace_stat file.
func SIPpTotals(path string) (ok, failed int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comma = ';'
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		return 0, 0, err
	}
	if len(rows) < 2 {
		return 0, 0, fmt.Errorf("%d rows, want a header and data", len(rows))
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	last := rows[len(rows)-1]
	num := func(name string) (int, error) {
		i, found := col[name]
		if !found || i >= len(last) {
			return 0, fmt.Errorf("no column %s", name)
		}
		return strconv.Atoi(strings.TrimSpace(last[i]))
	}
	if ok, err = num("SuccessfulCall(C)"); err != nil {
		return 0, 0, err
	}
	failed, err = num("FailedCall(C)")
	return ok, failed, err
}
