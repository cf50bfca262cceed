// Command stand-in-engine stands in for an LLM inference server in the e2e node scenarios: it
// serves, on the engine's default port, a Prometheus text page with the metric names that the
// real engine exports and that the chart's recording rules and dashboard query (the names in
// tests/dashboards/check.py's synthetic data, taken from vLLM V1 and SGLang). It runs no model.
//
// It is installed in its image as /usr/local/bin/vllm and /usr/local/bin/python3, and chooses the
// engine by how it was called, like the real command lines the webhook recognises:
//
//	vllm serve MODEL [--port 8000]                                    vLLM (default port 8000)
//	python3 -m sglang.launch_server --model-path MODEL [--port 30000] SGLang (default port 30000)
//
// Counters grow with time at a steady rate (a healthy engine: no request fails, no 5xx), gauges
// are constant. GET /health answers 200.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func arg(args []string, name, def string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if strings.HasPrefix(a, name+"=") {
			return strings.TrimPrefix(a, name+"=")
		}
	}
	return def
}

type page struct {
	b     strings.Builder
	since float64
	typed map[string]bool
}

func (p *page) typ(name, kind string) {
	if !p.typed[name] {
		p.typed[name] = true
		fmt.Fprintf(&p.b, "# TYPE %s %s\n", name, kind)
	}
}

func (p *page) gauge(name, labels string, v float64) {
	p.typ(name, "gauge")
	fmt.Fprintf(&p.b, "%s{%s} %g\n", name, labels, v)
}

func (p *page) counter(name, labels string, perSecond float64) {
	p.typ(strings.TrimSuffix(name, "_total"), "counter")
	fmt.Fprintf(&p.b, "%s{%s} %g\n", name, labels, perSecond*p.since)
}

// histogram: perSecond observations, bucket bounds with the fraction of observations at or below.
func (p *page) histogram(name, labels string, perSecond float64, les []string, fracs []float64) {
	p.typ(name, "histogram")
	n := perSecond * p.since
	for i, le := range les {
		fmt.Fprintf(&p.b, "%s_bucket{%s,le=%q} %g\n", name, labels, le, n*fracs[i])
	}
	fmt.Fprintf(&p.b, "%s_bucket{%s,le=\"+Inf\"} %g\n", name, labels, n)
	fmt.Fprintf(&p.b, "%s_sum{%s} %g\n", name, labels, n*0.4)
	fmt.Fprintf(&p.b, "%s_count{%s} %g\n", name, labels, n)
}

var latency = []string{"0.1", "0.5", "1", "5"}
var latencyFrac = []float64{0.2, 0.6, 0.9, 0.99}
var token = []string{"0.01", "0.05", "0.1"}
var tokenFrac = []float64{0.3, 0.9, 0.99}

func vllm(p *page, model string) {
	l := fmt.Sprintf("model_name=%q,engine=\"0\"", model)
	p.counter("vllm:request_success_total", l+`,finished_reason="stop"`, 2)
	p.counter("vllm:request_success_total", l+`,finished_reason="length"`, 0.5)
	// vLLM's HTTP layer (prometheus-fastapi-instrumentator): only the statuses it has answered.
	p.counter("http_requests_total", `handler="/v1/chat/completions",method="POST",status="2xx"`, 2.5)
	p.gauge("vllm:num_requests_running", l, 3)
	p.gauge("vllm:num_requests_waiting", l, 1)
	p.gauge("vllm:kv_cache_usage_perc", l, 0.42)
	p.counter("vllm:prompt_tokens_total", l, 800)
	p.counter("vllm:generation_tokens_total", l, 300)
	p.counter("vllm:num_preemptions_total", l, 0.01)
	p.counter("vllm:prefix_cache_queries_total", l, 800)
	p.counter("vllm:prefix_cache_hits_total", l, 200)
	p.histogram("vllm:time_to_first_token_seconds", l, 2.5, latency, latencyFrac)
	p.histogram("vllm:inter_token_latency_seconds", l, 300, token, tokenFrac)
	p.histogram("vllm:time_per_output_token_seconds", l, 300, token, tokenFrac)
	p.histogram("vllm:e2e_request_latency_seconds", l, 2.5, []string{"1", "10", "60"}, []float64{0.1, 0.9, 0.99})
}

func sglang(p *page, model string) {
	l := fmt.Sprintf("model_name=%q", model)
	s := l + `,tp_rank="0"`
	p.counter("sglang:num_requests_total", l, 3)
	p.counter("sglang:num_aborted_requests_total", l, 0)
	p.gauge("sglang:num_running_reqs", s, 12)
	p.gauge("sglang:num_queue_reqs", s, 3)
	p.gauge("sglang:token_usage", s, 0.55)
	p.gauge("sglang:cache_hit_rate", s, 0.5)
	p.counter("sglang:num_retracted_requests_total", s, 0.01)
	p.counter("sglang:prompt_tokens_total", l, 1500)
	p.counter("sglang:generation_tokens_total", l, 600)
	p.histogram("sglang:time_to_first_token_seconds", l, 3, []string{"0.2", "1", "4"}, []float64{0.3, 0.8, 0.99})
	p.histogram("sglang:inter_token_latency_seconds", l, 600, []string{"0.01", "0.04"}, []float64{0.4, 0.95})
	p.histogram("sglang:e2e_request_latency_seconds", l, 3, []string{"2", "20"}, []float64{0.3, 0.97})
}

func main() {
	args := os.Args[1:]
	engine, model, port := "", "", ""
	switch filepath.Base(os.Args[0]) {
	case "vllm":
		if len(args) < 2 || args[0] != "serve" {
			log.Fatal("usage: vllm serve MODEL [--port N]")
		}
		engine, model, port = "vllm", args[1], arg(args, "--port", "8000")
	default:
		if arg(args, "-m", "") != "sglang.launch_server" {
			log.Fatal("usage: vllm serve MODEL | python3 -m sglang.launch_server --model-path MODEL")
		}
		engine, model, port = "sglang", arg(args, "--model-path", "model"), arg(args, "--port", "30000")
	}
	start := time.Now()
	http.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	http.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		p := &page{since: time.Since(start).Seconds() + 1, typed: map[string]bool{}}
		if engine == "vllm" {
			vllm(p, model)
		} else {
			sglang(p, model)
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprint(w, p.b.String())
	})
	log.Printf("stand-in %s engine for %s on :%s (no model is loaded)", engine, model, port)
	log.Fatal(http.ListenAndServe(":"+port, nil))
}
