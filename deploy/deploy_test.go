// Package deploy holds no Go code: its tests check the deployment artefacts
// (Grafana dashboard, Prometheus rules, Kubernetes and compose manifests,
// container config) without a container engine. promtool runs when it is
// installed (Debian package prometheus); with CI set it must be.
package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/handoff/handoff/internal/testenv"
)

var metricName = regexp.MustCompile(`\bhandoff_[a-z0-9_]*[a-z0-9]`)

// documentedMetrics lists the metric names in docs/metrics.md tables.
func documentedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	row := regexp.MustCompile("(?m)^\\| `(handoff_[a-z0-9_]+)` \\|")
	for _, m := range row.FindAllStringSubmatch(string(raw), -1) {
		out[m[1]] = true
	}
	if len(out) < 20 {
		t.Fatalf("only %d metrics found in docs/metrics.md tables", len(out))
	}
	return out
}

// known reports whether name (possibly a histogram's _bucket, _sum or
// _count series) is documented.
func known(doc map[string]bool, name string) bool {
	if doc[name] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && doc[base] {
			return true
		}
	}
	return false
}

// codeMetrics finds the handoff_ metric names registered in the Go source
// (string literals in non-test files).
func codeMetrics(t *testing.T) map[string]string {
	t.Helper()
	lit := regexp.MustCompile(`"(handoff_[a-z0-9_]+)"`)
	out := map[string]string{}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range lit.FindAllSubmatch(raw, -1) {
			out[string(m[1])] = path
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Every metric the code registers is documented, and every documented
// metric exists in the code.
func TestMetricsDocMatchesCode(t *testing.T) {
	doc := documentedMetrics(t)
	code := codeMetrics(t)
	for name, file := range code {
		if !doc[name] {
			t.Errorf("%s (%s) is not in docs/metrics.md: add a row with its type, labels and meaning", name, file)
		}
	}
	for name := range doc {
		if _, ok := code[name]; !ok {
			t.Errorf("docs/metrics.md lists %s, which no Go source registers", name)
		}
	}
	for name := range doc {
		if strings.HasSuffix(name, "_total") || strings.HasSuffix(name, "_seconds") || strings.HasSuffix(name, "_bytes") {
			continue
		}
		// Gauges: a count of things, a 0/1 state, a timestamp.
		switch name {
		case "handoff_sip_calls_active", "handoff_media_sessions_active", "handoff_agent_sessions_active",
			"handoff_sip_invites_pending", "handoff_transfers", "handoff_number_pool_numbers", "handoff_draining", "handoff_store_up",
			"handoff_webhook_events_pending", "handoff_sip_agent_legs_active":
		default:
			t.Errorf("%s: not a known gauge and has no unit suffix (_total, _seconds, _bytes)", name)
		}
	}
}

type dashboard struct {
	SchemaVersion int     `json:"schemaVersion"`
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int                      `json:"id"`
	Type       string                   `json:"type"`
	Title      string                   `json:"title"`
	Datasource json.RawMessage          `json:"datasource"`
	GridPos    struct{ H, W, X, Y int } `json:"gridPos"`
	Targets    []struct {
		Expr       string          `json:"expr"`
		RefID      string          `json:"refId"`
		Datasource json.RawMessage `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("grafana", "handoff.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("handoff.json: %v", err)
	}
	return d
}

// dashboardExprs returns every panel's queries, by panel title.
func dashboardExprs(d dashboard) map[string][]string {
	out := map[string][]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				out[p.Title] = append(out[p.Title], tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

func TestGrafanaDashboard(t *testing.T) {
	d := loadDashboard(t)
	doc := documentedMetrics(t)
	if d.SchemaVersion < 36 || d.UID == "" || d.Title == "" {
		t.Errorf("schemaVersion %d, uid %q, title %q", d.SchemaVersion, d.UID, d.Title)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" {
		t.Errorf("no templated datasource variable: %v", vars)
	}
	ids := map[int]bool{}
	used := map[string]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: bad gridPos %+v", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		if !strings.Contains(string(p.Datasource), "${datasource}") {
			t.Errorf("panel %q: datasource %s is not the ${datasource} variable", p.Title, p.Datasource)
		}
		for _, tg := range p.Targets {
			names := metricName.FindAllString(tg.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: query %q uses no handoff_ metric", p.Title, tg.Expr)
			}
			for _, n := range names {
				used[n] = true
				if !known(doc, n) {
					t.Errorf("panel %q: %s is not in docs/metrics.md", p.Title, n)
				}
			}
		}
	}
	// The panels the operations issue asks for.
	for _, want := range []string{
		"handoff_sip_calls_active", "handoff_sip_invites_total", "handoff_sip_invite_answer_seconds_bucket",
		"handoff_transfers", "handoff_transfers_created_total", "handoff_sip_returns_total",
		"handoff_rtp_packets_lost_total", "handoff_rtp_jitter_seconds_bucket",
		"handoff_agent_uplink_latency_seconds_bucket", "handoff_agent_downlink_latency_seconds_bucket",
		"handoff_number_pool_numbers", "handoff_http_requests_total",
		"handoff_webhook_oldest_event_age_seconds", "handoff_webhook_deliveries_total",
	} {
		if !used[want] {
			t.Errorf("no panel queries %s", want)
		}
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func TestAlertRules(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("prometheus", "rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(raw, &rf); err != nil {
		t.Fatal(err)
	}
	testsRaw, err := os.ReadFile(filepath.Join("prometheus", "rules_test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	doc := documentedMetrics(t)
	alerts := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			alerts[r.Alert] = true
			for _, n := range metricName.FindAllString(r.Expr, -1) {
				if !known(doc, n) {
					t.Errorf("%s: %s is not in docs/metrics.md", r.Alert, n)
				}
			}
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("%s: severity %q", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: summary and description annotations are required", r.Alert)
			}
			if !bytes.Contains(testsRaw, []byte("alertname: "+r.Alert+"\n")) {
				t.Errorf("%s has no test in rules_test.yml", r.Alert)
			}
		}
	}
	for _, want := range []string{"HandoffNumberPoolNearlyExhausted", "HandoffReturnFailuresRising", "HandoffRTPLossHigh",
		"HandoffAgentUnreachable", "HandoffDrainingTooLong", "HandoffSIP5xxRateHigh", "HandoffStoreUnavailable",
		"HandoffWebhookEventsDelayed", "HandoffWebhookEventsNearMaxAge"} {
		if !alerts[want] {
			t.Errorf("no %s alert", want)
		}
	}
}

// promtool checks the rules, runs their unit tests, checks the scrape
// config, and parses every dashboard query (as recording rules).
func TestPromtool(t *testing.T) {
	promtool := testenv.Tool(t, "promtool", "apt-get install -y prometheus")
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(promtool, args...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("check", "rules", filepath.Join("prometheus", "rules.yml"))
	run("test", "rules", filepath.Join("prometheus", "rules_test.yml"))
	run("check", "config", filepath.Join("prometheus", "prometheus.yml"))

	// Grafana's variables replaced by what they expand to.
	expand := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$instance", ".*")
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	exprs := dashboardExprs(loadDashboard(t))
	titles := make([]string, 0, len(exprs))
	for title := range exprs {
		titles = append(titles, title)
	}
	sort.Strings(titles)
	i := 0
	for _, title := range titles {
		for _, e := range exprs[title] {
			i++
			q, _ := json.Marshal(expand.Replace(e)) // a JSON string is a YAML string
			fmt.Fprintf(&b, "      - record: dashboard:panel_%d # %s\n        expr: %s\n", i, title, q)
		}
	}
	path := filepath.Join(t.TempDir(), "dashboard_rules.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run("check", "rules", path)
}

// yamlDocs parses every document of every YAML file under deploy/.
func yamlDocs(t *testing.T) map[string][]map[string]any {
	t.Helper()
	out := map[string][]map[string]any{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		dec := yaml.NewDecoder(f)
		for {
			var doc map[string]any
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if doc != nil {
				out[path] = append(out[path], doc)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// dig walks a decoded YAML tree: string keys for maps, ints for lists.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func seconds(t *testing.T, v any) float64 {
	t.Helper()
	switch x := v.(type) {
	case int:
		return float64(x)
	case string:
		d, err := time.ParseDuration(x)
		if err != nil {
			t.Fatalf("%q: %v", x, err)
		}
		return d.Seconds()
	}
	t.Fatalf("not a duration: %#v", v)
	return 0
}

func TestKubernetesManifests(t *testing.T) {
	docs := yamlDocs(t)
	byKind := map[string]map[string]any{}
	for path, ds := range docs {
		if !strings.HasPrefix(path, "kubernetes"+string(filepath.Separator)) {
			continue
		}
		for _, d := range ds {
			kind, _ := d["kind"].(string)
			if kind == "" || d["apiVersion"] == nil {
				t.Errorf("%s: a document without kind or apiVersion", path)
				continue
			}
			byKind[kind] = d
		}
	}
	for _, kind := range []string{"Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget"} {
		if byKind[kind] == nil {
			t.Fatalf("no %s in deploy/kubernetes", kind)
		}
	}

	var cfg struct {
		HTTP struct {
			Listen string `yaml:"listen"`
		} `yaml:"http"`
		Auth struct {
			Credentials []map[string]any `yaml:"credentials"`
		} `yaml:"auth"`
		Drain struct {
			Delay   string `yaml:"delay"`
			Timeout string `yaml:"timeout"`
		} `yaml:"drain"`
	}
	cfgText, _ := dig(byKind["ConfigMap"], "data", "handoff.yaml").(string)
	if err := yaml.Unmarshal([]byte(cfgText), &cfg); err != nil || cfg.Drain.Timeout == "" {
		t.Fatalf("ConfigMap handoff.yaml: %v (drain.timeout %q)", err, cfg.Drain.Timeout)
	}
	for _, c := range cfg.Auth.Credentials {
		if c["secret"] != nil || c["secret_file"] == nil {
			t.Errorf("ConfigMap credential %v: use secret_file (from the Secret), not secret", c["id"])
		}
	}

	dep := byKind["Deployment"]
	pod := dig(dep, "spec", "template", "spec")
	c := dig(pod, "containers", 0)
	if got := dig(c, "livenessProbe", "httpGet", "path"); got != "/healthz" {
		t.Errorf("livenessProbe path %v, want /healthz", got)
	}
	if got := dig(c, "readinessProbe", "httpGet", "path"); got != "/readyz" {
		t.Errorf("readinessProbe path %v, want /readyz", got)
	}
	ports := map[string]bool{}
	for _, p := range dig(c, "ports").([]any) {
		ports[fmt.Sprintf("%v/%v", dig(p, "containerPort"), dig(p, "protocol"))] = true
	}
	for _, want := range []string{"8080/TCP", "5060/UDP", "5060/TCP"} {
		if !ports[want] {
			t.Errorf("container port %s missing: %v", want, ports)
		}
	}
	if dig(pod, "hostNetwork") != true {
		t.Error("hostNetwork is off: RTP needs the node's ports (or document another way)")
	}

	// Non-root, no privilege.
	if dig(pod, "securityContext", "runAsNonRoot") != true || dig(pod, "securityContext", "runAsUser") != 65532 {
		t.Errorf("pod securityContext %v: want runAsNonRoot and runAsUser 65532", dig(pod, "securityContext"))
	}
	if dig(c, "securityContext", "allowPrivilegeEscalation") != false {
		t.Error("allowPrivilegeEscalation is not false")
	}
	if dig(c, "resources", "requests", "cpu") == nil || dig(c, "resources", "limits", "memory") == nil {
		t.Error("resources: want requests.cpu and limits.memory")
	}

	// The drain fits in the grace period: preStop sleep, then SIGTERM,
	// drain.delay, drain.timeout, HTTP shutdown (5s).
	preStop := seconds(t, dig(c, "lifecycle", "preStop", "sleep", "seconds"))
	delay, timeout := seconds(t, cfg.Drain.Delay), seconds(t, cfg.Drain.Timeout)
	grace := seconds(t, dig(pod, "terminationGracePeriodSeconds"))
	if preStop <= delay {
		t.Errorf("preStop sleep %gs must exceed drain.delay %gs", preStop, delay)
	}
	if grace <= preStop+delay+timeout+5 {
		t.Errorf("terminationGracePeriodSeconds %g must exceed preStop %g + drain.delay %g + drain.timeout %g + 5",
			grace, preStop, delay, timeout)
	}

	// The Service and the PDB select the Deployment's pods.
	labels := dig(dep, "spec", "template", "metadata", "labels").(map[string]any)
	for _, sel := range []any{dig(byKind["Service"], "spec", "selector"), dig(byKind["PodDisruptionBudget"], "spec", "selector", "matchLabels")} {
		for k, v := range sel.(map[string]any) {
			if labels[k] != v {
				t.Errorf("selector %s=%v does not match the pod labels %v", k, v, labels)
			}
		}
	}
	// The Secret holds what the Deployment and the ConfigMap read from it.
	secret := dig(byKind["Secret"], "stringData").(map[string]any)
	if secret["ivr-api-secret"] == nil || secret["redis-url"] == nil {
		t.Errorf("Secret keys %v", secret)
	}
}

func TestComposeAndContainer(t *testing.T) {
	docs := yamlDocs(t)
	compose := docs["compose.yaml"]
	if len(compose) != 1 {
		t.Fatalf("compose.yaml: %d documents", len(compose))
	}
	for _, svc := range []string{"handoff", "prometheus", "grafana"} {
		if dig(compose[0], "services", svc) == nil {
			t.Errorf("compose.yaml has no %s service", svc)
		}
	}
	for _, p := range dig(compose[0], "services", "handoff", "ports").([]any) {
		if !strings.HasPrefix(p.(string), "127.0.0.1:") {
			t.Errorf("compose publishes %v beyond loopback", p)
		}
	}
	// Files the compose stack mounts exist.
	for _, path := range []string{"prometheus/prometheus.yml", "prometheus/rules.yml", "grafana/handoff.json",
		"grafana/provisioning/datasources/prometheus.yaml", "grafana/provisioning/dashboards/handoff.yaml", "handoff.yaml"} {
		if _, err := os.Stat(path); err != nil {
			t.Error(err)
		}
	}

	df, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"FROM golang:1.26 AS build", "CGO_ENABLED=0", "-trimpath", `-ldflags "-s -w"`,
		"distroless/static", "USER 65532", "EXPOSE 8080/tcp 5060/udp 5060/tcp 20000-20999/udp", "COPY deploy/handoff.yaml"} {
		if !bytes.Contains(df, []byte(want)) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}

// The container's default config and the Kubernetes one pass handoff -check.
func TestConfigsPassCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "handoff")
	if out, err := exec.Command(goTool, "build", "-o", bin, "../cmd/handoff").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	check := func(name, cfgText string, env ...string) {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-config", path, "-check")
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: handoff -check: %v\n%s", name, err, out)
		}
	}
	raw, err := os.ReadFile("handoff.yaml")
	if err != nil {
		t.Fatal(err)
	}
	check("container.yaml", string(raw))

	// The ConfigMap's file, with the Secret's mount replaced by a temp file.
	secretFile := filepath.Join(dir, "ivr-api-secret")
	if err := os.WriteFile(secretFile, []byte("test-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var cm map[string]any
	cmRaw, err := os.ReadFile(filepath.Join("kubernetes", "configmap.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(cmRaw, &cm); err != nil {
		t.Fatal(err)
	}
	text := dig(cm, "data", "handoff.yaml").(string)
	text = strings.ReplaceAll(text, "/etc/handoff/secrets/ivr-api-secret", secretFile)
	text = strings.ReplaceAll(text, "/var/lib/handoff/", filepath.Join(dir, "data")+"/")
	check("kubernetes.yaml", text, "HANDOFF_SIP_EXTERNAL_HOST=192.0.2.10", "HANDOFF_NODE_ID=handoff-0")
}
