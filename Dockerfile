# syntax=docker/dockerfile:1
# Multi-stage build: a Rust builder, then a small non-root runtime with only the binary.
#   docker build -t inference-webhook:0.1.0 .
# The runtime image (distroless cc, Debian 12) has glibc and CA certificates, no shell, and runs
# as uid/gid 65532, which the manifests' securityContext also sets.

ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY benches benches
COPY src src
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin inference-webhook \
 && install -D -m 0755 target/release/inference-webhook /out/inference-webhook

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/inference-webhook /usr/local/bin/inference-webhook
USER 65532:65532
EXPOSE 8443 9090
ENTRYPOINT ["/usr/local/bin/inference-webhook"]
CMD ["serve"]
