#!/usr/bin/env python3
"""Checks of the dashboards and rules (called by tests/dashboards/run; prints `ok   NAME` or
`FAIL NAME` per check, exits 1 when any failed).

  check.py sync                 write the deploy/dashboards/ copies from the chart's files/, and
                                docs/dashboard-layout.svg from the dashboard's gridPos
  check.py static HELM          copies identical, chart renders, PodMonitor <-> rules, lint rules
  check.py synth OUT NOW        synthetic OpenMetrics (every engine generation, DCGM) ending at NOW
  check.py prometheus-config OUT RULES METRICS_PORT HELM
                                a Prometheus config: the rules, and one scrape job that applies
                                the chart's PodMonitor relabelings to a local target
  check.py metrics-page         the text the local target serves
  check.py live URL             on a running Prometheus: every recording rule, every dashboard
                                query and every variable query returns data
  check.py live-workload URL NAMESPACE WORKLOAD BACKEND
                                on a running Prometheus (the e2e node's): the dashboard as a user
                                opens it for one workload (model_name: All) shows data in every
                                panel but the GPU ones (no DCGM exporter there), 0 on the error
                                panels of a workload that had no error
"""
import json
import re
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts/inference-webhook"
RULES = CHART / "files/inference-rules.yaml"
DASHBOARD = CHART / "files/inference-dashboard.json"
DEPLOY = REPO / "deploy/dashboards"
DEPLOY_RULES = DEPLOY / "inference-rules.yaml"
DEPLOY_DASHBOARD = DEPLOY / "inference-dashboard.json"
DEPLOY_RULE_CR = DEPLOY / "inference-prometheusrule.yaml"
# The target labels the PodMonitor adds and the rules key on.
KEY_LABELS = {"workload", "backend"}
DATASOURCE = "${datasource}"
# Grafana variables -> PromQL for the live queries: every value, and a fixed rate range.
SUBSTITUTIONS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}

failed = 0


def check(name, ok, detail=""):
    global failed
    if ok:
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name}" + (f": {detail}" if detail else ""))


def finish():
    sys.exit(1 if failed else 0)


# --- the copies -------------------------------------------------------------------------------

def rule_groups():
    return yaml.safe_load(RULES.read_text())["groups"]


def prometheus_rule_cr():
    header = (
        "# Generated from charts/inference-webhook/files/inference-rules.yaml by\n"
        "# `tests/dashboards/check.py sync`; tests/dashboards/run fails when it differs.\n"
    )
    doc = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "inference-webhook-inference",
                     "labels": {"app.kubernetes.io/name": "inference-webhook"}},
        "spec": {"groups": rule_groups()},
    }
    return header + yaml.safe_dump(doc, sort_keys=False, width=1000)


def sync():
    DEPLOY.mkdir(exist_ok=True)
    DEPLOY_RULES.write_bytes(RULES.read_bytes())
    DEPLOY_DASHBOARD.write_bytes(DASHBOARD.read_bytes())
    DEPLOY_RULE_CR.write_text(prometheus_rule_cr())
    LAYOUT_SVG.write_text(layout_svg())
    print(f"wrote {DEPLOY_RULES}, {DEPLOY_DASHBOARD}, {DEPLOY_RULE_CR}, {LAYOUT_SVG}")


# --- the layout picture -----------------------------------------------------------------------

LAYOUT_SVG = REPO / "docs/dashboard-layout.svg"


def layout_svg():
    """docs/dashboard-layout.svg drawn from the panels' gridPos (checked by `static`)."""
    import html
    d = json.loads(DASHBOARD.read_text())
    cw, rh, top = 40, 22, 52  # px per grid column, per grid row; the heading
    width = 24 * cw + 20
    height = top + max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in d["panels"]) * rh + 8
    fill = {"stat": "#dbeafe", "timeseries": "#e0f2e9", "table": "#fef3c7"}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif">',
           f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
           f'<text x="10" y="22" font-size="16" font-weight="bold">{html.escape(d["title"])}</text>',
           '<text x="10" y="42" font-size="12" fill="#555">variables: datasource, namespace, workload, '
           'backend, model_name · blue: stat · green: time series · yellow: table</text>']
    for p in d["panels"]:
        g = p["gridPos"]
        x, y, w, h = 10 + g["x"] * cw, top + g["y"] * rh, g["w"] * cw, g["h"] * rh
        title = html.escape(p["title"])
        if p["type"] == "row":
            out.append(f'<rect x="{x}" y="{y + 2}" width="{w}" height="{h - 4}" fill="#374151"/>')
            out.append(f'<text x="{x + 8}" y="{y + h - 7}" font-size="12" fill="#fff" font-weight="bold">{title}</text>')
            continue
        out.append(f'<rect x="{x + 2}" y="{y + 2}" width="{w - 4}" height="{h - 4}" rx="4" '
                   f'fill="{fill.get(p["type"], "#eeeeee")}" stroke="#9ca3af"/>')
        lines, line = [], ""
        for word in title.split(" "):
            if line and len(line) + len(word) + 1 > max(8, w // 8):
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}".strip()
        lines.append(line)
        for i, text in enumerate(lines[:3]):
            out.append(f'<text x="{x + 10}" y="{y + 20 + i * 15}" font-size="12">{text}</text>')
        if g["w"] >= 6:  # the series each panel reads, where there is room
            names = sorted({n for t in p["targets"] for n in metric_names(t["expr"])})
            for i, name in enumerate(names[:4]):
                out.append(f'<text x="{x + 10}" y="{y + h - 10 - i * 13}" font-size="9" fill="#4b5563">{name}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


# --- the chart --------------------------------------------------------------------------------

def render(helm, *args):
    out = subprocess.run([helm, "template", "t", str(CHART), "--namespace", "t", *args],
                         capture_output=True, text=True)
    docs = [d for d in yaml.safe_load_all(out.stdout) if d] if out.returncode == 0 else []
    return out.returncode, docs, out.stderr


def of_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def thresholds_in_file():
    """{NAME: number} of the `> N # threshold NAME` markers of the rules file."""
    return {m.group(2): float(m.group(1))
            for m in re.finditer(r"> ([-+.0-9eE]+) # threshold (\w+)", RULES.read_text())}


def alert_exprs(groups):
    return {r["alert"]: r["expr"] for g in groups for r in g["rules"] if "alert" in r}


def meta_label(key):
    return "__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)


def check_pod_monitor(name, docs, workload_key, backend_key):
    monitors = of_kind(docs, "PodMonitor")
    check(f"{name}: one PodMonitor", len(monitors) == 1)
    if len(monitors) != 1:
        return
    endpoint = monitors[0]["spec"]["podMetricsEndpoints"][0]
    targets = {}
    for r in endpoint.get("relabelings", []):
        targets.setdefault(r["targetLabel"], []).extend(r["sourceLabels"])
    check(f"{name}: PodMonitor relabels to exactly the rules' keys {sorted(KEY_LABELS)}",
          set(targets) == KEY_LABELS, f"got {sorted(targets)}")
    check(f"{name}: `workload` comes from the pod label {workload_key}",
          targets.get("workload") == [meta_label(workload_key)], str(targets.get("workload")))
    check(f"{name}: `backend` comes from the pod label {backend_key} (last, so it wins)",
          targets.get("backend", [None])[-1] == meta_label(backend_key), str(targets.get("backend")))
    check(f"{name}: podTargetLabels still carry both pod labels",
          monitors[0]["spec"].get("podTargetLabels") == [workload_key, backend_key])


def static(helm):
    rules_text = RULES.read_text()
    groups = rule_groups()
    dashboard = json.loads(DASHBOARD.read_text())

    # One source of truth: the deploy/ files are the chart's files.
    check("deploy/dashboards/inference-rules.yaml is the chart's files/inference-rules.yaml",
          DEPLOY_RULES.exists() and DEPLOY_RULES.read_bytes() == RULES.read_bytes(),
          "run tests/dashboards/check.py sync")
    check("deploy/dashboards/inference-dashboard.json is the chart's files/inference-dashboard.json",
          DEPLOY_DASHBOARD.exists() and DEPLOY_DASHBOARD.read_bytes() == DASHBOARD.read_bytes(),
          "run tests/dashboards/check.py sync")
    check("deploy/dashboards/inference-prometheusrule.yaml carries the same groups",
          DEPLOY_RULE_CR.exists() and DEPLOY_RULE_CR.read_text() == prometheus_rule_cr(),
          "run tests/dashboards/check.py sync")
    check("docs/dashboard-layout.svg is drawn from the dashboard's gridPos",
          LAYOUT_SVG.exists() and LAYOUT_SVG.read_text() == layout_svg(), "run tests/dashboards/check.py sync")

    # Every engine metric a rule reads is named in a comment that cites its source file: inside
    # the expression (PromQL comments), or for DCGM the YAML comment above the rule.
    yaml_comments = " ".join(line for line in rules_text.splitlines() if line.strip().startswith("#"))
    for g in groups:
        for r in g["rules"]:
            if "record" not in r:
                continue
            code = re.sub(r"#.*", "", r["expr"])
            cited = " ".join(re.findall(r"#.*", r["expr"])).replace("(_total)", "_total")
            read = set(re.findall(r"\b((?:llamacpp|lmdeploy|sglang|vllm):\w+|(?:dynamo_frontend|http|tgi|trtllm)_\w+|DCGM_FI_\w+)", code))
            if not read:
                continue
            base = {re.sub(r"_(bucket|sum|count)$", "", m) for m in read}
            uncited = sorted(m for m in base
                             if m not in cited and not (m.startswith("DCGM_") and f"{m}:" in yaml_comments))
            check(f"rule {r['record']}: every engine metric it reads is cited with its source",
                  not uncited, f"uncited {uncited}")

    thresholds = thresholds_in_file()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    defaults = values["dashboards"]["alerts"]
    check("every threshold marker has a chart value and back",
          set(thresholds) == set(defaults), f"file {sorted(thresholds)} values {sorted(defaults)}")
    check("the chart's default thresholds are the file's numbers",
          all(float(defaults[k]) == v for k, v in thresholds.items() if k in defaults))

    # Default chart: nothing rendered; dashboards.enabled renders the file as it is.
    _, plain, _ = render(helm)
    check("dashboards off by default: no PrometheusRule, no dashboard ConfigMap",
          not of_kind(plain, "PrometheusRule")
          and not [c for c in of_kind(plain, "ConfigMap") if c["metadata"]["name"].endswith("-dashboard")])
    rc, docs, err = render(helm, "--set", "dashboards.enabled=true", "--set", "metrics.podMonitor.enabled=true")
    check("helm template with dashboards.enabled", rc == 0, err)
    crs = of_kind(docs, "PrometheusRule")
    check("dashboards.enabled: the PrometheusRule's groups are the rules file's groups",
          len(crs) == 1 and crs[0]["spec"]["groups"] == groups)
    maps = [c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"].endswith("-dashboard")]
    check("dashboards.enabled: the ConfigMap holds the dashboard JSON unchanged",
          len(maps) == 1 and json.loads(maps[0]["data"]["inference-dashboard.json"]) == dashboard)
    check("dashboards.enabled: the ConfigMap has the Grafana sidecar label grafana_dashboard: \"1\"",
          len(maps) == 1 and maps[0]["metadata"]["labels"].get("grafana_dashboard") == "1")
    check_pod_monitor("default labels", docs,
                      values["labels"]["workload"], values["labels"]["backend"])

    # Other labels and thresholds.
    other = {"dashboards": {"enabled": True,
                            "grafana": {"sidecarLabels": {"grafana_dashboard": None, "dashboards": "inference"}},
                            "alerts": {"ttftP99Seconds": 1.5, "kvCacheUsageRatio": 0.8, "errorRatio": 0.001}},
             "metrics": {"podMonitor": {"enabled": True}},
             "labels": {"workload": "example.com/serving.workload", "backend": "example.com/engine",
                        "legacyBackend": "example.com/old_engine"}}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump(other, f)
        f.flush()
        rc, docs, err = render(helm, "-f", f.name)
    check("helm template with other labels and thresholds", rc == 0, err)
    check_pod_monitor("other labels", docs, "example.com/serving.workload", "example.com/engine")
    monitors = of_kind(docs, "PodMonitor")
    if monitors:
        sources = [r["sourceLabels"][0] for r in monitors[0]["spec"]["podMetricsEndpoints"][0]["relabelings"]]
        check("other labels: a legacy backend key on its own meta label is read too",
              meta_label("example.com/old_engine") in sources, str(sources))
    crs = of_kind(docs, "PrometheusRule")
    exprs = alert_exprs(crs[0]["spec"]["groups"]) if crs else {}
    want = {"InferenceTTFTHigh": "inference_workload:ttft_seconds:p99 > 1.5",
            "InferenceKVCacheSaturated": "inference_workload:kv_cache_usage:max > 0.8",
            "InferenceRequestErrors": "inference_workload:request_errors:ratio > 0.001"}
    for alert, expr in want.items():
        check(f"dashboards.alerts: {alert} is `{expr}`", exprs.get(alert) == expr, str(exprs.get(alert)))
    if crs:
        untouched = [[{k: v for k, v in r.items() if "alert" not in r or k != "expr"} for r in g["rules"]]
                     for g in crs[0]["spec"]["groups"]]
        original = [[{k: v for k, v in r.items() if "alert" not in r or k != "expr"} for r in g["rules"]]
                    for g in groups]
        check("dashboards.alerts changes the alert thresholds and nothing else", untouched == original)
    maps = [c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"].endswith("-dashboard")]
    check("dashboards.grafana.sidecarLabels replaces the sidecar label",
          len(maps) == 1 and maps[0]["metadata"]["labels"].get("dashboards") == "inference"
          and "grafana_dashboard" not in maps[0]["metadata"]["labels"])

    lint(dashboard)
    finish()


# --- lint rules of our own (beside the Go schema check) ---------------------------------------

def panels_of(dashboard):
    for p in dashboard["panels"]:
        yield p
        yield from p.get("panels", [])


def recorded_names():
    return {r["record"] for g in rule_groups() for r in g["rules"] if "record" in r}


def metric_names(expr):
    """Series names a PromQL expression selects (identifiers followed by `{`)."""
    return set(re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", expr))


def lint(dashboard):
    recorded = recorded_names()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    check("lint: a Prometheus datasource variable named datasource",
          variables.get("datasource", {}).get("type") == "datasource"
          and variables["datasource"].get("query") == "prometheus")
    for name in ("namespace", "workload", "backend", "model_name"):
        v = variables.get(name, {})
        check(f"lint: variable {name} (multi, All = .*)",
              v.get("type") == "query" and v.get("multi") and v.get("includeAll") and v.get("allValue") == ".*")
    check("lint: uid and title set", bool(dashboard.get("uid")) and bool(dashboard.get("title")))
    ids = [p["id"] for p in panels_of(dashboard)]
    check("lint: panel ids unique", len(ids) == len(set(ids)))
    occupied = {}
    overlap = []
    for p in panels_of(dashboard):
        g = p["gridPos"]
        if g["x"] < 0 or g["x"] + g["w"] > 24:
            overlap.append(f"{p['title']} outside the 24 columns")
        for dx in range(g["w"]):
            for dy in range(g["h"]):
                cell = (g["x"] + dx, g["y"] + dy)
                if cell in occupied:
                    overlap.append(f"{p['title']} over {occupied[cell]}")
                occupied[cell] = p["title"]
    check("lint: panels inside the grid, none overlapping", not overlap, "; ".join(sorted(set(overlap))[:5]))
    used_vars = set()
    for p in panels_of(dashboard):
        if p["type"] == "row":
            continue
        t = p["title"]
        check(f"lint: panel {t!r} has a title, a description and the datasource variable",
              bool(t) and bool(p.get("description")) and p.get("datasource", {}).get("uid") == DATASOURCE)
        targets = p.get("targets", [])
        check(f"lint: panel {t!r} has queries, each on the datasource variable with a unique refId",
              bool(targets) and all(x.get("datasource", {}).get("uid") == DATASOURCE for x in targets)
              and len({x["refId"] for x in targets}) == len(targets))
        for x in targets:
            expr = x["expr"]
            used_vars |= set(re.findall(r"\$(\w+)", expr))
            names = metric_names(expr)
            check(f"lint: {t!r} {x['refId']} reads only recorded series",
                  names and names <= recorded, f"not recorded: {sorted(names - recorded)}")
            check(f"lint: {t!r} {x['refId']} has no job or instance matcher",
                  not re.search(r"\b(job|instance)\s*=", expr))
            check(f"lint: {t!r} {x['refId']} filters on all of namespace, workload and backend",
                  all(f'{k}=~"${k}"' in expr for k in ("namespace", "workload", "backend")))
    for v in variables.values():
        if v["type"] == "query":
            used_vars |= set(re.findall(r"\$(\w+)", v["definition"]))
            names = metric_names(v["definition"]) or set(re.findall(r"label_values\(([\w:]+)", v["definition"]))
            check(f"lint: variable {v['name']} reads recorded series", names and names <= recorded)
    grafana_builtins = {"__rate_interval", "__interval", "__range", "__all"}
    check("lint: every variable a query uses exists",
          used_vars - grafana_builtins <= set(variables), f"missing {sorted(used_vars - grafana_builtins - set(variables))}")
    levels = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    check("lint: three levels (service, pods, GPUs)", len(levels) == 3, str(levels))


# --- synthetic data ---------------------------------------------------------------------------

STEP = 15
SPAN = 40 * 60


def synth(out, now):
    """One OpenMetrics file: each engine generation on its own pods, all rising steadily."""
    now = int(now)
    series = []  # (name, labels dict, value at step i: function)

    def pod(ns, workload, backend, name, model=None):
        base = {"namespace": ns, "workload": workload, "backend": backend, "pod": name}
        if model:
            base["model_name"] = model
        series.append(("up", {**{k: v for k, v in base.items() if k != "model_name"},
                              "job": "inference/pm", "instance": f"{name}:8000"}, lambda i: 1))
        return base

    def gauge(name, labels, value):
        series.append((name, labels, lambda i, v=value: v))

    def counter(name, labels, per_second):
        series.append((name, labels, lambda i, r=per_second: r * STEP * i))

    def histogram(name, labels, per_second, buckets):
        """buckets: [(le, fraction at or below)] ending with +Inf 1.0."""
        for le, frac in buckets:
            counter(f"{name}_bucket", {**labels, "le": le}, per_second * frac)
        counter(f"{name}_count", labels, per_second)
        counter(f"{name}_sum", labels, per_second * 0.5)

    latency = [("0.1", 0.2), ("0.5", 0.6), ("1", 0.9), ("5", 0.99), ("+Inf", 1.0)]

    # vLLM V1 >= 0.11 (new names, and the deprecated ones beside them), two pods.
    for i, name in enumerate(["chat-0", "chat-1"]):
        p = pod("llm", "chat", "vllm", name, "llama-3-8b")
        e = {**p, "engine": "0"}
        counter("vllm:request_success_total", {**e, "finished_reason": "stop"}, 2 + i)
        counter("http_requests_total", {k: v for k, v in p.items() if k != "model_name"} |
                {"handler": "/v1/chat/completions", "method": "POST", "status": "5xx"}, 0.1)
        gauge("vllm:num_requests_running", e, 4 + 3 * i)
        gauge("vllm:num_requests_waiting", e, i)
        gauge("vllm:kv_cache_usage_perc", e, 0.4 + 0.3 * i)
        gauge("vllm:gpu_cache_usage_perc", e, 0.4 + 0.3 * i)
        counter("vllm:prompt_tokens_total", e, 800)
        counter("vllm:generation_tokens_total", e, 300)
        counter("vllm:num_preemptions_total", e, 0.05 * i)
        counter("vllm:prefix_cache_queries_total", e, 800)
        counter("vllm:prefix_cache_hits_total", e, 200)
        histogram("vllm:time_to_first_token_seconds", e, 2, latency)
        histogram("vllm:inter_token_latency_seconds", e, 300, [("0.01", 0.3), ("0.05", 0.9), ("+Inf", 1.0)])
        histogram("vllm:time_per_output_token_seconds", e, 300, [("0.01", 0.3), ("0.05", 0.9), ("+Inf", 1.0)])
        histogram("vllm:e2e_request_latency_seconds", e, 2, [("1", 0.1), ("10", 0.9), ("+Inf", 1.0)])
    # vLLM V0 (old names only).
    p = pod("llm", "legacy", "vllm", "legacy-0", "opt-13b")
    counter("vllm:request_success_total", {**p, "finished_reason": "stop"}, 1)
    gauge("vllm:num_requests_running", p, 2)
    gauge("vllm:num_requests_waiting", p, 5)
    gauge("vllm:gpu_cache_usage_perc", p, 0.97)
    gauge("vllm:gpu_prefix_cache_hit_rate", p, 0.3)
    counter("vllm:prompt_tokens_total", p, 400)
    counter("vllm:generation_tokens_total", p, 100)
    counter("vllm:num_preemptions_total", p, 0.2)
    histogram("vllm:time_to_first_token_seconds", p, 1, latency)
    histogram("vllm:time_per_output_token_seconds", p, 100, [("0.025", 0.5), ("0.1", 0.95), ("+Inf", 1.0)])
    histogram("vllm:e2e_request_latency_seconds", p, 1, [("2.5", 0.2), ("20", 0.95), ("+Inf", 1.0)])
    # SGLang.
    p = pod("llm", "coder", "sglang", "coder-0", "qwen2.5-coder")
    s = {**p, "tp_rank": "0"}
    counter("sglang:num_requests_total", p, 3)
    counter("sglang:num_aborted_requests_total", p, 0.05)
    gauge("sglang:num_running_reqs", s, 12)
    gauge("sglang:num_queue_reqs", s, 3)
    gauge("sglang:token_usage", s, 0.85)
    gauge("sglang:cache_hit_rate", s, 0.55)
    counter("sglang:num_retracted_requests_total", s, 0.1)
    counter("sglang:prompt_tokens_total", p, 1500)
    counter("sglang:generation_tokens_total", p, 600)
    histogram("sglang:time_to_first_token_seconds", p, 3, [("0.2", 0.3), ("1", 0.8), ("4", 0.99), ("+Inf", 1.0)])
    histogram("sglang:inter_token_latency_seconds", p, 600, [("0.01", 0.4), ("0.04", 0.95), ("+Inf", 1.0)])
    histogram("sglang:e2e_request_latency_seconds", p, 3, [("2", 0.3), ("20", 0.97), ("+Inf", 1.0)])
    # TGI (no model_name, counters without _total).
    p = pod("llm", "summarizer", "tgi", "summarizer-0")
    counter("tgi_request_success", {**p, "stop_reason": "length", "kind": "generate"}, 1)
    counter("tgi_request_failure", {**p, "err": "generate"}, 0.02)
    gauge("tgi_batch_current_size", p, 6)
    gauge("tgi_queue_size", p, 1)
    counter("tgi_request_input_length_sum", p, 500)
    counter("tgi_request_generated_tokens_sum", p, 200)
    histogram("tgi_request_mean_time_per_token_duration", p, 1, [("0.02", 0.5), ("0.1", 0.99), ("+Inf", 1.0)])
    histogram("tgi_request_duration", p, 1, [("1", 0.2), ("8", 0.95), ("+Inf", 1.0)])
    # TensorRT-LLM (trtllm-serve).
    p = pod("llm", "trt", "trtllm", "trt-0", "llama-3-70b")
    t = {**p, "engine_type": "trtllm"}
    counter("trtllm_request_success_total", {**t, "finished_reason": "stop"}, 2)
    counter("trtllm_request_error_total", t, 0.01)
    gauge("trtllm_num_requests_running", t, 8)
    gauge("trtllm_num_requests_waiting", t, 2)
    gauge("trtllm_kv_cache_utilization", t, 0.6)
    gauge("trtllm_kv_cache_hit_rate", t, 0.2)
    counter("trtllm_prompt_tokens_total", t, 900)
    counter("trtllm_generation_tokens_total", t, 400)
    histogram("trtllm_time_to_first_token_seconds", t, 2, latency)
    histogram("trtllm_time_per_output_token_seconds", t, 400, [("0.025", 0.6), ("0.1", 0.99), ("+Inf", 1.0)])
    histogram("trtllm_e2e_request_latency_seconds", t, 2, [("1", 0.2), ("10", 0.9), ("+Inf", 1.0)])
    # LMDeploy.
    p = pod("llm", "internlm", "lmdeploy", "internlm-0", "internlm2")
    e = {**p, "engine": "0"}
    counter("lmdeploy:request_success_total", {**e, "finished_reason": "ResponseType.FINISH"}, 1)
    gauge("lmdeploy:num_requests_running", e, 3)
    gauge("lmdeploy:num_requests_waiting", e, 0)
    gauge("lmdeploy:gpu_cache_usage_perc", e, 0.35)
    counter("lmdeploy:prompt_tokens_total", e, 300)
    counter("lmdeploy:generation_tokens_total", e, 120)
    histogram("lmdeploy:time_to_first_token_seconds", e, 1, latency)
    histogram("lmdeploy:time_per_output_token_seconds", e, 120, [("0.025", 0.6), ("0.1", 0.99), ("+Inf", 1.0)])
    histogram("lmdeploy:e2e_request_latency_seconds", e, 1, [("1", 0.2), ("10", 0.9), ("+Inf", 1.0)])
    # llama.cpp (llama-server --metrics): no model label, no request counter or histograms.
    p = pod("llm", "edge", "llamacpp", "edge-0")
    gauge("llamacpp:requests_processing", p, 1)
    gauge("llamacpp:requests_deferred", p, 0)
    gauge("llamacpp:kv_cache_usage_ratio", p, 0.25)
    counter("llamacpp:prompt_tokens_total", p, 50)
    counter("llamacpp:prompt_tokens_cached_total", p, 50)
    counter("llamacpp:tokens_predicted_total", p, 20)
    # Dynamo frontend (model label `model`).
    p = pod("llm", "dyn", "dynamo", "dyn-frontend-0")
    d = {**p, "model": "deepseek-r1"}
    counter("dynamo_frontend_requests_total", {**d, "endpoint": "chat_completions", "request_type": "stream",
                                               "status": "success"}, 4)
    counter("dynamo_frontend_requests_total", {**d, "endpoint": "chat_completions", "request_type": "stream",
                                               "status": "error"}, 0.04)
    gauge("dynamo_frontend_inflight_requests", d, 20)
    gauge("dynamo_frontend_queued_requests", d, 5)
    counter("dynamo_frontend_input_sequence_tokens_sum", d, 4000)
    counter("dynamo_frontend_output_sequence_tokens_sum", d, 1200)
    histogram("dynamo_frontend_time_to_first_token_seconds", d, 4, latency)
    histogram("dynamo_frontend_inter_token_latency_seconds", d, 1200, [("0.01", 0.3), ("0.05", 0.9), ("+Inf", 1.0)])
    histogram("dynamo_frontend_request_duration_seconds", d, 4, [("1", 0.1), ("10", 0.9), ("+Inf", 1.0)])
    # DCGM: honorLabels (pod/namespace) for the vLLM pods, exported_* for SGLang, and a GPU of an
    # unlabeled pod that must not show.
    gpus = [({"namespace": "llm", "pod": "chat-0"}, "0"), ({"namespace": "llm", "pod": "chat-1"}, "1"),
            ({"namespace": "gpu-operator", "pod": "dcgm-exporter-abc", "exported_namespace": "llm",
              "exported_pod": "coder-0"}, "2"),
            ({"namespace": "llm", "pod": "legacy-0"}, "3"), ({"namespace": "llm", "pod": "summarizer-0"}, "4"),
            ({"namespace": "training", "pod": "trainer-0"}, "5")]
    for where, gpu in gpus:
        g = {**where, "job": "dcgm-exporter", "gpu": gpu, "UUID": f"GPU-{gpu}", "modelName": "NVIDIA H100 80GB HBM3",
             "Hostname": f"node-{int(gpu) // 4}"}
        gauge("DCGM_FI_DEV_GPU_UTIL", g, 50 + 8 * int(gpu))
        gauge("DCGM_FI_DEV_FB_USED", g, 60000 + 1000 * int(gpu))
        gauge("DCGM_FI_DEV_FB_FREE", g, 20000 - 1000 * int(gpu))
        gauge("DCGM_FI_DEV_POWER_USAGE", g, 400 + 20 * int(gpu))
        gauge("DCGM_FI_DEV_SM_CLOCK", g, 1980)

    steps = SPAN // STEP
    start = now - steps * STEP
    with open(out, "w", encoding="utf-8") as f:
        for name, labels, value in sorted(series, key=lambda s: (s[0], sorted(s[1].items()))):
            text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            for i in range(steps + 1):
                f.write(f"{name}{{{text}}} {value(i)} {start + i * STEP}\n")
        f.write("# EOF\n")
    print(f"wrote {len(series)} series x {steps + 1} samples to {out}")


# --- the server -------------------------------------------------------------------------------

SCRAPED_POD = {"namespace": "scraped", "pod": "scraped-0", "workload": "relabeled", "backend": "vllm"}


def metrics_page():
    """What the local target serves: a vLLM V1 server (model_name only, as vLLM labels it)."""
    m = 'model_name="scraped-model",engine="0"'
    return (f"vllm:num_requests_running{{{m}}} 3\n"
            f"vllm:num_requests_waiting{{{m}}} 1\n"
            f"vllm:kv_cache_usage_perc{{{m}}} 0.5\n")


def prometheus_config(out, rules, port, helm):
    """Rules, and a job that scrapes 127.0.0.1:PORT through the relabelings the chart's PodMonitor
    renders (plus the namespace/pod relabelings the Prometheus Operator adds to every PodMonitor),
    the target carrying the pod labels as Kubernetes discovery would."""
    rc, docs, err = render(helm, "--set", "metrics.podMonitor.enabled=true")
    if rc != 0:
        sys.exit(err)
    chart_values = yaml.safe_load((CHART / "values.yaml").read_text())
    relabel = [{"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
               {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"}]
    for r in of_kind(docs, "PodMonitor")[0]["spec"]["podMetricsEndpoints"][0]["relabelings"]:
        relabel.append({"source_labels": r["sourceLabels"], "regex": r.get("regex", "(.*)"),
                        "target_label": r["targetLabel"]})
    target_labels = {"__meta_kubernetes_namespace": SCRAPED_POD["namespace"],
                     "__meta_kubernetes_pod_name": SCRAPED_POD["pod"],
                     meta_label(chart_values["labels"]["workload"]): SCRAPED_POD["workload"],
                     meta_label(chart_values["labels"]["backend"]): SCRAPED_POD["backend"]}
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [{"job_name": "inference/podmonitor", "metrics_path": "/metrics",
                            "static_configs": [{"targets": [f"127.0.0.1:{port}"], "labels": target_labels}],
                            "relabel_configs": relabel}],
    }
    Path(out).write_text(yaml.safe_dump(config, sort_keys=False))


def query(url, expr):
    with urllib.request.urlopen(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}), timeout=30) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(body)
    return body["data"]["result"]


def concrete(expr):
    for k, v in SUBSTITUTIONS.items():
        expr = expr.replace(k, v)
    # Every other variable: all values.
    return re.sub(r"\$\{?(\w+)\}?", ".*", expr)


def has_data(url, name, expr):
    try:
        result = query(url, expr)
        real = [s for s in result if s["value"][1] not in ("NaN", "+Inf", "-Inf")]
        check(name, bool(real), f"{len(result)} series, {len(real)} with a number: {expr[:160]}")
        return result
    except Exception as e:  # noqa: BLE001 - any failure is this check's failure
        check(name, False, f"{e}: {expr[:160]}")
        return []


def live(url):
    for record in sorted(recorded_names()):
        result = has_data(url, f"rule {record} returns data", record)
        if result and not record.startswith("inference_gpu") and record not in ("inference_pod:info",):
            keyed = all(s["metric"].get("workload") and s["metric"].get("backend") for s in result)
            check(f"rule {record} is keyed by workload and backend", keyed)
    # Each engine generation reaches every per-pod series it has a signal for.
    pod_records = sorted(r for r in recorded_names() if r.startswith("inference_pod:") and not r.endswith(":info"))
    lacks = {  # pod -> the per-pod series its engine (as synthesized) has no signal for
        "chat-0": set(),
        "chat-1": set(),
        "legacy-0": {"request_errors:rate5m"},
        "coder-0": set(),
        "summarizer-0": {"ttft_seconds", "kv_cache_usage", "preemptions", "prefix_cache_hit"},
        "trt-0": {"preemptions"},
        "internlm-0": {"request_errors", "preemptions", "prefix_cache_hit"},
        "edge-0": {"requests:rate5m", "request_errors", "ttft_seconds", "itl_seconds", "e2e_latency",
                   "preemptions"},
        "dyn-frontend-0": {"kv_cache_usage", "preemptions", "prefix_cache_hit"},
    }
    check("every pod of the synthetic data is in the coverage table",
          {s["metric"]["pod"] for s in query(url, "inference_pod:info")} - {SCRAPED_POD["pod"]} == set(lacks))
    for pod_name, missing in lacks.items():
        for record in pod_records:
            if any(m in record for m in missing):
                check(f"{record} has no series for pod {pod_name} (no such signal)",
                      not query(url, f'{record}{{pod="{pod_name}"}}'))
            else:
                has_data(url, f"{record} has pod {pod_name}", f'{record}{{pod="{pod_name}"}}')
    has_data(url, "Dynamo's `model` label becomes model_name",
             'inference_pod:requests:rate5m{pod="dyn-frontend-0", model_name="deepseek-r1"}')
    for pod_name in ("chat-0", "coder-0"):
        has_data(url, f"inference_gpu:utilization:percent has pod {pod_name}",
                 f'inference_gpu:utilization:percent{{pod="{pod_name}"}}')
    check("GPUs of unlabeled pods are left out",
          not query(url, 'inference_gpu:utilization:percent{pod=~"trainer-0|dcgm-exporter-abc"}'))
    # PodMonitor -> rules: the scraped target got `workload`/`backend` from the pod labels.
    sel = ",".join(f'{k}="{v}"' for k, v in SCRAPED_POD.items())
    has_data(url, "a target relabeled as the chart's PodMonitor does is up with workload and backend",
             f"up{{{sel}}} == 1")
    has_data(url, "its vLLM series reach inference_pod:requests_running",
             f'inference_pod:requests_running{{{sel},model_name="scraped-model"}}')
    dashboard = json.loads(DASHBOARD.read_text())
    for p in panels_of(dashboard):
        for t in p.get("targets", []):
            has_data(url, f"panel {p['title']!r} {t['refId']} returns data", concrete(t["expr"]))
    for v in dashboard["templating"]["list"]:
        if v["type"] != "query":
            continue
        m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", v["definition"])
        check(f"variable {v['name']} is a label_values query", bool(m))
        if m:
            result = has_data(url, f"variable {v['name']} has values",
                              f"group by ({m.group(2)}) ({concrete(m.group(1))})")
            if v["name"] != "model_name":
                check(f"variable {v['name']} has no empty value",
                      all(s["metric"].get(m.group(2)) for s in result))
    finish()


# Panels that need DCGM's GPU series (there is no GPU and no DCGM exporter on the e2e node).
GPU_RECORDS = re.compile(r"inference_gpu:|inference_workload:gpus|inference_workload:gpu_power")
ERROR_RECORDS = re.compile(r"request_errors")


def live_workload(url, namespace, workload, backend):
    def esc(v):  # a regex that matches v only, as a PromQL string
        return re.escape(v).replace("\\", "\\\\")

    values = {"namespace": namespace, "workload": workload, "backend": backend, "model_name": ".*"}
    dashboard = json.loads(DASHBOARD.read_text())
    skipped = []
    for p in panels_of(dashboard):
        for t in p.get("targets", []):
            expr = t["expr"]
            for k, v in SUBSTITUTIONS.items():
                expr = expr.replace(k, v)
            for k, v in values.items():
                expr = expr.replace(f"${{{k}}}", v if k == "model_name" else esc(v))
                expr = expr.replace(f"${k}", v if k == "model_name" else esc(v))
            name = f"panel {p['title']!r} {t['refId']}"
            if GPU_RECORDS.search(expr):
                skipped.append(name)
                continue
            result = has_data(url, f"{name} returns data for {namespace}/{workload}", expr)
            if ERROR_RECORDS.search(expr) and result:
                check(f"{name} is 0 (no request failed)", all(float(s["value"][1]) == 0 for s in result),
                      str([s["value"][1] for s in result]))
    for v in dashboard["templating"]["list"]:
        if v["type"] != "query":
            continue
        m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", v["definition"])
        if m:
            expr = m.group(1)
            for k, val in values.items():
                expr = expr.replace(f"${k}", val if k == "model_name" else esc(val))
            result = has_data(url, f"variable {v['name']} has a value", f"group by ({m.group(2)}) ({expr})")
            if v["name"] in values and v["name"] != "model_name":
                check(f"variable {v['name']} offers {values[v['name']]}",
                      any(s["metric"].get(m.group(2)) == values[v["name"]] for s in result))
    for name in skipped:
        print(f"not applicable (GPU panel: no DCGM exporter here): {name}")
    finish()


if __name__ == "__main__":
    commands = {"sync": sync, "static": static, "synth": synth, "prometheus-config": prometheus_config,
                "metrics-page": lambda: sys.stdout.write(metrics_page()), "live": live,
                "live-workload": live_workload}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](*sys.argv[2:])
