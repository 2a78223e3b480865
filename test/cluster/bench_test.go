package cluster_test

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/handoff/handoff/internal/redistest"
)

// BenchmarkCallSetup measures call set-up latency (INVITE sent to 200 OK
// received, SIPp's response time) of one handoff node on the embedded store
// and on Redis: calls PHONE_NUMBER transfers (number lookup, claim, answer
// in the store) at a steady rate, straight to the node, and reports the
// latency's p50/p90/p99. One iteration is the whole run; use -benchtime 1x.
//
//	go test -run '^$' -bench BenchmarkCallSetup -benchtime 1x ./test/cluster/
func BenchmarkCallSetup(b *testing.B) {
	for _, kind := range []string{"bolt", "redis"} {
		b.Run(kind, func(b *testing.B) {
			redistest.Require(b, "redis-server", "sipp")
			const calls, rate = 300, 30
			for range b.N {
				c := &cluster{dir: b.TempDir()}
				url := ""
				if kind == "redis" {
					c.redis = redistest.Start(b)
					url = c.redis.URL()
				}
				n := startNode(b, c.dir, "node-"+kind, url, 42000)
				c.nodes = []*node{n, n}
				c.sipProxy = n.sipPort
				_, users, _ := c.createMany(b, "setup", calls)
				run := c.startSIPp(b, "setup", users, rate, 200*time.Millisecond, 60*time.Second, "-trace_rtt", "-rtt_freq", "1")
				if ok, failed := run.wait(b); ok != calls || failed != 0 {
					run.report(b)
					b.Fatalf("%d ok, %d failed", ok, failed)
				}
				lat, err := sippRTT(run.dir)
				if err != nil {
					b.Fatal(err)
				}
				p := func(q float64) float64 { return lat[int(q*float64(len(lat)-1))] }
				b.ReportMetric(p(0.5), "p50-ms")
				b.ReportMetric(p(0.9), "p90-ms")
				b.ReportMetric(p(0.99), "p99-ms")
				n.stop()
			}
		})
	}
}

// sippRTT reads the response times (ms) of SIPp's -trace_rtt file in dir, sorted.
func sippRTT(dir string) ([]float64, error) {
	files, _ := filepath.Glob(filepath.Join(dir, "*_rtt.csv"))
	if len(files) != 1 {
		return nil, fmt.Errorf("want one *_rtt.csv in %s, found %v", dir, files)
	}
	f, err := os.Open(files[0])
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comma = ';'
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		return nil, err
	}
	var out []float64
	for _, row := range rows[1:] {
		if len(row) < 2 {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(row[1]), 64); err == nil {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no response times in %s", files[0])
	}
	slices.Sort(out)
	return out, nil
}
