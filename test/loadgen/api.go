package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// apiClient creates transfers and reads metrics of a running handoff.
type apiClient struct {
	base, id, secret string
	http             *http.Client
}

func newAPI(base string) *apiClient {
	a := &apiClient{base: strings.TrimRight(base, "/"), id: "dev", secret: "dev-secret",
		http: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	if v := os.Getenv("HANDOFF_API_ID"); v != "" {
		a.id = v
	}
	if v := os.Getenv("HANDOFF_API_SECRET"); v != "" {
		a.secret = v
	}
	return a
}

// create makes one transfer and returns what a call dials: the transfer id
// (SIP) or the leased number (PHONE_NUMBER). A 429 or 503 is retried.
func (a *apiClient) create(id, typ string) (string, error) {
	body, _ := json.Marshal(map[string]any{"id": id, "externalConversationId": "conv-" + id, "type": typ,
		"phoneNumber": map[string]string{"country": "US"}})
	for range 10 {
		req, _ := http.NewRequest(http.MethodPost, a.base+"/generativeagent/v1/call-transfers", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("asapp-api-id", a.id)
		req.Header.Set("asapp-api-secret", a.secret)
		res, err := a.http.Do(req)
		if err != nil {
			return "", err
		}
		var out struct {
			PhoneNumber struct{ TransferNumber string } `json:"phoneNumber"`
		}
		err = json.NewDecoder(res.Body).Decode(&out)
		res.Body.Close()
		switch {
		case res.StatusCode == http.StatusTooManyRequests || res.StatusCode == http.StatusServiceUnavailable:
			time.Sleep(time.Second)
			continue
		case res.StatusCode != http.StatusOK || err != nil:
			return "", fmt.Errorf("create %s: status %d (%v)", id, res.StatusCode, err)
		case typ == "PHONE_NUMBER":
			return out.PhoneNumber.TransferNumber, nil
		}
		return id, nil
	}
	return "", fmt.Errorf("create %s: still refused after 10 tries", id)
}

// createMany makes n transfers named prefix-1..n with workers in parallel
// and returns what their calls dial, in order.
func (a *apiClient) createMany(prefix, typ string, n, workers int) ([]string, error) {
	out := make([]string, n)
	errs := make(chan error, workers)
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				v, err := a.create(fmt.Sprintf("%s-%d", prefix, i+1), typ)
				if err != nil {
					errs <- err
					return
				}
				out[i] = v
			}
		})
	}
	go func() {
		defer close(next)
		for i := range n {
			select {
			case next <- i:
			case err := <-errs:
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
		return out, nil
	}
}

// metrics reads the named series (exact, labels included) from /metrics;
// a series absent reads 0.
func (a *apiClient) metrics(series ...string) (map[string]float64, error) {
	res, err := a.http.Get(a.base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	want := map[string]bool{}
	for _, s := range series {
		want[s] = true
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if ok && want[name] {
			out[name], _ = strconv.ParseFloat(value, 64)
		}
	}
	return out, sc.Err()
}
