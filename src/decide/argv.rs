//! The effective command line of a container: `command` + `args` after Kubernetes' `$(VAR)`
//! expansion, with shell scripts given to `sh -c` / `bash -c` read as a shell would split them,
//! and each simple command normalised (`exec`, `env VAR=x`, assignments, `python -m module`).
//!
//! This is a reader, not a shell: it never evaluates anything. Variables that cannot be known
//! statically stay as written (`$PORT`), so whoever reads a flag can say why it is unresolved.

use std::cell::Cell;

use super::Map;
use super::catalogue::{CATALOGUE, WRAPPERS};
use super::json::Json;

/// How deep `sh -c "bash -c '...'"` nesting is followed.
const MAX_SHELL_DEPTH: usize = 4;

/// Bytes that substitutions may produce for one container, in all. A chain of variables that
/// each repeat the one before (`B=$(A)$(A)`, `C=$(B)$(B)`, ...) doubles at every link: without
/// a bound, a few hundred bytes of env or script expand to gigabytes.
const EXPANSION_BUDGET: usize = 64 * 1024;

/// Environment a front door knows besides the object: ConfigMaps of the same input, by
/// namespace and name (the audit command reads them; the webhook has none). `envFrom` and
/// `valueFrom.configMapKeyRef` resolve from here.
#[derive(Clone, Debug, Default)]
pub struct KnownSources {
    config_maps: Map<(String, String), Map<String, String>>,
}

impl KnownSources {
    /// Record a ConfigMap object (`kind: ConfigMap`); other objects are ignored.
    pub fn add(&mut self, object: &serde_json::Value) {
        if object.get("kind").and_then(|k| k.as_str()) != Some("ConfigMap") {
            return;
        }
        let meta = object.get("metadata");
        let field = |k: &str| meta.and_then(|m| m.get(k)).and_then(|v| v.as_str());
        let Some(name) = field("name") else { return };
        let data = object
            .get("data")
            .and_then(|d| d.as_object())
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
            .collect();
        let namespace = field("namespace").unwrap_or_default().to_string();
        self.config_maps.insert((namespace, name.to_string()), data);
    }

    fn config_map(&self, namespace: &str, name: &str) -> Option<&Map<String, String>> {
        self.config_maps
            .get(&(namespace.to_string(), name.to_string()))
    }
}

/// Variables visible to a container's processes: literal `env` values, values from known
/// ConfigMaps, and script assignments.
#[derive(Clone, Debug)]
pub(super) struct Vars {
    values: Map<String, String>,
    /// Names whose value comes from somewhere this review cannot see (`valueFrom`).
    unseen: Vec<String>,
    /// The container takes variables from an `envFrom` source this review cannot see.
    unseen_env_from: bool,
    /// What is left of [`EXPANSION_BUDGET`].
    budget: Cell<usize>,
    /// Files the container sees from known ConfigMaps, by absolute path ([`Vars::mount_files`]).
    files: Map<String, String>,
    /// How many `if`/`while`/`until` blocks of a script the reader is in: an assignment there
    /// may not run.
    branches: usize,
    /// The positional parameters of the script being read (`$0` first): the words after
    /// `sh -c SCRIPT`, where Kubernetes puts the container's `args`. `None` outside such a
    /// script, where `$1` and `"$@"` stay as written.
    positional: Option<Vec<String>>,
}

impl Default for Vars {
    fn default() -> Vars {
        Vars {
            values: Map::default(),
            unseen: Vec::new(),
            unseen_env_from: false,
            budget: Cell::new(EXPANSION_BUDGET),
            files: Map::default(),
            branches: 0,
            positional: None,
        }
    }
}

impl Vars {
    /// Build from a container's `envFrom` and `env` (which wins, as in the kubelet), resolving
    /// ConfigMaps of `known` in `namespace`. Each literal `env` value may use `$(NAME)` of the
    /// variables defined before it, as the kubelet does (so references cannot loop).
    pub(super) fn from_container(
        env: Option<&Json<'_>>,
        env_from: Option<&Json<'_>>,
        known: Option<(&KnownSources, &str)>,
    ) -> Vars {
        let mut vars = Vars::default();
        for source in env_from.and_then(|e| e.as_array()).into_iter().flatten() {
            let map = source
                .get("configMapRef")
                .and_then(|r| r.get("name"))
                .and_then(|n| n.as_str())
                .and_then(|name| known.and_then(|(k, ns)| k.config_map(ns, name)));
            let Some(map) = map else {
                vars.unseen_env_from = true;
                continue;
            };
            let prefix = source
                .get("prefix")
                .and_then(|p| p.as_str())
                .unwrap_or_default();
            for (k, v) in map {
                vars.values.insert(format!("{prefix}{k}"), v.clone());
            }
        }
        let Some(list) = env.and_then(|e| e.as_array()) else {
            return vars;
        };
        for item in list {
            let Some(name) = item.get("name").and_then(|n| n.as_str()) else {
                continue;
            };
            let value = match item.get("value").and_then(|v| v.as_str()) {
                Some(v) => Some(kube_expand(v, &vars)),
                None => item
                    .get("valueFrom")
                    .and_then(|f| f.get("configMapKeyRef"))
                    .and_then(|r| {
                        let (map, key) = (r.get("name")?.as_str()?, r.get("key")?.as_str()?);
                        let (k, ns) = known?;
                        k.config_map(ns, map)?.get(key).cloned()
                    }),
            };
            match value {
                Some(v) => {
                    vars.values.insert(name.to_string(), v);
                }
                None if item.get("valueFrom").is_some() => {
                    vars.values.remove(name);
                    vars.unseen.push(name.to_string());
                }
                None => {}
            }
        }
        vars
    }

    /// Add the files the container's `volumeMounts` of `configMap` volumes show, from the
    /// ConfigMaps of `known` (a front door that read them: the audit): a whole ConfigMap is a
    /// file per key under the mount path (or per `items` path), a `subPath` mount is one key.
    /// A script the container runs from one is then read like `sh -c` ([`split_script`]).
    pub(super) fn mount_files(
        &mut self,
        mounts: Option<&Json<'_>>,
        volumes: Option<&Json<'_>>,
        known: Option<(&KnownSources, &str)>,
    ) {
        let Some((known, namespace)) = known else {
            return;
        };
        fn text<'j>(j: &'j Json<'_>, key: &str) -> Option<&'j str> {
            j.get(key).and_then(Json::as_str)
        }
        for mount in mounts.and_then(Json::as_array).into_iter().flatten() {
            let (Some(at), Some(volume)) = (text(mount, "mountPath"), text(mount, "name")) else {
                continue;
            };
            let source = volumes
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
                .filter(|v| text(v, "name") == Some(volume))
                .find_map(|v| v.get("configMap"));
            let Some(map) = source
                .and_then(|s| text(s, "name"))
                .and_then(|name| known.config_map(namespace, name))
            else {
                continue;
            };
            let at = at.trim_end_matches('/');
            if let Some(key) = text(mount, "subPath").filter(|k| !k.is_empty()) {
                if let Some(content) = map.get(key) {
                    self.files.insert(at.to_string(), content.clone());
                }
                continue;
            }
            let items: Vec<(&str, &str)> = source
                .and_then(|s| s.get("items"))
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
                .filter_map(|i| Some((text(i, "key")?, text(i, "path")?)))
                .collect();
            for (key, content) in map {
                let path = if items.is_empty() {
                    Some(key.as_str())
                } else {
                    items.iter().find(|(k, _)| k == key).map(|(_, p)| *p)
                };
                if let Some(path) = path {
                    self.files.insert(format!("{at}/{path}"), content.clone());
                }
            }
        }
    }

    /// The text of a file the container sees from a known ConfigMap.
    fn file(&self, path: &str) -> Option<String> {
        self.files.get(path).cloned()
    }

    /// Whether a variable's value may be set where this review cannot see: it comes from
    /// `valueFrom`, or it is unset while an unseen `envFrom` source may set it.
    pub(super) fn may_be_unseen(&self, name: &str) -> bool {
        self.unseen.iter().any(|n| n == name) || (self.unseen_env_from && self.get(name).is_none())
    }

    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The value to substitute for a reference while the expansion budget lasts; past it the
    /// reference stays as written, like one whose value cannot be known.
    fn substitute(&self, name: &str) -> Option<&str> {
        let value = self.get(name)?;
        let left = self.budget.get().checked_sub(value.len())?;
        self.budget.set(left);
        Some(value)
    }

    /// A script's assignment. Inside a branch, one that gives a variable another number than it
    /// has makes it unknown: which holds depends on a condition the review cannot evaluate
    /// (`if [ $RANK = 0 ]; then PORT=8100; else PORT=8200; fi`), and ports and ranks must be
    /// exact. Other values keep the last one: branches that pick a KV role or a model name read
    /// alike for detection.
    fn set(&mut self, name: &str, value: String) {
        if self.unseen.iter().any(|n| n == name) {
            return;
        }
        let number = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
        let conflicting = self.branches > 0
            && number(&value)
            && self.get(name).is_some_and(|v| v != value && number(v));
        if conflicting {
            self.values.remove(name);
            self.unseen.push(name.to_string());
        } else {
            self.values.insert(name.to_string(), value);
        }
    }

    /// A shell keyword at the start of a command: blocks that may not run open and close.
    fn keyword(&mut self, word: &str) {
        match word {
            "if" | "while" | "until" => self.branches += 1,
            "fi" | "done" => self.branches = self.branches.saturating_sub(1),
            _ => {}
        }
    }
}

/// Kubernetes' expansion of `$(NAME)` in `command`, `args` and `env`: known names are replaced,
/// unknown ones stay as written, and `$$` stands for a literal `$`.
pub(super) fn kube_expand(text: &str, vars: &Vars) -> String {
    if !text.contains('$') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(end) => {
                    let name = &inner[..end];
                    match vars.substitute(name) {
                        Some(v) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &inner[end + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = inner;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// What a simple command runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invocation {
    /// A program, by the last component of its path (`vllm`, `tritonserver`).
    Program(String),
    /// `python -m MODULE`.
    Module(String),
    /// A script file run by an interpreter, by its path as written (`./server.py`,
    /// `/workspace/multi-node-serving.sh`); [`Cmd::describe`] shows its file name.
    Script(String),
}

/// A flag's value as given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlagValue<'f, 'c> {
    pub flag: &'f str,
    pub value: &'c str,
    /// In the flag's own word (`--port=8080`, `-p8080`), not the next one.
    pub joined: bool,
}

/// One simple command of the container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cmd {
    pub invocation: Invocation,
    pub args: Vec<String>,
}

impl Cmd {
    /// The value of a flag: `--flag V` or `--flag=V` (the last one wins, like argparse).
    pub fn flag(&self, flag: &str) -> Option<&str> {
        self.last_flag(&[flag]).map(|f| f.value)
    }

    /// The last of `flags` given, with its value: aliases of one option (`--port`, `-p`) set
    /// it in turn, and the parsers (argparse, clap, getopt) keep the last.
    pub fn first_flag<'f>(&self, flags: &[&'f str]) -> Option<(&'f str, &str)> {
        self.last_flag(flags).map(|f| (f.flag, f.value))
    }

    /// The last of `flags` given: `--flag V`, `--flag=V`, or a short flag's attached value
    /// (`-p8080`, as clap and getopt read it).
    pub fn last_flag<'f>(&self, flags: &[&'f str]) -> Option<FlagValue<'f, '_>> {
        let mut found = None;
        let mut it = self.args.iter();
        while let Some(a) = it.next() {
            for &flag in flags {
                if a == flag {
                    if let Some(v) = it.clone().next() {
                        found = Some(FlagValue {
                            flag,
                            value: v,
                            joined: false,
                        });
                    }
                } else if let Some(rest) = a.strip_prefix(flag) {
                    let short = !flag.starts_with("--") && flag.len() == 2;
                    let value = match rest.strip_prefix('=') {
                        Some(v) => v,
                        None if short && !rest.is_empty() => rest,
                        None => continue,
                    };
                    found = Some(FlagValue {
                        flag,
                        value,
                        joined: true,
                    });
                }
            }
        }
        found
    }

    /// Whether this runs `program` (by name), with `sub` as its first argument when given
    /// (`vllm serve`, `ray start`).
    pub fn runs(&self, program: &str, sub: Option<&str>) -> bool {
        matches!(&self.invocation, Invocation::Program(p) if p == program)
            && sub.is_none_or(|s| self.args.first().is_some_and(|a| a == s))
    }

    /// Whether a flag is present, with or without a value.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.args
            .iter()
            .any(|a| a == flag || a.strip_prefix(flag).is_some_and(|r| r.starts_with('=')))
    }

    /// The first argument that is not a flag.
    pub fn first_positional(&self) -> Option<&str> {
        self.args
            .iter()
            .map(String::as_str)
            .find(|a| !a.starts_with('-'))
    }

    /// A short human form for evidence: `vllm serve`, `python -m sglang.launch_server`.
    pub fn describe(&self) -> String {
        match &self.invocation {
            Invocation::Program(p) => match self.args.first() {
                Some(sub) if !sub.starts_with('-') && sub.len() <= 24 => format!("{p} {sub}"),
                _ => p.clone(),
            },
            Invocation::Module(m) => format!("python -m {m}"),
            Invocation::Script(s) => match self.first_positional() {
                Some(a) if a.len() <= 24 => format!("{} {a}", basename(s)),
                _ => basename(s).to_string(),
            },
        }
    }
}

/// The simple commands a container runs, in order, from its `command` and `args`.
/// `vars` gains the assignments the scripts make.
pub(super) fn commands(command: &[&str], args: &[&str], vars: &mut Vars) -> Vec<Cmd> {
    let words: Vec<String> = command
        .iter()
        .chain(args)
        .map(|w| kube_expand(w, vars))
        .collect();
    let mut out = Vec::new();
    expand(words, vars, 0, &mut out);
    out
}

/// Normalise one simple command, following shells into their scripts.
fn expand(mut words: Vec<String>, vars: &mut Vars, depth: usize, out: &mut Vec<Cmd>) {
    let Some((start, program)) = program_start(&words, vars) else {
        return;
    };
    if let Some(script) = vars.file(program) {
        return run_file(&script, words[start..].to_vec(), vars, depth, out);
    }
    let base = basename(program).to_string();
    // The words after the program move into what is built from them: no copies.
    let rest = words.split_off(start + 1);
    if is_shell(&base) {
        expand_shell(rest, vars, depth, out);
    } else if is_python(&base) {
        out.extend(python(rest));
    } else {
        out.push(Cmd {
            invocation: Invocation::Program(base),
            args: rest,
        });
    }
}

/// `python [options] -m module args...` or `python [options] script args...`; `python -c`
/// runs no file this reader can name.
fn python(mut rest: Vec<String>) -> Option<Cmd> {
    let mut i = 0;
    while let Some(w) = rest.get(i) {
        match w.as_str() {
            "-m" => {
                let args = rest.split_off((i + 2).min(rest.len()));
                let module = rest.pop().filter(|_| rest.len() > i)?;
                return Some(Cmd {
                    invocation: Invocation::Module(module),
                    args,
                });
            }
            "-c" => return None,
            "-X" | "-W" => i += 2,
            w if w.starts_with('-') => i += 1,
            _ => {
                let args = rest.split_off(i + 1);
                let script = rest.pop()?;
                return Some(Cmd {
                    invocation: Invocation::Script(script),
                    args,
                });
            }
        }
    }
    None
}

/// `sh|bash [options] -c [--] script [name args...]`, or `bash [options] script.sh args`.
fn expand_shell(mut rest: Vec<String>, vars: &mut Vars, depth: usize, out: &mut Vec<Cmd>) {
    let mut i = 0;
    let mut script_follows = false;
    while let Some(w) = rest.get(i) {
        if w == "--" {
            i += 1;
            break;
        }
        if !(w.starts_with('-') || w.starts_with('+')) || w.len() < 2 {
            break;
        }
        script_follows |= is_c_flag(w);
        // `-o pipefail`, `+O extglob`: the option's name is the next word.
        let takes_name = w[1..].ends_with(['o', 'O']);
        i += if takes_name { 2 } else { 1 };
    }
    let Some(first) = rest.get(i) else { return };
    if script_follows {
        // `sh -c SCRIPT [NAME [ARGS...]]`: NAME is `$0`, ARGS are `$1`... and `"$@"`.
        let positional = rest.split_off(i + 1);
        if let Some(script) = rest.pop() {
            run_file(&script, positional, vars, depth, out);
        }
        return;
    }
    if let Some(script) = vars.file(first) {
        return run_file(&script, rest.split_off(i), vars, depth, out);
    }
    // The script runs with its arguments.
    let args = rest.split_off(i + 1);
    if let Some(script) = rest.pop() {
        out.push(Cmd {
            invocation: Invocation::Script(script),
            args,
        });
    }
}

/// A script (a `-c` argument or a file the container sees, [`Vars::mount_files`]) read as a
/// shell reads it, with its positional parameters (`$0` first); the caller's are restored after.
fn run_file(
    script: &str,
    positional: Vec<String>,
    vars: &mut Vars,
    depth: usize,
    out: &mut Vec<Cmd>,
) {
    if depth < MAX_SHELL_DEPTH {
        let outer = vars.positional.replace(positional);
        for cmd in split_script(script, vars) {
            expand(cmd, vars, depth + 1, out);
        }
        vars.positional = outer;
    }
}

/// Skip what precedes the program (wrappers such as `exec`, `env`, `timeout`, `uv run`,
/// assignments, shell keywords), recording assignments; return the program's index.
/// `export` lines only assign.
fn program_start<'w>(words: &'w [String], vars: &mut Vars) -> Option<(usize, &'w str)> {
    let mut i = 0;
    while let Some(w) = words.get(i) {
        if let Some((name, value)) = assignment(w) {
            vars.set(name, value.to_string());
            i += 1;
            continue;
        }
        match w.as_str() {
            "if" | "then" | "else" | "elif" | "do" | "while" | "until" | "!" | "{" | "}" | "fi"
            | "done" => {
                vars.keyword(w);
                i += 1;
            }
            "export" | "readonly" | "local" | "declare" => {
                for a in &words[i + 1..] {
                    if let Some((name, value)) = assignment(a) {
                        vars.set(name, value.to_string());
                    }
                }
                return None;
            }
            w => {
                let base = basename(w);
                let wrapper = WRAPPERS
                    .iter()
                    .chain(CATALOGUE.iter().flat_map(|e| e.wrappers))
                    .find(|wr| base == wr.name);
                match wrapper {
                    Some(wr) => {
                        let mut next = i + 1;
                        if let Some(sub) = wr.subcommand {
                            // `uv pip ...` is uv itself; only `uv run` runs a command.
                            if words.get(next).map(String::as_str) != Some(sub) {
                                return Some((i, w));
                            }
                            next += 1;
                        }
                        i = skip_wrapper(words, next, wr.valued, wr.positionals);
                    }
                    None => return Some((i, w)),
                }
            }
        }
    }
    None
}

/// The index after a wrapper's own options and positional arguments (and a `--`).
fn skip_wrapper(words: &[String], mut i: usize, valued: &[&str], positionals: usize) -> usize {
    let mut left = positionals;
    while let Some(w) = words.get(i) {
        if w == "--" {
            return i + 1;
        }
        if valued.contains(&w.as_str()) {
            i += 2;
        } else if w.starts_with('-') && w.len() > 1 {
            i += 1;
        } else if left > 0 {
            left -= 1;
            i += 1;
        } else {
            return i;
        }
    }
    i
}

fn assignment(word: &str) -> Option<(&str, &str)> {
    let (name, value) = word.split_once('=')?;
    let mut chars = name.chars();
    let first = chars.next()?;
    ((first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_'))
    .then_some((name, value))
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn is_shell(base: &str) -> bool {
    matches!(base, "sh" | "bash" | "dash" | "ash" | "zsh" | "ksh")
}

fn is_python(base: &str) -> bool {
    base.strip_prefix("python")
        .is_some_and(|v| v.bytes().all(|c| c.is_ascii_digit() || c == b'.'))
}

/// `-c`, `-lc`, `-ec`, `-exc`: a short option group that contains `c`.
fn is_c_flag(word: &str) -> bool {
    word.strip_prefix('-').is_some_and(|f| {
        !f.is_empty()
            && !f.starts_with('-')
            && f.contains('c')
            && f.bytes().all(|b| b.is_ascii_alphabetic())
    })
}

/// Split a shell script into simple commands (lists of words), as a POSIX shell tokenizes it:
/// quotes, escapes, line continuations, comments, `;` `&&` `||` `|` `&` newlines and parentheses
/// as separators, redirections dropped, `$VAR` / `${VAR}` expanded when known. Assignments
/// made by earlier commands are visible to later ones. Unterminated quotes end at the script's end.
pub(super) fn split_script(script: &str, vars: &mut Vars) -> Vec<Vec<String>> {
    let mut lexer = Lexer {
        text: script,
        pos: 0,
    };
    let mut st = Splitter::default();
    // The delimiter of a here-document whose body starts at the next newline.
    let mut heredoc: Option<String> = None;
    while let Some(c) = lexer.next() {
        match c {
            ' ' | '\t' | '\r' => st.end_word(),
            '\n' => {
                st.end_command(vars);
                // A here-document's body is data (`cat <<EOF > file`), not commands.
                if let Some(delimiter) = heredoc.take() {
                    lexer.skip_heredoc_body(&delimiter);
                }
            }
            ';' | '&' | '|' | '(' | ')' => st.end_command(vars),
            '<' if lexer.peek() == Some('<') && lexer.byte_after_next() != Some(b'<') => {
                st.end_word();
                lexer.next();
                heredoc = Some(lexer.heredoc_delimiter());
            }
            '#' if !st.in_word => lexer.skip_while(|n| n != '\n'),
            '\\' => match lexer.next() {
                Some('\n') | None => {}
                Some(n) => st.push(n),
            },
            '\'' => {
                st.in_word = true;
                while let Some(n) = lexer.next() {
                    if n == '\'' {
                        break;
                    }
                    st.word.push(n);
                }
            }
            '"' => st.double_quoted(&mut lexer, vars),
            '$' => {
                st.in_word = true;
                if let Some(fields) = lexer.dollar(&mut st.word, vars, false) {
                    st.fields(fields);
                }
            }
            '>' | '<' => {
                // `2>&1`, `> log`, `< in`: drop the redirection and its target.
                if st.in_word && st.word.bytes().all(|b| b.is_ascii_digit()) {
                    st.word.clear();
                    st.in_word = false;
                } else {
                    st.end_word();
                }
                lexer.skip_while(|c| matches!(c, '>' | '<'));
                if lexer.peek() == Some('&') {
                    lexer.next();
                    lexer.skip_while(|d| d.is_ascii_digit() || d == '-');
                } else {
                    st.skip_next_word = true;
                }
            }
            // Most of a script is plain words: each is copied once, sized once.
            other => st.push_str(lexer.plain_word(other)),
        }
    }
    st.end_command(vars);
    st.commands
}

#[derive(Default)]
struct Splitter {
    commands: Vec<Vec<String>>,
    words: Vec<String>,
    word: String,
    in_word: bool,
    /// The next word is a redirection target.
    skip_next_word: bool,
}

impl Splitter {
    /// After a `"`: the quoted text up to the closing quote, with `\` escapes and `$`
    /// expansions (`"$@"` makes a word per argument).
    fn double_quoted(&mut self, lexer: &mut Lexer<'_>, vars: &Vars) {
        self.in_word = true;
        while let Some(n) = lexer.next() {
            match n {
                '"' => break,
                '\\' => match lexer.next() {
                    Some('\n') | None => {}
                    Some(e @ ('"' | '\\' | '$' | '`')) => self.push(e),
                    Some(e) => {
                        self.push('\\');
                        self.push(e);
                    }
                },
                '$' => {
                    if let Some(fields) = lexer.dollar(&mut self.word, vars, true) {
                        self.fields(fields);
                    }
                }
                other => self.push(other),
            }
        }
    }

    fn push(&mut self, c: char) {
        self.word.push(c);
        self.in_word = true;
    }

    fn push_str(&mut self, text: &str) {
        self.word.push_str(text);
        self.in_word = true;
    }

    /// The fields of `"$@"` (or of an unquoted `$@`/`$*`, already split): the first joins the
    /// word being read, each later one starts a word. None at all, and a word that is nothing
    /// else (`"$@"` with no arguments) is no word.
    fn fields(&mut self, fields: Vec<String>) {
        if fields.is_empty() && self.word.is_empty() {
            self.in_word = false;
        }
        for (k, field) in fields.into_iter().enumerate() {
            if k > 0 {
                self.end_word();
            }
            self.push_str(&field);
        }
    }

    fn end_word(&mut self) {
        if self.in_word {
            let word = std::mem::take(&mut self.word);
            if !std::mem::take(&mut self.skip_next_word) {
                self.words.push(word);
            }
            self.in_word = false;
        }
    }

    fn end_command(&mut self, vars: &mut Vars) {
        self.end_word();
        self.skip_next_word = false;
        if !self.words.is_empty() {
            let cmd = std::mem::take(&mut self.words);
            // Later commands see assignments such as `PORT=8000` or `export PORT=8000`.
            let _ = program_start(&cmd, vars);
            self.commands.push(cmd);
        }
    }
}

/// Reads a script character by character (byte offsets; every character the shell treats
/// specially is ASCII).
struct Lexer<'s> {
    text: &'s str,
    pos: usize,
}

impl<'s> Lexer<'s> {
    fn rest(&self) -> &'s str {
        self.text.get(self.pos..).unwrap_or_default()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.rest().chars().next()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// The byte after the next character, when that one is ASCII.
    fn byte_after_next(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos + 1).copied()
    }

    fn skip_while(&mut self, keep: impl Fn(char) -> bool) {
        let rest = self.rest();
        let len = rest.find(|c: char| !keep(c)).unwrap_or(rest.len());
        self.pos += len;
    }

    /// `first` (just read) and the characters after it up to the next one a shell treats
    /// specially inside a word.
    fn plain_word(&mut self, first: char) -> &'s str {
        let start = self.pos - first.len_utf8();
        let rest = self.rest();
        let special = |b: u8| {
            matches!(
                b,
                b' ' | b'\t'
                    | b'\r'
                    | b'\n'
                    | b';'
                    | b'&'
                    | b'|'
                    | b'('
                    | b')'
                    | b'<'
                    | b'>'
                    | b'\\'
                    | b'\''
                    | b'"'
                    | b'$'
            )
        };
        // Special characters are ASCII, so the cut is on a character boundary.
        self.pos += rest.bytes().position(special).unwrap_or(rest.len());
        &self.text[start..self.pos]
    }

    /// After `<<`: the delimiter word of a here-document (`<<EOF`, `<<-'EOF'`, `<< "EOF"`),
    /// without its quotes.
    fn heredoc_delimiter(&mut self) -> String {
        if self.peek() == Some('-') {
            self.next();
        }
        self.skip_while(|c| matches!(c, ' ' | '\t'));
        let mut word = String::new();
        while let Some(c) = self.peek() {
            if c.is_whitespace() || matches!(c, ';' | '&' | '|' | '<' | '>' | '(' | ')') {
                break;
            }
            if !matches!(c, '\'' | '"' | '\\') {
                word.push(c);
            }
            self.next();
        }
        word
    }

    /// Skip the lines of a here-document's body, through the line that is its delimiter.
    fn skip_heredoc_body(&mut self, delimiter: &str) {
        while self.pos < self.text.len() {
            let rest = self.rest();
            let end = rest.find('\n').unwrap_or(rest.len());
            self.pos += end + 1;
            if rest[..end].trim() == delimiter {
                return;
            }
        }
    }

    /// After a `$`: expand `${NAME}` / `$NAME` when known, and the positional parameters of a
    /// `-c` script (`$1`, `${2}`, `"$*"`); keep `$(...)`, `$((...))` and unknown names as written.
    /// `$@` and an unquoted `$*` return their fields, which the caller splits into words.
    fn dollar(&mut self, word: &mut String, vars: &Vars, quoted: bool) -> Option<Vec<String>> {
        match self.peek() {
            Some('{') => {
                self.next();
                let rest = self.rest();
                let inner = &rest[..rest.find('}').unwrap_or(rest.len())];
                self.pos += inner.len() + 1;
                if let Some(p) = Positional::parse(inner) {
                    return vars.positional(p, word, quoted, &format!("${{{inner}}}"));
                }
                // `${NAME:-default}`: the default applies when NAME is unknown.
                let (name, default) = match inner.split_once(":-") {
                    Some((n, d)) => (n, Some(d)),
                    None => (inner, None),
                };
                match (vars.substitute(name), default) {
                    (Some(v), _) => word.push_str(v),
                    (None, Some(d)) => word.push_str(d),
                    (None, None) => {
                        word.push_str("${");
                        word.push_str(inner);
                        word.push('}');
                    }
                }
            }
            Some(c @ ('@' | '*' | '0'..='9')) => {
                self.next();
                let written = format!("${c}");
                let p = Positional::parse(&written[1..])?;
                return vars.positional(p, word, quoted, &written);
            }
            Some('(') => {
                let start = self.pos;
                let mut depth = 0usize;
                while let Some(c) = self.next() {
                    match c {
                        '(' => depth += 1,
                        ')' => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                word.push('$');
                word.push_str(self.text.get(start..self.pos).unwrap_or_default());
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let start = self.pos;
                self.skip_while(|c| c.is_ascii_alphanumeric() || c == '_');
                let name = self.text.get(start..self.pos).unwrap_or_default();
                match vars.substitute(name) {
                    Some(v) => word.push_str(v),
                    None => {
                        word.push('$');
                        word.push_str(name);
                    }
                }
            }
            _ => word.push('$'),
        }
        None
    }
}

/// A positional parameter reference: `$0`..`$9` (and `${10}`...), `$@` or `$*`.
#[derive(Clone, Copy)]
enum Positional {
    Number(usize),
    All { joined: bool },
}

impl Positional {
    fn parse(name: &str) -> Option<Positional> {
        match name {
            "@" => Some(Positional::All { joined: false }),
            "*" => Some(Positional::All { joined: true }),
            n if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                n.parse().ok().map(Positional::Number)
            }
            _ => None,
        }
    }
}

impl Vars {
    /// Expand a positional parameter into `word`, or return the fields `$@` / an unquoted `$*`
    /// make. Outside a `-c` script the reference stays as `written`.
    fn positional(
        &self,
        p: Positional,
        word: &mut String,
        quoted: bool,
        written: &str,
    ) -> Option<Vec<String>> {
        let Some(params) = &self.positional else {
            word.push_str(written);
            return None;
        };
        let args = params.get(1..).unwrap_or_default();
        match p {
            Positional::Number(n) => {
                let value = params.get(n).map(String::as_str).unwrap_or_default();
                if quoted {
                    word.push_str(value);
                    return None;
                }
                // Unquoted, it is split like `$@`: an empty one is no word at all.
                Some(value.split_whitespace().map(str::to_string).collect())
            }
            Positional::All { joined: true } if quoted => {
                word.push_str(&args.join(" "));
                None
            }
            Positional::All { .. } if quoted => Some(args.to_vec()),
            Positional::All { .. } => Some(split_fields(args)),
        }
    }
}

/// Unquoted expansions are split on blanks, as the shell's field splitting does with the
/// default `IFS`.
fn split_fields(args: &[String]) -> Vec<String> {
    args.iter()
        .flat_map(|a| a.split_whitespace().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cmds(command: &[&str], args: &[&str]) -> Vec<Cmd> {
        commands(command, args, &mut Vars::default())
    }

    #[test]
    fn plain_argv_is_one_command() {
        let c = cmds(&["vllm", "serve"], &["m", "--port", "8080"]);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].invocation, Invocation::Program("vllm".into()));
        assert_eq!(c[0].flag("--port"), Some("8080"));
        assert_eq!(c[0].describe(), "vllm serve");
    }

    #[test]
    fn python_modules_and_scripts_are_recognised() {
        let c = cmds(
            &["/usr/bin/python3.10", "-u", "-m", "sglang.launch_server"],
            &["--port=30001"],
        );
        assert_eq!(
            c[0].invocation,
            Invocation::Module("sglang.launch_server".into())
        );
        assert_eq!(c[0].flag("--port"), Some("30001"));
        let c = cmds(&["python3", "./server.py", "leader"], &[]);
        assert_eq!(c[0].invocation, Invocation::Script("./server.py".into()));
        assert_eq!(c[0].first_positional(), Some("leader"));
    }

    #[test]
    fn shell_scripts_are_split_into_commands() {
        let script = "bash /x/multi-node-serving.sh leader --ray_cluster_size=$(LWS_GROUP_SIZE); \n python3 -m vllm.entrypoints.openai.api_server --port 8080 && echo done || true | tee log";
        let c = cmds(&["sh", "-c", script], &[]);
        let kinds: Vec<String> = c.iter().map(Cmd::describe).collect();
        assert_eq!(
            kinds,
            [
                "multi-node-serving.sh leader",
                "python -m vllm.entrypoints.openai.api_server",
                "echo done",
                "true",
                "tee log"
            ]
        );
        assert_eq!(c[1].flag("--port"), Some("8080"));
    }

    #[test]
    fn quoting_escapes_and_continuations_follow_the_shell() {
        let c = cmds(
            &["/bin/bash", "-lc"],
            &[
                "exec env A=1 vllm serve 'my model' \\\n  --port \"80\"\"00\" --x='a b' # comment --port 1",
            ],
        );
        assert_eq!(c.len(), 1);
        assert_eq!(
            c[0].args,
            ["serve", "my model", "--port", "8000", "--x=a b"]
        );
    }

    #[test]
    fn variables_come_from_env_and_assignments() {
        let env = json!([{"name": "PORT", "value": "8000"}, {"name": "P2", "value": "$(PORT)1"}]);
        let mut vars = Vars::from_container(Some(&Json::from(&env)), None, None);
        assert_eq!(vars.get("P2"), Some("80001"));
        let c = commands(
            &[
                "sh",
                "-c",
                "export MP=9000; vllm serve m --port ${PORT} --mp $MP --u $UNSET --d ${D:-7}",
            ],
            &[],
            &mut vars,
        );
        assert_eq!(c[0].flag("--port"), Some("8000"));
        assert_eq!(c[0].flag("--mp"), Some("9000"));
        assert_eq!(c[0].flag("--u"), Some("$UNSET"));
        assert_eq!(c[0].flag("--d"), Some("7"));
    }

    #[test]
    fn kubernetes_expansion_keeps_unknown_and_escaped_references() {
        let env = json!([{"name": "A", "value": "$(B)"}, {"name": "B", "value": "$(A)"}]);
        let vars = Vars::from_container(Some(&Json::from(&env)), None, None);
        // A is defined before B exists: it keeps `$(B)`; B sees A's value. No loop.
        assert_eq!(vars.get("A"), Some("$(B)"));
        assert_eq!(vars.get("B"), Some("$(B)"));
        assert_eq!(kube_expand("$$(A) $(NOPE) $(", &vars), "$(A) $(NOPE) $(");
    }

    #[test]
    fn doubling_chains_stop_expanding_at_the_budget() {
        let mut env = vec![json!({"name": "V0", "value": "x".repeat(64)})];
        for i in 1..40 {
            env.push(
                json!({"name": format!("V{i}"), "value": format!("$(V{})$(V{})", i - 1, i - 1)}),
            );
        }
        let vars = Vars::from_container(Some(&Json::from(&json!(env))), None, None);
        let longest = (0..40)
            .filter_map(|i| vars.get(&format!("V{i}")))
            .map(str::len)
            .max();
        assert!(
            longest.is_some_and(|n| n <= EXPANSION_BUDGET),
            "{longest:?}"
        );
        // Past the budget a reference stays as written.
        assert_eq!(vars.get("V39"), Some("$(V38)$(V38)"));

        let script = format!(
            "A={}; {} vllm serve m --port $A",
            "x".repeat(64),
            "A=$A$A; ".repeat(40)
        );
        let c = cmds(&["sh", "-c", &script], &[]);
        let port = c.last().and_then(|c| c.flag("--port")).map(str::len);
        assert!(port.is_some_and(|n| n <= 2 * EXPANSION_BUDGET), "{port:?}");
    }

    #[test]
    fn shell_options_wrappers_and_heredocs_do_not_hide_the_command() {
        let programs = |command: &[&str], args: &[&str]| -> Vec<String> {
            cmds(command, args).iter().map(Cmd::describe).collect()
        };
        assert_eq!(
            programs(&["/bin/bash", "-c", "--"], &["vllm serve m"]),
            ["vllm serve"]
        );
        assert_eq!(
            programs(
                &[
                    "bash",
                    "-e",
                    "-x",
                    "-o",
                    "pipefail",
                    "-c",
                    "vllm serve m",
                    "name",
                    "a"
                ],
                &[]
            ),
            ["vllm serve"]
        );
        assert_eq!(
            programs(&["bash", "-o", "pipefail", "/x/run.sh", "leader"], &[]),
            ["run.sh leader"]
        );
        for wrapped in [
            "exec env -u HOME A=1 vllm serve m",
            "nohup timeout -s KILL 3600 vllm serve m",
            "uv run --with vllm vllm serve m",
            "tini -- vllm serve m",
        ] {
            assert_eq!(
                programs(&["sh", "-c", wrapped], &[]),
                ["vllm serve"],
                "{wrapped}"
            );
        }
        let c = cmds(
            &["python", "-u", "-m", "vllm.entrypoints.openai.api_server"],
            &[],
        );
        assert_eq!(
            c[0].describe(),
            "python -m vllm.entrypoints.openai.api_server"
        );
        let heredoc = "cat <<'EOF' > /tmp/cfg.yaml\nmodel: x\nrun: 'unterminated\nEOF\nvllm serve m --port 8001";
        assert_eq!(programs(&["sh", "-c", heredoc], &[]), ["cat", "vllm serve"]);
    }

    #[test]
    fn scripts_from_mounted_config_maps_are_read_like_sh_c() {
        let mut known = KnownSources::default();
        known.add(
            &json!({"kind": "ConfigMap", "metadata": {"name": "scripts", "namespace": "ml"},
            "data": {"run.sh": "export PORT=8001\nexec vllm serve m --port $PORT\n",
                     "other.sh": "llama-server --port 9001\n"}}),
        );
        let volumes = json!([
            {"name": "all", "configMap": {"name": "scripts"}},
            {"name": "picked", "configMap": {"name": "scripts", "items": [{"key": "other.sh", "path": "bin/start.sh"}]}},
            {"name": "missing", "configMap": {"name": "not-in-the-input"}}
        ]);
        let mounts = json!([
            {"name": "all", "mountPath": "/scripts/"},
            {"name": "picked", "mountPath": "/opt"},
            {"name": "all", "mountPath": "/entry.sh", "subPath": "run.sh"},
            {"name": "missing", "mountPath": "/x"}
        ]);
        let run = |command: &[&str], namespace: &str| {
            let mut vars = Vars::default();
            vars.mount_files(
                Some(&Json::from(&mounts)),
                Some(&Json::from(&volumes)),
                Some((&known, namespace)),
            );
            commands(command, &[], &mut vars)
                .iter()
                .map(|c| format!("{:?} {}", c.invocation, c.args.join(" ")))
                .collect::<Vec<_>>()
        };
        let vllm = [r#"Program("vllm") serve m --port 8001"#];
        assert_eq!(run(&["/scripts/run.sh"], "ml"), vllm);
        assert_eq!(run(&["bash", "/scripts/run.sh"], "ml"), vllm);
        assert_eq!(
            run(&["sh", "-c", "cd /w; /entry.sh"], "ml"),
            [r#"Program("cd") /w"#, vllm[0]]
        );
        assert_eq!(
            run(&["/opt/bin/start.sh"], "ml"),
            [r#"Program("llama-server") --port 9001"#]
        );
        // Not mounted, not under that key's path, another namespace's ConfigMap, unknown map:
        // the script stays an opaque launcher.
        for (command, namespace) in [
            (&["/opt/other.sh"][..], "ml"),
            (&["/scripts/run.sh"][..], "default"),
            (&["bash", "/x/run.sh"][..], "ml"),
        ] {
            let c = run(command, namespace);
            assert_eq!(c.len(), 1, "{command:?}: {c:?}");
            assert!(c[0].contains(".sh\")"), "{command:?}: {c:?}");
        }
    }

    #[test]
    fn numbers_a_branch_chooses_are_unknown_and_other_values_keep_the_last() {
        let script = "if [ \"$RANK\" = 0 ]; then\n  PORT=8100; ROLE=kv_producer\nelse\n  PORT=8200; ROLE=kv_consumer\nfi\nvllm serve m --port $PORT --role $ROLE";
        let c = cmds(&["sh", "-c", script], &[]);
        let vllm = c
            .iter()
            .find(|c| c.runs("vllm", Some("serve")))
            .expect("vllm");
        assert_eq!(vllm.flag("--port"), Some("$PORT"));
        assert_eq!(vllm.flag("--role"), Some("kv_consumer"));
        // One value in a branch, or different values in sequence, are known.
        let c = cmds(
            &[
                "sh",
                "-c",
                "PORT=1; PORT=2; if [ -z \"$X\" ]; then Y=3; fi; vllm serve --port $PORT --y $Y",
            ],
            &[],
        );
        assert_eq!(
            (c[1].flag("--port"), c[1].flag("--y")),
            (Some("2"), Some("3"))
        );
    }

    #[test]
    fn args_are_the_positional_parameters_of_a_c_script() {
        let served = |command: &[&str], args: &[&str]| -> Vec<String> {
            cmds(command, args)
                .iter()
                .find(|c| c.runs("vllm", Some("serve")))
                .map(|c| c.args.clone())
                .unwrap_or_default()
        };
        let args = ["m", "--port=8080", "--x", "a b"];
        // `$0` is the word after the script: a `--` or a name, else the first arg.
        for shell in ["sh", "bash", "/bin/sh", "/usr/bin/bash"] {
            for c in ["-c", "-ec", "-lc"] {
                assert_eq!(
                    served(&[shell, c, "cd /w; exec vllm serve \"$@\"", "--"], &args),
                    ["serve", "m", "--port=8080", "--x", "a b"],
                    "{shell} {c}"
                );
            }
        }
        assert_eq!(
            served(
                &["sh", "-c", "vllm serve \"${@}\" --y 1"],
                &["name", "m", "--port", "9"]
            ),
            ["serve", "m", "--port", "9", "--y", "1"]
        );
        assert_eq!(
            served(
                &["sh", "-c", "vllm serve $1 --port ${3}", "$0"],
                &["m", "-", "9"]
            ),
            ["serve", "m", "--port", "9"]
        );
        // Unquoted `$*` and `$@` split on blanks; a quoted `"$*"` is one word.
        assert_eq!(
            served(&["sh", "-c", "vllm serve $*", "x"], &["m --port 7"]),
            ["serve", "m", "--port", "7"]
        );
        assert_eq!(
            served(&["sh", "-c", "vllm serve \"$*\"", "x"], &["a", "b"]),
            ["serve", "a b"]
        );
        // No args: `"$@"` is no word at all, `"$1"` an empty one.
        assert_eq!(
            served(&["sh", "-c", "vllm serve \"$@\" m"], &[]),
            ["serve", "m"]
        );
        assert_eq!(
            served(&["sh", "-c", "vllm serve \"$1\""], &[]),
            ["serve", ""]
        );
        assert_eq!(
            served(&["sh", "-c", "vllm serve $1 m"], &[]),
            ["serve", "m"]
        );
        assert_eq!(
            served(&["sh", "-c", "vllm serve $1", "-"], &["m --port 1"]),
            ["serve", "m", "--port", "1"]
        );
        // An inner `-c` script has its own parameters; the outer ones come back after it.
        let nested = "bash -c 'vllm serve \"$@\"' inner \"$1\"; vllm serve $2";
        let all: Vec<Vec<String>> = cmds(&["sh", "-c", nested, "outer"], &["m1", "m2"])
            .into_iter()
            .map(|c| c.args)
            .collect();
        assert_eq!(all, [["serve", "m1"], ["serve", "m2"]]);
        // Outside a `-c` script a reference stays as written.
        assert_eq!(served(&["vllm", "serve", "$1"], &[]), ["serve", "$1"]);
    }

    #[test]
    fn redirections_and_unterminated_quotes_do_not_break_reading() {
        let c = cmds(
            &[
                "sh",
                "-c",
                "vllm serve m --port 8001 > /tmp/log 2>&1; echo 'open",
            ],
            &[],
        );
        assert_eq!(c[0].args, ["serve", "m", "--port", "8001"]);
        assert_eq!(c[1].args, ["open"]);
    }
}
