//! Paths into a JSON object: as RFC 6901 pointers for patches, and in the dotted form people
//! read in messages (`spec.template.metadata.labels["alibabacloud.com/inference-workload"]`).

use std::borrow::Cow;
use std::fmt::Write as _;

use super::json::Json;

/// One step of a path. Keys are mostly the kind table's and the contract's own words, borrowed
/// for good: cloning a path copies no strings.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum Tok {
    Key(Cow<'static, str>),
    Index(usize),
    /// The end of a list, where `add` appends (`-`).
    Append,
}

pub(super) type Path = Vec<Tok>;

/// Extend a path with dotted keys (`templateRef.patch`); `""` is the base itself.
pub(super) fn join(base: &[Tok], dotted: &'static str) -> Path {
    let mut p = base.to_vec();
    p.extend(
        dotted
            .split('.')
            .filter(|k| !k.is_empty())
            .map(|k| Tok::Key(Cow::Borrowed(k))),
    );
    p
}

pub(super) fn key(base: &[Tok], k: impl Into<Cow<'static, str>>) -> Path {
    let mut p = base.to_vec();
    p.push(Tok::Key(k.into()));
    p
}

/// The RFC 6901 pointer of a path: inside a token, `~` is written `~0` and `/` is written `~1`.
pub(super) fn pointer(path: &[Tok]) -> String {
    let mut out = String::with_capacity(path.len() * 12);
    for t in path {
        out.push('/');
        match t {
            Tok::Key(k) => {
                let mut rest: &str = k;
                while let Some(i) = rest.bytes().position(|b| b == b'~' || b == b'/') {
                    out.push_str(&rest[..i]);
                    out.push_str(if rest.as_bytes()[i] == b'~' {
                        "~0"
                    } else {
                        "~1"
                    });
                    rest = &rest[i + 1..];
                }
                out.push_str(rest);
            }
            // Writing into a String cannot fail.
            Tok::Index(i) => {
                let _ = write!(out, "{i}");
            }
            Tok::Append => out.push('-'),
        }
    }
    out
}

pub(super) fn display(path: &[Tok]) -> String {
    let mut out = String::with_capacity(path.len() * 12);
    for t in path {
        // Writing into a String cannot fail.
        let _ = match t {
            Tok::Key(k) if k.contains(['.', '/']) => write!(out, "[{k:?}]"),
            Tok::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
                Ok(())
            }
            Tok::Index(i) => write!(out, "[{i}]"),
            Tok::Append => {
                out.push_str("[+]");
                Ok(())
            }
        };
    }
    out
}

/// The value at a path, if every step exists.
pub(super) fn get<'v, 'a>(v: &'v Json<'a>, path: &[Tok]) -> Option<&'v Json<'a>> {
    path.iter().try_fold(v, |cur, t| match t {
        Tok::Key(k) => cur.as_object()?.get(k),
        Tok::Index(i) => cur.as_array()?.get(*i),
        Tok::Append => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_escape_and_displays_read_well() {
        let p = vec![
            Tok::Key("spec".into()),
            Tok::Key("containers".into()),
            Tok::Index(0),
            Tok::Key("metadata".into()),
            Tok::Key("a/b~c".into()),
            Tok::Append,
        ];
        assert_eq!(pointer(&p), "/spec/containers/0/metadata/a~1b~0c/-");
        let label = [Tok::Key("alibabacloud.com/inference-workload".into())];
        assert_eq!(pointer(&label), "/alibabacloud.com~1inference-workload");
        assert_eq!(display(&p), "spec.containers[0].metadata[\"a/b~c\"][+]");
    }
}
