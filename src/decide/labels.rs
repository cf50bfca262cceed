//! Kubernetes naming rules for label keys, label values and port names, and the deterministic
//! short form of a workload name that does not fit a label value.

use sha2::{Digest, Sha256};

const MAX_LABEL_VALUE: usize = 63;

/// A label value: empty, or at most 63 characters of `[A-Za-z0-9._-]` that start and end
/// alphanumeric.
pub(super) fn is_label_value(v: &str) -> bool {
    if v.is_empty() {
        return true;
    }
    let b = v.as_bytes();
    b.len() <= MAX_LABEL_VALUE
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A qualified name: `[prefix/]name`, prefix a DNS subdomain, name a non-empty label value.
pub(super) fn is_qualified_name(key: &str) -> bool {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|part| {
                let b = part.as_bytes();
                !b.is_empty()
                    && b.len() <= 63
                    && b[0].is_ascii_alphanumeric()
                    && b[b.len() - 1].is_ascii_alphanumeric()
                    && b.iter()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            })
    });
    prefix_ok && !name.is_empty() && is_label_value(name)
}

/// An IANA_SVC_NAME: 1–15 of `[a-z0-9-]`, at least one letter, no leading, trailing or double `-`.
pub(super) fn is_port_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 15
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b.iter().any(|c| c.is_ascii_lowercase())
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
        && !name.contains("--")
}

/// The workload label value for an object name: the name itself when it is a valid, non-empty
/// label value, otherwise a deterministic short form — the name's valid characters cut to fit,
/// then `-` and the first 8 hex digits of its SHA-256. The flag says whether it was shortened.
pub(super) fn workload_value(name: &str) -> (String, bool) {
    if !name.is_empty() && is_label_value(name) {
        return (name.to_string(), false);
    }
    let digest = Sha256::digest(name.as_bytes());
    let hash: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    let keep = MAX_LABEL_VALUE - hash.len() - 1;
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(keep)
        .collect();
    let stem = cleaned.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let value = if stem.is_empty() {
        hash
    } else {
        format!("{stem}-{hash}")
    };
    (value, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_follow_kubernetes_rules() {
        assert!(is_label_value("vllm-pd"));
        assert!(is_label_value(""));
        assert!(!is_label_value("-x"));
        assert!(!is_label_value("x-"));
        assert!(!is_label_value("a b"));
        assert!(!is_label_value(&"a".repeat(64)));
        assert!(is_label_value(&"a".repeat(63)));
    }

    #[test]
    fn qualified_names_need_a_dns_prefix() {
        assert!(is_qualified_name("alibabacloud.com/inference-workload"));
        assert!(is_qualified_name("alibabacloud.com/inference_backend"));
        assert!(is_qualified_name("inference-monitoring"));
        assert!(!is_qualified_name("Bad_Prefix/x"));
        assert!(!is_qualified_name("a/"));
        assert!(!is_qualified_name("/a"));
    }

    #[test]
    fn port_names_are_iana_service_names() {
        assert!(is_port_name("http"));
        assert!(is_port_name("http-metrics"));
        assert!(!is_port_name("HTTP"));
        assert!(!is_port_name("8080"));
        assert!(!is_port_name("a--b"));
        assert!(!is_port_name("this-name-is-too-long"));
    }

    #[test]
    fn long_names_get_a_stable_valid_short_form() {
        let long = format!("{}-inference", "very-long-model-name".repeat(4));
        let (v1, shortened) = workload_value(&long);
        let (v2, _) = workload_value(&long);
        assert!(shortened);
        assert_eq!(v1, v2);
        assert!(v1.len() <= 63 && is_label_value(&v1), "{v1}");
        let (other, _) = workload_value(&format!("{long}x"));
        assert_ne!(v1, other, "different names must not collide on the cut");
        assert_eq!(workload_value("vllm"), ("vllm".to_string(), false));
    }
}
