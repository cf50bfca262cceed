#!/usr/bin/env python3
"""Generate a large multi-document YAML stream of inference workloads for benchmarking
`inference-webhook audit` (Python 3 standard library only, deterministic).

    python3 scripts/gen-manifests.py --count 10000 > /tmp/workloads.yaml   # about 50 MB

The mix: vLLM and SGLang Deployments and StatefulSets (some labeled, some not, some SGLang
without --enable-metrics), LeaderWorkerSets and RoleBasedGroups, plus a Service per five
workloads. Each workload carries the env, probes, resources and volumes that real manifests
have, so documents are about 5 KB.
"""

import argparse
import random
import sys

MODELS = [
    "Qwen/Qwen2.5-7B-Instruct",
    "meta-llama/Llama-3.1-8B-Instruct",
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B",
    "mistralai/Mistral-7B-Instruct-v0.3",
]


def env_block(rng, indent, n):
    pad = " " * indent
    lines = [f"{pad}env:"]
    for i in range(n):
        lines.append(f"{pad}- name: SETTING_{i}")
        lines.append(f'{pad}  value: "{rng.randrange(10**12):012d}-{"x" * rng.randrange(8, 40)}"')
    lines.append(f"{pad}- name: HF_TOKEN")
    lines.append(f"{pad}  valueFrom:")
    lines.append(f"{pad}    secretKeyRef: {{name: hf-token, key: token}}")
    return "\n".join(lines)


def container(rng, indent, engine, name, labeled_port, metrics):
    pad = " " * indent
    model = rng.choice(MODELS)
    if engine == "vllm":
        image = "vllm/vllm-openai:v0.10.0"
        port = rng.choice([8000, 8080])
        cmd = f'{pad}  command: ["/bin/sh", "-c"]\n{pad}  args: ["vllm serve {model} --port {port} --tensor-parallel-size 1 --max-model-len 8192"]'
    else:
        image = "lmsysorg/sglang:v0.4.9"
        port = 30000
        extra = ', "--enable-metrics"' if metrics else ""
        cmd = (
            f'{pad}  command: ["python3", "-m", "sglang.launch_server"]\n'
            f'{pad}  args: ["--model-path", "{model}", "--port", "{port}", "--tp", "1"{extra}]'
        )
    port_name = f"\n{pad}    name: http" if labeled_port else ""
    return f"""{pad}- name: {name}
{pad}  image: {image}
{cmd}
{pad}  ports:
{pad}  - containerPort: {port}{port_name}
{pad}    protocol: TCP
{env_block(rng, indent + 2, rng.randrange(36, 54))}
{pad}  resources:
{pad}    limits: {{nvidia.com/gpu: "1", cpu: "8", memory: 32Gi}}
{pad}    requests: {{nvidia.com/gpu: "1", cpu: "4", memory: 16Gi}}
{pad}  readinessProbe:
{pad}    httpGet: {{path: /health, port: {port}}}
{pad}    initialDelaySeconds: 60
{pad}    periodSeconds: 10
{pad}  volumeMounts:
{pad}  - {{name: cache, mountPath: /root/.cache/huggingface}}
{pad}  - {{name: shm, mountPath: /dev/shm}}"""


def pod_template(rng, indent, engine, workload, labeled, metrics, name="main"):
    pad = " " * indent
    labels = f"{pad}    app: {workload}"
    if labeled:
        labels += (
            f"\n{pad}    alibabacloud.com/inference-workload: {workload}"
            f"\n{pad}    alibabacloud.com/inference-backend: {engine}"
        )
    return f"""{pad}metadata:
{pad}  labels:
{labels}
{pad}spec:
{pad}  containers:
{container(rng, indent + 2, engine, name, labeled, metrics)}
{pad}  volumes:
{pad}  - name: cache
{pad}    persistentVolumeClaim: {{claimName: {workload}-cache}}
{pad}  - name: shm
{pad}    emptyDir: {{medium: Memory, sizeLimit: 16Gi}}"""


def workload(rng, i):
    engine = rng.choice(["vllm", "sglang"])
    labeled = rng.random() < 0.3
    metrics = rng.random() < 0.9
    ns = f"team-{i % 20}"
    name = f"{engine}-{i}"
    shape = rng.random()
    if shape < 0.7:
        kind = "Deployment" if shape < 0.5 else "StatefulSet"
        return f"""apiVersion: apps/v1
kind: {kind}
metadata:
  name: {name}
  namespace: {ns}
  annotations:
    owner: platform-team
spec:
  replicas: {rng.randrange(1, 4)}
  selector:
    matchLabels:
      app: {name}
  template:
{pod_template(rng, 4, engine, name, labeled, metrics)}
"""
    if shape < 0.85:
        return f"""apiVersion: leaderworkerset.x-k8s.io/v1
kind: LeaderWorkerSet
metadata:
  name: {name}
  namespace: {ns}
spec:
  replicas: 1
  leaderWorkerTemplate:
    size: 2
    workerTemplate:
{pod_template(rng, 6, engine, name, labeled, metrics)}
"""
    return f"""apiVersion: workloads.x-k8s.io/v1alpha2
kind: RoleBasedGroup
metadata:
  name: {name}
  namespace: {ns}
spec:
  roles:
  - name: inference
    replicas: 1
    standalonePattern:
      template:
{pod_template(rng, 8, engine, name, labeled, metrics)}
"""


def service(i):
    return f"""apiVersion: v1
kind: Service
metadata:
  name: svc-{i}
  namespace: team-{i % 20}
spec:
  selector: {{app: workload-{i}}}
  ports:
  - {{port: 80, targetPort: 8000}}
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10000, help="workload documents")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    out = sys.stdout
    for i in range(args.count):
        out.write("---\n# Source: chart/templates/workload.yaml\n")
        out.write(workload(rng, i))
        if i % 5 == 0:
            out.write("---\n")
            out.write(service(i))


if __name__ == "__main__":
    main()
