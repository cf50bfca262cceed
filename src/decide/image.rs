//! Container image references: `[registry[:port]/]path[:tag][@digest]`, with Docker Hub's implicit
//! `docker.io` registry and `library/` namespace.

/// A parsed image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ImageRef {
    pub registry: String,
    /// Repository path without the registry, e.g. `vllm/vllm-openai`, `library/nginx`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    /// The last path component: the name mirrors keep (`vllm-openai`).
    pub(super) fn name(&self) -> &str {
        self.repository
            .rsplit('/')
            .next()
            .unwrap_or(&self.repository)
    }

    /// The `major.minor.patch` version the tag starts with (`v0.10.2`, `0.11.0-cu12`; `v1.2` is
    /// `1.2.0`); `None` for `latest`, no tag, or a tag that is not a version.
    pub(super) fn version(&self) -> Option<(u32, u32, u32)> {
        let tag = self.tag.as_deref()?;
        let mut parts = tag.strip_prefix('v').unwrap_or(tag).splitn(3, '.');
        let number = |part: Option<&str>| -> Option<u32> {
            let part = part?;
            let digits = part
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(part.len());
            part[..digits].parse().ok()
        };
        let major = parts
            .next()
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()));
        let (major, minor) = (number(major)?, number(parts.next())?);
        Some((major, minor, number(parts.next()).unwrap_or(0)))
    }
}

/// Parse an image reference; `None` when it is not one (empty, placeholders such as `<image>`).
pub(super) fn parse(reference: &str) -> Option<ImageRef> {
    let reference = reference.trim();
    if reference.is_empty() {
        return None;
    }
    let (rest, digest) = match reference.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (reference, None),
    };
    if let Some(d) = digest {
        let valid = d.split_once(':').is_some_and(|(alg, hex)| {
            !alg.is_empty() && !hex.is_empty() && hex.bytes().all(|c| c.is_ascii_hexdigit())
        });
        if !valid {
            return None;
        }
    }
    // A tag is after the last ':' that comes after the last '/' (a registry port comes before).
    let last_slash = rest.rfind('/');
    let (name, tag) = match rest.rfind(':') {
        Some(colon) if last_slash.is_none_or(|s| colon > s) => {
            (&rest[..colon], Some(&rest[colon + 1..]))
        }
        _ => (rest, None),
    };
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && t.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
        if !ok {
            return None;
        }
    }
    let (registry, path) = match name.split_once('/') {
        Some((first, path))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first.to_string(), path.to_string())
        }
        _ => ("docker.io".to_string(), name.to_string()),
    };
    let path_ok = !path.is_empty()
        && path.split('/').all(|part| {
            !part.is_empty()
                // Upper case is not valid in a pullable reference, but manifests carry template
                // placeholders (`PROJECT_ID/optimum-tpu/tgi-tpu`) filled in before they apply.
                && part.bytes().all(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-')
                })
        });
    if !path_ok {
        return None;
    }
    let repository = if registry == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    Some(ImageRef {
        registry,
        repository,
        tag: tag.map(str::to_string),
        digest: digest.map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(r: &str, repo: &str, tag: Option<&str>) -> Option<ImageRef> {
        Some(ImageRef {
            registry: r.into(),
            repository: repo.into(),
            tag: tag.map(Into::into),
            digest: None,
        })
    }

    #[test]
    fn docker_hub_defaults_are_implicit() {
        assert_eq!(parse("nginx"), image("docker.io", "library/nginx", None));
        assert_eq!(
            parse("vllm/vllm-openai:v0.10.0"),
            image("docker.io", "vllm/vllm-openai", Some("v0.10.0"))
        );
        assert_eq!(
            parse("docker.io/lmsysorg/sglang:latest"),
            image("docker.io", "lmsysorg/sglang", Some("latest"))
        );
    }

    #[test]
    fn registries_with_ports_and_digests_parse() {
        let r = parse("registry.example.com:5000/team/vllm-openai:v0.10.0@sha256:abcdef01")
            .expect("valid reference");
        assert_eq!(r.registry, "registry.example.com:5000");
        assert_eq!(r.repository, "team/vllm-openai");
        assert_eq!(r.name(), "vllm-openai");
        assert_eq!(r.tag.as_deref(), Some("v0.10.0"));
        assert_eq!(r.digest.as_deref(), Some("sha256:abcdef01"));
        let r = parse("localhost:5000/vllm").expect("valid reference");
        assert_eq!((r.registry.as_str(), r.tag), ("localhost:5000", None));
        let r = parse("localhost/x/y:1").expect("valid reference");
        assert_eq!(r.registry, "localhost");
    }

    #[test]
    fn a_tag_gives_the_version_it_starts_with() {
        let version = |r: &str| parse(r).and_then(|i| i.version());
        assert_eq!(version("openmmlab/lmdeploy:v0.10.2"), Some((0, 10, 2)));
        assert_eq!(
            version("openmmlab/lmdeploy:0.11.0-cu12.8"),
            Some((0, 11, 0))
        );
        assert_eq!(version("registry:5000/team/lmdeploy:v1.2"), Some((1, 2, 0)));
        assert_eq!(version("kube-ai/lmdeploy:v0.4.2"), Some((0, 4, 2)));
        for none in [
            "lmdeploy",
            "lmdeploy:latest",
            "lmdeploy:v1",
            "lmdeploy:cu12-0.11",
            "lmdeploy:x1.2",
        ] {
            assert_eq!(version(none), None, "{none}");
        }
    }

    #[test]
    fn placeholders_and_garbage_are_not_images() {
        for bad in ["", "<image>", "a//b", "x:", "x@sha256:zz", "a b"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
