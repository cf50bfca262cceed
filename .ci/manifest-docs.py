#!/usr/bin/env python3
"""Split rendered manifests for kubernetes-validate, and read values out of them.

  manifest-docs.py schema-only IN OUT   write to OUT the documents of IN that have a Kubernetes
                                        schema; name each skipped custom-resource document
  manifest-docs.py secret-field IN NAME KEY   print base64-decoded data[KEY] of Secret NAME
  manifest-docs.py ca-bundles IN        print every clientConfig.caBundle, one per line

Custom resources have no schema in kubernetes-validate; they are skipped by an explicit list of
kinds, so that any other kind without a schema still fails the check.
"""
import base64
import sys

import yaml

# (apiVersion, kind) of the custom resources the manifests render: cert-manager and the
# Prometheus Operator. Their CRDs are not part of Kubernetes' OpenAPI schemas.
CUSTOM_RESOURCE_KINDS = {
    ("cert-manager.io/v1", "Issuer"),
    ("cert-manager.io/v1", "Certificate"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}


def documents(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def schema_only(src, dst):
    kept = []
    for doc in documents(src):
        key = (doc.get("apiVersion"), doc.get("kind"))
        if key in CUSTOM_RESOURCE_KINDS:
            name = doc.get("metadata", {}).get("name")
            print(f"  skipped (custom resource, no schema): {key[1]} {key[0]} {name}")
        else:
            kept.append(doc)
    if not kept:
        sys.exit(f"{src}: no document to validate")
    with open(dst, "w", encoding="utf-8") as f:
        yaml.safe_dump_all(kept, f, sort_keys=False)


def secret_field(src, name, key):
    for doc in documents(src):
        if doc.get("kind") == "Secret" and doc["metadata"]["name"] == name:
            sys.stdout.write(base64.b64decode(doc["data"][key]).decode())
            return
    sys.exit(f"{src}: no Secret {name}")


def ca_bundles(src):
    for doc in documents(src):
        if doc.get("kind") in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
            for hook in doc.get("webhooks", []):
                print("".join(hook["clientConfig"].get("caBundle", "").split()))


if __name__ == "__main__":
    commands = {"schema-only": schema_only, "secret-field": secret_field, "ca-bundles": ca_bundles}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](*sys.argv[2:])
