#!/usr/bin/env python3
"""Peak RSS of `inference-webhook report` holding N watched workloads.

A plain-HTTP stand-in for the API server answers the reporter's list of Deployments with N
objects in the pages it asks for (every other one a vLLM Deployment without labels, as after an outage), holds watches
open without events, and answers 404 for the other kinds (CRDs not installed). It measures the
reporter's memory, not the API server: initial sync time against a real API server is for the
e2e harness.

  cargo build --release
  python3 bench/reporter-rss.py --binary target/release/inference-webhook --objects 10000
"""
import argparse, json, os, subprocess, sys, tempfile, threading, time, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def deployment(i):
    name = f"model-{i:05d}"
    container = {"name": "app", "image": "nginx:1.27"}
    if i % 2 == 0:
        container = {
            "name": "vllm",
            "image": "vllm/vllm-openai:v0.10.0",
            "args": ["--model", "Qwen/Qwen2.5-7B-Instruct", "--port", "8000"],
            "ports": [{"containerPort": 8000}],
        }
    return {
        "metadata": {"name": name, "namespace": f"team-{i % 100:03d}",
                     "uid": f"00000000-0000-4000-8000-{i:012d}", "resourceVersion": "1"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [container]}}},
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/release/inference-webhook")
    ap.add_argument("--objects", type=int, default=10000)
    args = ap.parse_args()
    items = [deployment(i) for i in range(args.objects)]

    def page(query):
        # Paged like the API server: `limit`, and `continue` (here the offset) for the rest.
        params = dict(kv.split("=", 1) for kv in query.split("&") if "=" in kv)
        start = int(params.get("continue") or 0)
        limit = int(params.get("limit") or len(items) or 1)
        end = min(start + limit, len(items))
        meta = {"resourceVersion": "2"}
        if end < len(items):
            meta["continue"] = str(end)
        return json.dumps({"kind": "DeploymentList", "apiVersion": "apps/v1", "metadata": meta,
                           "items": items[start:end]}).encode()
    empty = json.dumps({"kind": "StatefulSetList", "apiVersion": "apps/v1",
                        "metadata": {"resourceVersion": "2"}, "items": []}).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def log_message(self, *a):
            pass
        def do_GET(self):
            path, _, query = self.path.partition("?")
            if "watch=true" in query.split("&"):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                time.sleep(3600)
                return
            data = {"/apis/apps/v1/statefulsets": empty}.get(path)
            if path == "/apis/apps/v1/deployments":
                data = page(query)
            if data is None:
                self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers(); return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    tmp = tempfile.mkdtemp()
    kubeconfig = os.path.join(tmp, "kubeconfig")
    with open(kubeconfig, "w") as f:
        f.write(f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "http://127.0.0.1:{port}"}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: c, context: {{cluster: c, user: u}}}}]
current-context: c
""")
    metrics = "127.0.0.1:19391"
    start = time.monotonic()
    proc = subprocess.Popen([args.binary, "report", "--no-policy-reports", "--kubeconfig", kubeconfig,
                             f"--metrics-listen={metrics}"], stdout=subprocess.DEVNULL)
    try:
        while True:
            try:
                if urllib.request.urlopen(f"http://{metrics}/readyz", timeout=2).status == 200:
                    break
            except Exception:
                pass
            time.sleep(0.05)
        ready = time.monotonic() - start
        text = urllib.request.urlopen(f"http://{metrics}/metrics").read().decode()
        workloads = sum(int(l.rsplit(" ", 1)[1]) for l in text.splitlines()
                        if l.startswith("inference_webhook_workloads{"))
        status = open(f"/proc/{proc.pid}/status").read()
        field = lambda k: next(l.split()[1] for l in status.splitlines() if l.startswith(k))
        print(f"objects={args.objects} inference_workloads_in_gauges={workloads} "
              f"ready_after={ready:.2f}s VmHWM={int(field('VmHWM:'))/1024:.1f}MB "
              f"VmRSS={int(field('VmRSS:'))/1024:.1f}MB")
        assert workloads == (args.objects + 1) // 2, "every vLLM Deployment is in the gauges"
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    sys.exit(main())
