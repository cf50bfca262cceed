//! Manifest inputs: files, directories (recursive) and stdin, read one document at a time.

use std::fs;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::documents::{self, DocumentReader, RawDocument};
use super::fix;
use super::report::{InputError, Reporter, Source};

const EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];
/// How far `List` items are followed into nested lists.
const MAX_LIST_DEPTH: usize = 4;
const READ_BUFFER: usize = 256 * 1024;

/// What `--fix` does with the documents.
pub enum Fix<'a> {
    No,
    /// Print every document, patched where needed.
    Print(&'a mut dyn Write),
    /// Rewrite the files that change, in place.
    Write,
}

/// Audit every input in order. Errors that stop one input are reported and the next is read;
/// only an output error ends the run.
pub fn audit<W: Write>(
    paths: &[PathBuf],
    reporter: &mut Reporter<W>,
    fix: &mut Fix<'_>,
) -> io::Result<()> {
    for path in paths {
        if path.as_os_str() == "-" {
            if matches!(fix, Fix::Write) {
                reporter.error(InputError::whole(
                    "<stdin>",
                    "--write needs files: stdin cannot be rewritten (use --fix alone)",
                ));
                continue;
            }
            let stdin = io::stdin();
            let reader = BufReader::with_capacity(READ_BUFFER, stdin.lock());
            audit_stream("<stdin>", reader, reporter, fix_output(fix))?;
            continue;
        }
        let name = path.display().to_string();
        match fs::metadata(path) {
            Err(e) => reporter.error(InputError::whole(name, format!("cannot read: {e}"))),
            Ok(meta) if meta.is_dir() => {
                let mut files = Vec::new();
                manifest_files(path, &mut files, reporter);
                if files.is_empty() {
                    reporter.error(InputError::whole(
                        name,
                        "no manifests in this directory (looked for .yaml, .yml and .json files, \
                         recursively)",
                    ));
                }
                for file in files {
                    audit_file(&file, reporter, fix)?;
                }
            }
            Ok(_) => audit_file(path, reporter, fix)?,
        }
    }
    Ok(())
}

fn fix_output<'f>(fix: &'f mut Fix<'_>) -> Option<&'f mut dyn Write> {
    match fix {
        Fix::Print(out) => Some(&mut **out),
        Fix::No | Fix::Write => None,
    }
}

/// Manifest files under a directory, sorted; hidden directories (`.git`) and symbolic links
/// to directories are not followed.
fn manifest_files<W: Write>(dir: &Path, out: &mut Vec<PathBuf>, reporter: &mut Reporter<W>) {
    let entries = fs::read_dir(dir).and_then(|it| it.collect::<io::Result<Vec<_>>>());
    let mut entries = match entries {
        Ok(entries) => entries,
        Err(e) => {
            let name = dir.display().to_string();
            reporter.error(InputError::whole(name, format!("cannot list: {e}")));
            return;
        }
    };
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_dir() {
            if !entry.file_name().to_string_lossy().starts_with('.') {
                manifest_files(&path, out, reporter);
            }
        } else if path.is_file()
            && path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        {
            out.push(path);
        }
    }
}

fn audit_file<W: Write>(
    path: &Path,
    reporter: &mut Reporter<W>,
    fix: &mut Fix<'_>,
) -> io::Result<()> {
    let name = path.display().to_string();
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) => {
            reporter.error(InputError::whole(name, format!("cannot open: {e}")));
            return Ok(());
        }
    };
    let reader = BufReader::with_capacity(READ_BUFFER, file);
    if !matches!(fix, Fix::Write) {
        audit_stream(&name, reader, reporter, fix_output(fix))?;
        return Ok(());
    }
    match rewrite_in_place(path, |out| audit_stream(&name, reader, reporter, Some(out))) {
        Ok(true) => eprintln!("rewrote {name}"),
        Ok(false) => {}
        Err(e) => reporter.error(InputError::whole(name, format!("cannot rewrite: {e}"))),
    }
    Ok(())
}

/// Write a file's new content to a temporary file beside it, then rename it over the original
/// only when `produce` says something changed, so a reader never sees half a file.
fn rewrite_in_place(
    path: &Path,
    produce: impl FnOnce(&mut dyn Write) -> io::Result<bool>,
) -> io::Result<bool> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let file_name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp_name = format!(".{file_name}.inference-webhook-{}.tmp", std::process::id());
    let tmp = dir.map_or_else(|| PathBuf::from(&tmp_name), |d| d.join(&tmp_name));
    let permissions = fs::metadata(path)?.permissions();
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)?;
    let mut out = BufWriter::new(file);
    let result = produce(&mut out).and_then(|changed| {
        let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        if changed {
            fs::set_permissions(&tmp, permissions)?;
            fs::rename(&tmp, path)?;
        }
        Ok(changed)
    });
    if !matches!(result, Ok(true)) {
        // Nothing to keep; a failure to remove it only leaves a hidden temporary file.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Audit one input stream; with `fix_out`, write every document to it (patched where the
/// engine has a patch, byte for byte otherwise). Returns whether any document changed.
fn audit_stream<W: Write>(
    name: &str,
    mut reader: impl BufRead,
    reporter: &mut Reporter<W>,
    mut fix_out: Option<&mut dyn Write>,
) -> io::Result<bool> {
    match reader.fill_buf() {
        Ok(head) if head.contains(&0) => {
            reporter.error(InputError::whole(
                name,
                "binary file (contains NUL bytes): not a YAML or JSON manifest",
            ));
            return Ok(false);
        }
        Ok(_) => {}
        Err(e) => {
            reporter.error(InputError::whole(name, format!("cannot read: {e}")));
            return Ok(false);
        }
    }
    let mut docs = DocumentReader::new(reader);
    let mut changed = false;
    loop {
        let (raw, has_content) = match docs.next_document() {
            Ok(Some(next)) => next,
            Ok(None) => break,
            Err(e) => {
                reporter.error(InputError::whole(name, format!("cannot read: {e}")));
                break;
            }
        };
        let fixed = if has_content {
            audit_document(name, &raw, reporter, fix_out.is_some())?
        } else {
            None
        };
        if let Some(out) = fix_out.as_mut() {
            match &fixed {
                Some(bytes) => {
                    changed = true;
                    out.write_all(bytes)?;
                }
                None => out.write_all(&raw.bytes)?,
            }
        }
    }
    if let Some(out) = fix_out {
        out.flush()?;
    }
    Ok(changed)
}

/// Audit the objects of one document. With `fix`, returns the rewritten document when a patch
/// applied to it.
fn audit_document<W: Write>(
    name: &str,
    raw: &RawDocument,
    reporter: &mut Reporter<W>,
    fix: bool,
) -> io::Result<Option<Vec<u8>>> {
    let mut parsed = match documents::parse(raw) {
        Ok(parsed) => parsed,
        Err(e) => {
            reporter.error(InputError {
                file: name.to_string(),
                document: Some(raw.index),
                line: Some(e.line),
                message: e.message,
            });
            return Ok(None);
        }
    };
    let mut changed = false;
    for (value, line) in &mut parsed.values {
        let source = |item| Source::File {
            file: name.to_string(),
            document: raw.index,
            line: *line,
            item,
        };
        changed |= audit_value(value, &source, None, 0, reporter, fix)?;
    }
    if !changed {
        return Ok(None);
    }
    match fix::render(raw, &parsed) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) => {
            reporter.error(InputError {
                file: name.to_string(),
                document: Some(raw.index),
                line: Some(raw.line),
                message: format!("cannot write the fixed document: {e}"),
            });
            Ok(None)
        }
    }
}

/// Audit a value, following the `items` of `List` kinds; apply the patch when fixing.
fn audit_value<W: Write>(
    value: &mut Value,
    source: &dyn Fn(Option<usize>) -> Source,
    item: Option<usize>,
    depth: usize,
    reporter: &mut Reporter<W>,
    fix: bool,
) -> io::Result<bool> {
    let is_list = value
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k.ends_with("List"))
        && value.get("items").is_some_and(Value::is_array);
    if is_list && depth < MAX_LIST_DEPTH {
        let mut changed = false;
        if let Some(Value::Array(items)) = value.get_mut("items") {
            for (i, child) in items.iter_mut().enumerate() {
                changed |= audit_value(child, source, Some(i), depth + 1, reporter, fix)?;
            }
        }
        return Ok(changed);
    }
    let Some(decision) = reporter.object(value, source(item))? else {
        return Ok(false);
    };
    if !fix || decision.patch.is_empty() {
        return Ok(false);
    }
    match fix::apply(value, &decision.patch) {
        Ok(()) => Ok(true),
        Err(e) => {
            reporter.error(source(item).error(format!("the engine's patch does not apply: {e}")));
            Ok(false)
        }
    }
}
