#!/usr/bin/env python3
"""Kubernetes pod discovery for a Prometheus built without it (Debian's prometheus package drops
the kubernetes_sd_configs mechanism): every 2 s, the pods listed by the API server (kubectl) are
written as a file_sd target file with the __meta_kubernetes_pod_* labels that Prometheus's
Kubernetes discovery (role: pod) gives them: one target per container port, podIP:port.
The operator's relabelings then select and label them as they would. Usage: pod_sd.py KUBECTL OUT
"""
import json
import os
import re
import subprocess
import sys
import time


def sanitize(name):
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def targets(pods):
    out = []
    for pod in pods["items"]:
        meta, spec, status = pod["metadata"], pod["spec"], pod.get("status", {})
        ip = status.get("podIP")
        if not ip:
            continue
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))
        base = {
            "__meta_kubernetes_namespace": meta["namespace"],
            "__meta_kubernetes_pod_name": meta["name"],
            "__meta_kubernetes_pod_ip": ip,
            "__meta_kubernetes_pod_uid": meta["uid"],
            "__meta_kubernetes_pod_node_name": spec.get("nodeName", ""),
            "__meta_kubernetes_pod_host_ip": status.get("hostIP", ""),
            "__meta_kubernetes_pod_phase": status.get("phase", ""),
            "__meta_kubernetes_pod_ready": "true" if ready else "false",
        }
        for k, v in (meta.get("labels") or {}).items():
            base[f"__meta_kubernetes_pod_label_{sanitize(k)}"] = v
            base[f"__meta_kubernetes_pod_labelpresent_{sanitize(k)}"] = "true"
        for k, v in (meta.get("annotations") or {}).items():
            base[f"__meta_kubernetes_pod_annotation_{sanitize(k)}"] = v
            base[f"__meta_kubernetes_pod_annotationpresent_{sanitize(k)}"] = "true"
        for ref in meta.get("ownerReferences") or []:
            if ref.get("controller"):
                base["__meta_kubernetes_pod_controller_kind"] = ref["kind"]
                base["__meta_kubernetes_pod_controller_name"] = ref["name"]
        for c in spec.get("containers", []):
            for p in c.get("ports") or []:
                labels = dict(base)
                labels.update({
                    "__meta_kubernetes_pod_container_name": c["name"],
                    "__meta_kubernetes_pod_container_image": c.get("image", ""),
                    "__meta_kubernetes_pod_container_init": "false",
                    "__meta_kubernetes_pod_container_port_name": p.get("name", ""),
                    "__meta_kubernetes_pod_container_port_number": str(p["containerPort"]),
                    "__meta_kubernetes_pod_container_port_protocol": p.get("protocol", "TCP"),
                })
                out.append({"targets": [f"{ip}:{p['containerPort']}"], "labels": labels})
    return out


def main():
    kubectl, path = sys.argv[1], sys.argv[2]
    while True:
        r = subprocess.run([kubectl, "get", "pods", "-A", "-o", "json"], capture_output=True, text=True)
        if r.returncode == 0:
            text = json.dumps(targets(json.loads(r.stdout)), sort_keys=True)
            if not os.path.exists(path) or open(path).read() != text:
                with open(path + ".tmp", "w") as f:
                    f.write(text)
                os.replace(path + ".tmp", path)
        time.sleep(2)


if __name__ == "__main__":
    main()
