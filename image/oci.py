#!/usr/bin/env python3
"""Writes the webhook's OCI image (one layer, FROM scratch) and its CycloneDX SBOM; see image/build.

Only the standard library: the layer is a tar written entry by entry with fixed owners, modes and
times, compressed by gzip with no name and mtime 0, so the digests depend on the file contents only.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import time
import uuid

NAME = "inference-webhook"
IMAGE_USER = "65532:65532"
# What the Dockerfile says (image/test checks that both agree).
ENTRYPOINT = ["/usr/local/bin/inference-webhook"]
CMD = ["serve"]
PORTS = ["8443/tcp", "9090/tcp"]
CA_FILE = "/etc/ssl/certs/ca-certificates.crt"
PASSWD = "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
GROUP = "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def linked_libraries(binary):
    """The files the dynamic loader opens for the binary: (path as linked, real file)."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True)
    if out.returncode != 0 and "not a dynamic executable" in (out.stdout + out.stderr):
        return []
    libs = []
    for line in out.stdout.splitlines():
        m = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
        if m:
            libs.append(m.group(1))
    if not libs:
        sys.exit(f"ldd found no libraries for {binary}:\n{out.stdout}{out.stderr}")
    return sorted(set(libs))


def debian_package(path):
    """(package, version) that owns a file, or None."""
    for candidate in (path, os.path.realpath(path)):
        out = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if out.returncode == 0:
            pkg = out.stdout.split(":", 1)[0].strip()
            ver = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True).stdout
            return pkg, ver
    return None


class Layer:
    def __init__(self, epoch):
        self.epoch = epoch
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)
        self.dirs = set()
        self.files = []

    def _info(self, name, kind, mode, uid=0, gid=0):
        info = tarfile.TarInfo(name.lstrip("/"))
        info.type = kind
        info.mode = mode
        info.uid, info.gid = uid, gid
        info.uname = info.gname = ""
        info.mtime = self.epoch
        return info

    def dir(self, path, mode=0o755, uid=0, gid=0):
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self.dirs:
                self.dirs.add(d)
                last = i == len(parts)
                self.tar.addfile(self._info(d + "/", tarfile.DIRTYPE, mode if last else 0o755, uid if last else 0, gid if last else 0))

    def file(self, path, data, mode=0o644):
        self.dir(os.path.dirname(path))
        info = self._info(path, tarfile.REGTYPE, mode)
        info.size = len(data)
        self.tar.addfile(info, io.BytesIO(data))
        self.files.append(path)

    def symlink(self, path, target):
        self.dir(os.path.dirname(path))
        info = self._info(path, tarfile.SYMTYPE, 0o777)
        info.linkname = target
        self.tar.addfile(info)

    def close(self):
        self.tar.close()
        raw = self.buf.getvalue()
        return raw, gzip.compress(raw, compresslevel=6, mtime=0)


def add_host_file(layer, path):
    """A host file at the same path; a symlink is kept as one and its target added too."""
    if os.path.islink(path):
        target = os.readlink(path)
        layer.symlink(path, target)
        add_host_file(layer, os.path.normpath(os.path.join(os.path.dirname(path), target)))
        return
    # /lib is a symlink to usr/lib on a merged-/usr host: store the file under the path asked for.
    with open(path, "rb") as f:
        layer.file(path, f.read(), 0o755 if os.access(path, os.X_OK) else 0o644)


def sbom(meta, layer_digest, manifest_created, version, source, debs):
    """CycloneDX 1.5: the crates compiled into the binary (normal dependencies reachable from the
    package, for linux x86_64) and the Debian packages whose files the image copies."""
    root_id = meta["resolve"]["root"] or next(p["id"] for p in meta["packages"] if p["name"] == NAME)
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    packages = {p["id"]: p for p in meta["packages"]}
    seen, stack = set(), [root_id]
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        for dep in nodes[pid]["deps"]:
            if any(k["kind"] is None for k in dep["dep_kinds"]):
                stack.append(dep["pkg"])

    def ref(p):
        return f"pkg:cargo/{p['name']}@{p['version']}"

    components, deps = [], []
    for pid in sorted(seen - {root_id}, key=lambda i: (packages[i]["name"], packages[i]["version"])):
        p = packages[pid]
        c = {"type": "library", "bom-ref": ref(p), "name": p["name"], "version": p["version"], "purl": ref(p)}
        if p.get("license"):
            c["licenses"] = [{"expression": p["license"]}]
        components.append(c)
    for pid in sorted(seen, key=lambda i: (packages[i]["name"], packages[i]["version"])):
        on = sorted({ref(packages[d["pkg"]]) for d in nodes[pid]["deps"] if any(k["kind"] is None for k in d["dep_kinds"])})
        deps.append({"ref": ref(packages[pid]), "dependsOn": on})
    for pkg, ver in sorted(debs):
        purl = f"pkg:deb/debian/{pkg}@{ver}?arch=amd64&distro=debian-12"
        components.append({"type": "library", "bom-ref": purl, "name": pkg, "version": ver, "purl": purl})
    root = packages[root_id]
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        # Derived from the layer, so that the SBOM is as reproducible as the image.
        "serialNumber": "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, layer_digest)),
        "version": 1,
        "metadata": {
            "timestamp": manifest_created,
            "tools": {"components": [{"type": "application", "name": "image/build (inference-webhook)"}]},
            "component": {
                "type": "container", "bom-ref": "image", "name": NAME, "version": version,
                "externalReferences": [{"type": "vcs", "url": source}],
                "components": [{"type": "application", "bom-ref": ref(root), "name": root["name"],
                                "version": root["version"], "purl": ref(root),
                                "licenses": [{"expression": root.get("license") or "NOASSERTION"}]}],
            },
        },
        "components": components,
        "dependencies": deps,
    }


def write_archive(archive, image_name, ref_name, epoch, raw, gz, annotations, runtime, created_by):
    """An OCI archive (the image layout as one tar) of a one-layer image; returns (digest, layer size)."""
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    config = {
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": runtime,
        "rootfs": {"type": "layers", "diff_ids": [sha256(raw)]},
        "history": [{"created": created, "created_by": created_by}],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256(config_bytes), "size": len(config_bytes)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": sha256(gz), "size": len(gz)}],
        "annotations": annotations,
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    digest = sha256(manifest_bytes)
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": manifest["mediaType"], "digest": digest, "size": len(manifest_bytes),
            "platform": {"architecture": "amd64", "os": "linux"},
            # containerd (`ctr images import`) names the image by the first, skopeo/umoci by the second.
            "annotations": {"io.containerd.image.name": image_name,
                            "org.opencontainers.image.ref.name": ref_name},
        }],
    }
    index_bytes = json.dumps(index, sort_keys=True, separators=(",", ":")).encode()
    with open(archive + ".tmp", "wb") as f:
        t = tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT)

        def add(name, data=None):
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = epoch, 0, 0, "", ""
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                t.addfile(info)
            else:
                info.mode, info.size = 0o644, len(data)
                t.addfile(info, io.BytesIO(data))

        add("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        add("index.json", index_bytes)
        add("blobs/")
        add("blobs/sha256/")
        for data in sorted([config_bytes, manifest_bytes, gz], key=sha256):
            add("blobs/sha256/" + sha256(data)[7:], data)
        t.close()
    os.replace(archive + ".tmp", archive)
    return digest, len(gz)


def simple():
    """`oci.py simple`: a one-layer image of a few files, for the e2e node (pause, stand-in engine)."""
    ap = argparse.ArgumentParser(prog="oci.py simple")
    ap.add_argument("--name", required=True, help="full image name, e.g. registry.k8s.io/pause:3.10.2")
    ap.add_argument("--out", required=True, help="the OCI archive to write")
    ap.add_argument("--file", action="append", default=[], help="SRC:DEST, executable")
    ap.add_argument("--entrypoint", action="append", default=[])
    ap.add_argument("--user", default="65534:65534")
    ap.add_argument("--epoch", type=int, default=0)
    a = ap.parse_args(sys.argv[2:])
    layer = Layer(a.epoch)
    for spec in a.file:
        src, dest = spec.split(":", 1)
        with open(src, "rb") as f:
            layer.file(dest, f.read(), 0o755)
    layer.dir("/tmp", 0o1777)
    raw, gz = layer.close()
    runtime = {"User": a.user, "WorkingDir": "/"}
    if a.entrypoint:
        runtime["Entrypoint"] = a.entrypoint
    digest, _ = write_archive(a.out, a.name, a.name.rsplit(":", 1)[-1], a.epoch, raw, gz, {}, runtime,
                              "image/oci.py simple")
    print(f"image {a.name} {digest}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--epoch", type=int, required=True)
    ap.add_argument("--revision", required=True)
    ap.add_argument("--metadata", required=True)
    a = ap.parse_args()
    with open(a.metadata) as f:
        meta = json.load(f)
    root = next(p for p in meta["packages"] if p["name"] == NAME)
    version, source, license_ = root["version"], root["repository"], root.get("license", "")
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(a.epoch))

    layer = Layer(a.epoch)
    with open(a.binary, "rb") as f:
        layer.file(ENTRYPOINT[0], f.read(), 0o755)
    libs = linked_libraries(a.binary)
    for lib in libs:
        add_host_file(layer, lib)
    add_host_file(layer, CA_FILE)
    layer.file("/etc/passwd", PASSWD.encode())
    layer.file("/etc/group", GROUP.encode())
    layer.dir("/home/nonroot", 0o700, 65532, 65532)
    layer.dir("/tmp", 0o1777)
    raw, gz = layer.close()
    layer_digest = sha256(gz)

    annotations = {
        "org.opencontainers.image.title": NAME,
        "org.opencontainers.image.description": root.get("description", ""),
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.source": source,
        "org.opencontainers.image.revision": a.revision,
        "org.opencontainers.image.created": created,
        "org.opencontainers.image.licenses": license_,
        "org.opencontainers.image.base.name": "scratch",
    }
    archive = os.path.join(a.out, f"{NAME}-{version}.oci.tar")
    digest, size = write_archive(
        archive, f"docker.io/library/{NAME}:{version}", version, a.epoch, raw, gz, annotations,
        {"User": IMAGE_USER, "ExposedPorts": {p: {} for p in PORTS},
         "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", f"SSL_CERT_FILE={CA_FILE}"],
         "Entrypoint": ENTRYPOINT, "Cmd": CMD, "WorkingDir": "/", "Labels": annotations},
        "image/build: " + ", ".join([ENTRYPOINT[0]] + libs + [CA_FILE, "/etc/passwd", "/etc/group"]))
    debs = {d for d in (debian_package(p) for p in libs) if d}
    # The bundle is generated by update-ca-certificates from the ca-certificates package's files.
    ca_version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "ca-certificates"],
                                capture_output=True, text=True).stdout
    if ca_version:
        debs.add(("ca-certificates", ca_version))
    bom = sbom(meta, layer_digest, created, version, source, debs)
    with open(os.path.join(a.out, f"{NAME}-{version}.cdx.json"), "w") as f:
        json.dump(bom, f, indent=2, sort_keys=True)
        f.write("\n")
    with open(os.path.join(a.out, "digest"), "w") as f:
        f.write(digest + "\n")
    os.remove(a.metadata)
    print(f"image {NAME}:{version} {digest} ({size} bytes compressed, {len(layer.files)} files)")
    print(f"  {archive}")
    print(f"  {os.path.join(a.out, f'{NAME}-{version}.cdx.json')} ({len(bom['components'])} components)")


if __name__ == "__main__":
    simple() if sys.argv[1:2] == ["simple"] else main()
