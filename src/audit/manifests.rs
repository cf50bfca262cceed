//! Manifest inputs: files, directories (recursive) and stdin, streamed: split into documents,
//! parsed and decided in small batches on worker threads, reported in input order.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fs;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use memchr::memmem;
use serde_json::Value;

use crate::decide::{Decision, KnownSources, Policy};

use super::documents::{
    self, DocumentError, DocumentReader, ParsedDocument, RawDocument, RepeatedKeys,
};
use super::fix;
use super::output::{self, InputError, Source, Writer};

const EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];
/// How far `List` items are followed into nested lists.
const MAX_LIST_DEPTH: usize = 4;
const READ_BUFFER: usize = 256 * 1024;
/// Parser threads per input (YAML parsing is most of the audit's time).
const MAX_WORKERS: usize = 8;
const BATCH_DOCUMENTS: usize = 16;
const BATCH_BYTES: usize = 128 * 1024;

/// What `--fix` does with the documents.
pub(super) enum Fix<'a> {
    No,
    /// Print every document, patched where needed.
    Print(Joined<'a>),
    /// Rewrite the files that change, in place.
    Write,
}

/// Audit every input in order. Errors that stop one input are reported and the next is read;
/// only an output error ends the run.
pub(super) fn audit<W: Write>(
    paths: &[PathBuf],
    reporter: &mut Writer<W>,
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
            // Stdin is read once, as a stream: its ConfigMaps cannot be known beforehand.
            let reader = BufReader::with_capacity(READ_BUFFER, io::stdin());
            let known = KnownSources::default();
            audit_stream("<stdin>", reader, &known, reporter, fix_output(fix)?)?;
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

/// Where the fixed documents of the next input go.
fn fix_output<'f>(fix: &'f mut Fix<'_>) -> io::Result<Option<&'f mut dyn Write>> {
    match fix {
        Fix::Print(out) => {
            out.start_input()?;
            Ok(Some(out))
        }
        Fix::No | Fix::Write => Ok(None),
    }
}

/// The printed `--fix` output: the inputs' documents joined into one valid YAML stream (a
/// `---` line between inputs, and a line break where an input did not end with one).
pub(super) struct Joined<'a> {
    out: &'a mut dyn Write,
    last: Option<u8>,
}

impl<'a> Joined<'a> {
    pub(super) fn new(out: &'a mut dyn Write) -> Self {
        Joined { out, last: None }
    }

    fn start_input(&mut self) -> io::Result<()> {
        let Some(last) = self.last else {
            return Ok(());
        };
        if last != b'\n' {
            self.out.write_all(b"\n")?;
        }
        self.out.write_all(b"---\n")?;
        self.last = Some(b'\n');
        Ok(())
    }
}

impl Write for Joined<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        if n > 0 {
            self.last = Some(buf[n - 1]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Manifest files under a directory, sorted; hidden directories (`.git`) and symbolic links
/// to directories are not followed.
fn manifest_files<W: Write>(dir: &Path, out: &mut Vec<PathBuf>, reporter: &mut Writer<W>) {
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
    reporter: &mut Writer<W>,
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
    let known = known_env_of(path);
    if !matches!(fix, Fix::Write) {
        audit_stream(&name, reader, &known, reporter, fix_output(fix)?)?;
        return Ok(());
    }
    match rewrite_in_place(path, |out| {
        audit_stream(&name, reader, &known, reporter, Some(out))
    }) {
        Ok(true) => eprintln!("rewrote {name}"),
        Ok(false) => {}
        Err(e) => reporter.error(InputError::whole(name, format!("cannot rewrite: {e}"))),
    }
    Ok(())
}

/// The ConfigMaps of a file, for the `envFrom` and `configMapKeyRef` variables of its workloads
/// (a file with a Deployment and the ConfigMap it reads its port from). A first pass over the
/// file, made only when it names both a ConfigMap and such a reference; both passes stream, so
/// memory stays flat in the file's size.
fn known_env_of(path: &Path) -> KnownSources {
    let mut known = KnownSources::default();
    if !names_config_map_references(path).unwrap_or(false) {
        return known;
    }
    let Ok(file) = fs::File::open(path) else {
        return known;
    };
    let mut docs = DocumentReader::new(BufReader::with_capacity(READ_BUFFER, file));
    while let Ok(Some((raw, has_content))) = docs.next_document() {
        if !has_content || memmem::find(&raw.bytes, b"ConfigMap").is_none() {
            continue;
        }
        if let Ok(doc) = documents::parse::<Value>(&raw, RepeatedKeys::LastWins) {
            doc.values.iter().for_each(|(v, _)| known.add(v));
        }
    }
    known
}

/// Whether a file names a ConfigMap and an `envFrom`, a `configMapKeyRef` or a `configMap`
/// volume, read in chunks.
fn names_config_map_references(path: &Path) -> io::Result<bool> {
    // A ConfigMap, and a reference that can use one: env, or a volume (scripts a container runs).
    const WORDS: [&[u8]; 4] = [b"ConfigMap", b"envFrom", b"configMapKeyRef", b"configMap:"];
    // Each chunk is searched with the end of the one before, so a word cut in two is found.
    const OVERLAP: usize = 15;
    let mut file = fs::File::open(path)?;
    let mut window = vec![0; OVERLAP + READ_BUFFER];
    let mut kept = 0;
    let mut found = [false; 4];
    loop {
        let n = io::Read::read(&mut file, &mut window[kept..])?;
        if n == 0 {
            return Ok(false);
        }
        let text = &window[..kept + n];
        for (seen, word) in found.iter_mut().zip(WORDS) {
            *seen |= memmem::find(text, word).is_some();
        }
        if found[0] && found[1..].contains(&true) {
            return Ok(true);
        }
        kept = OVERLAP.min(text.len());
        let end = text.len();
        window.copy_within(end - kept..end, 0);
    }
}

/// Write a file's new content to a temporary file beside it, then rename it over the original
/// only when `produce` says something changed, so a reader never sees half a file. A symbolic
/// link is written through: its target is replaced and the link stays a link. A file with
/// several hard links is overwritten in place, so that all its names keep one content.
fn rewrite_in_place(
    path: &Path,
    produce: impl FnOnce(&mut dyn Write) -> io::Result<bool>,
) -> io::Result<bool> {
    let target;
    let path = if fs::symlink_metadata(path)?.file_type().is_symlink() {
        target = fs::canonicalize(path)?;
        target.as_path()
    } else {
        path
    };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let file_name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp_name = format!(".{file_name}.inference-webhook-{}.tmp", std::process::id());
    let tmp = dir.map_or_else(|| PathBuf::from(&tmp_name), |d| d.join(&tmp_name));
    let meta = fs::metadata(path)?;
    let permissions = meta.permissions();
    let hard_linked = std::os::unix::fs::MetadataExt::nlink(&meta) > 1;
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
            if hard_linked {
                // Renaming would give this name a new inode and leave the other names behind:
                // the content goes into the file itself (not atomically).
                fs::copy(&tmp, path)?;
                fs::remove_file(&tmp)?;
            } else {
                fs::rename(&tmp, path)?;
            }
        }
        Ok(changed)
    });
    if !matches!(result, Ok(true)) {
        // Nothing to keep; a failure to remove it only leaves a hidden temporary file.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A document after a worker thread has parsed it and the engine has decided on its objects.
struct Decided {
    raw: RawDocument,
    /// `None` for documents with nothing but comments and blank lines.
    parsed: Option<Result<ParsedDocument, DocumentError>>,
    /// One decision per object, in [`visit_objects`] order.
    decisions: Vec<Decision>,
}

enum Piece {
    Documents(Vec<Decided>),
    ReadError(io::Error),
}

/// Documents handed to a worker at once: batching keeps thread hand-offs rare.
type Batch = Vec<(RawDocument, bool)>;

/// Parse a document and decide on its objects: the expensive, pure part, run on worker threads.
/// Only what the report shows of the objects is kept (`--fix` re-reads the documents it
/// changes), so that they are freed by the thread that allocated them.
fn decide_document(
    raw: RawDocument,
    has_content: bool,
    policy: &Policy,
    known: &KnownSources,
) -> Decided {
    let mut decisions = Vec::new();
    let mut parsed = has_content.then(|| documents::parse(&raw, RepeatedKeys::LastWins));
    if let Some(Ok(doc)) = &mut parsed {
        for (value, _) in &mut doc.values {
            let Ok(()) = visit_objects(
                value,
                None,
                "",
                0,
                &mut |object, _, _| -> Result<(), Infallible> {
                    decisions.push(crate::decide::decide_as_created(
                        policy,
                        object,
                        Some(known),
                    ));
                    *object = output::identity(object);
                    Ok(())
                },
            );
        }
    }
    Decided {
        raw,
        parsed,
        decisions,
    }
}

/// Audit one input stream; with `fix_out`, write every document to it (patched where the
/// engine has a patch, byte for byte otherwise). Returns whether the input is to be rewritten:
/// a document changed and none was refused.
///
/// A reader thread splits the stream into documents, worker threads parse and decide on them,
/// and this thread reports them in input order. Channels are bounded, so only a few documents
/// are in memory at any time.
fn audit_stream<W: Write>(
    name: &str,
    mut reader: impl BufRead + Send,
    known: &KnownSources,
    reporter: &mut Writer<W>,
    mut fix_out: Option<&mut dyn Write>,
) -> io::Result<bool> {
    if let Err(problem) = readable(&mut reader) {
        reporter.error(InputError::whole(name, problem));
        return Ok(false);
    }
    let policy = reporter.policy().clone();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_WORKERS));
    let (mut changed, mut refused) = (false, false);
    std::thread::scope(|scope| -> io::Result<()> {
        let (work_tx, work_rx) = mpsc::sync_channel::<(usize, Batch)>(workers * 2);
        // Shared by the workers; dropped with the last of them, which stops the reader.
        let work_rx = Arc::new(Mutex::new(work_rx));
        let (done_tx, done_rx) = mpsc::sync_channel::<(usize, Piece)>(workers * 2);
        let read_done_tx = done_tx.clone();
        scope.spawn(move || read_batches(reader, &work_tx, &read_done_tx));
        for _ in 0..workers {
            let (work_rx, done_tx, policy) = (Arc::clone(&work_rx), done_tx.clone(), &policy);
            scope.spawn(move || decide_batches(&work_rx, &done_tx, policy, known));
        }
        drop((done_tx, work_rx));
        // Batches come back out of order; report them in input order.
        let mut waiting = BTreeMap::new();
        let mut next = 0;
        for (seq, piece) in done_rx {
            waiting.insert(seq, piece);
            while let Some(piece) = waiting.remove(&next) {
                next += 1;
                let decided = match piece {
                    Piece::ReadError(e) => {
                        reporter.error(InputError::whole(name, format!("cannot read: {e}")));
                        continue;
                    }
                    Piece::Documents(decided) => decided,
                };
                for decided in decided {
                    let fixed = report_document(name, decided, reporter, fix_out.is_some())?;
                    if let Some(out) = fix_out.as_mut() {
                        changed |= fixed.changed;
                        refused |= fixed.refused;
                        out.write_all(&fixed.bytes)?;
                    }
                }
            }
        }
        Ok(())
    })?;
    if let Some(out) = fix_out {
        out.flush()?;
    }
    // A file is rewritten whole or not at all.
    Ok(changed && !refused)
}

/// Whether the stream can be read as text at all: a binary file is not a manifest.
fn readable(reader: &mut impl BufRead) -> Result<(), String> {
    match reader.fill_buf() {
        Ok(head) if head.contains(&0) => {
            Err("binary file (contains NUL bytes): not a YAML or JSON manifest".into())
        }
        Ok(_) => Ok(()),
        Err(e) => Err(format!("cannot read: {e}")),
    }
}

/// The reader thread: split the stream into documents and send them in numbered batches
/// (0, 1, 2, ... so that they can be put back in order), then a read error if one ended it.
fn read_batches(
    reader: impl BufRead,
    work: &mpsc::SyncSender<(usize, Batch)>,
    done: &mpsc::SyncSender<(usize, Piece)>,
) {
    let mut docs = DocumentReader::new(reader);
    let mut batch = Batch::new();
    let mut batch_bytes = 0;
    let mut seq = 0;
    loop {
        let (more, error) = match docs.next_document() {
            Ok(Some((raw, has_content))) => {
                batch_bytes += raw.bytes.len();
                batch.push((raw, has_content));
                (true, None)
            }
            Ok(None) => (false, None),
            Err(e) => (false, Some(e)),
        };
        let full = batch.len() >= BATCH_DOCUMENTS || batch_bytes >= BATCH_BYTES;
        if !batch.is_empty() && (full || !more) {
            batch_bytes = 0;
            if work.send((seq, std::mem::take(&mut batch))).is_err() {
                break;
            }
            seq += 1;
        }
        if let Some(e) = error {
            // The receiver only goes away when the output failed.
            let _ = done.send((seq, Piece::ReadError(e)));
        }
        if !more {
            break;
        }
    }
}

/// A worker thread: parse batches and decide on them until there are none.
fn decide_batches(
    work: &Mutex<mpsc::Receiver<(usize, Batch)>>,
    done: &mpsc::SyncSender<(usize, Piece)>,
    policy: &Policy,
    known: &KnownSources,
) {
    loop {
        // The lock is only held while waiting for the next batch.
        let next = match work.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => break,
        };
        let Ok((seq, batch)) = next else {
            break;
        };
        let decided = batch
            .into_iter()
            .map(|(raw, has_content)| decide_document(raw, has_content, policy, known))
            .collect();
        if done.send((seq, Piece::Documents(decided))).is_err() {
            break;
        }
    }
}

/// What `--fix` writes for a document.
struct FixedDocument {
    bytes: Vec<u8>,
    changed: bool,
    /// The patch could not be written into the text (the error is reported).
    refused: bool,
}

/// Report the objects of a decided document. With `fix`, returns the rewritten document when a
/// patch applied to it, and the original bytes otherwise.
fn report_document<W: Write>(
    name: &str,
    decided: Decided,
    reporter: &mut Writer<W>,
    fix: bool,
) -> io::Result<FixedDocument> {
    let Decided {
        raw,
        parsed,
        decisions,
    } = decided;
    let unchanged = |raw: RawDocument| FixedDocument {
        bytes: if fix { raw.bytes } else { Vec::new() },
        changed: false,
        refused: false,
    };
    let mut parsed = match parsed {
        None => return Ok(unchanged(raw)),
        Some(Ok(parsed)) => parsed,
        Some(Err(e)) => {
            reporter.error(InputError {
                file: name.to_string(),
                document: Some(raw.index),
                line: Some(e.line),
                message: e.message,
            });
            return Ok(unchanged(raw));
        }
    };
    let mut decisions = decisions.into_iter();
    // The patches to apply, per value of the document, each under its object's pointer.
    let mut patches: Vec<(usize, String, Decision)> = Vec::new();
    for (index, (value, line)) in parsed.values.iter_mut().enumerate() {
        let source = |item| Source::File {
            file: name.to_string(),
            document: raw.index,
            line: *line,
            item,
        };
        visit_objects(value, None, "", 0, &mut |object,
                                                item,
                                                at|
         -> io::Result<()> {
            let decision = decisions.next().unwrap_or_default();
            let Some(decision) = reporter.record(object, source(item), decision)? else {
                return Ok(());
            };
            if fix && !decision.patch.is_empty() {
                patches.push((index, at.to_string(), decision));
            }
            Ok(())
        })?;
    }
    if patches.is_empty() {
        return Ok(unchanged(raw));
    }
    match fix::fixed_document(&raw, parsed.values.len(), &patches) {
        Ok(bytes) => Ok(FixedDocument {
            bytes,
            changed: true,
            refused: false,
        }),
        Err(reason) => {
            reporter.error(InputError {
                file: name.to_string(),
                document: Some(raw.index),
                line: Some(raw.line),
                message: format!(
                    "--fix cannot rewrite this document: {reason}; its findings are reported, \
                     the document (with --write, the whole file) is left as it is"
                ),
            });
            Ok(FixedDocument {
                refused: true,
                ..unchanged(raw)
            })
        }
    }
}

/// Call `f` on each object of a value: the value itself, or the `items` of a `List` kind
/// (recursively, to a bounded depth), with the item's index and its JSON pointer (`/items/3`).
fn visit_objects<E, F>(
    value: &mut Value,
    item: Option<usize>,
    at: &str,
    depth: usize,
    f: &mut F,
) -> Result<(), E>
where
    F: FnMut(&mut Value, Option<usize>, &str) -> Result<(), E>,
{
    let is_list = value
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k.ends_with("List"))
        && value.get("items").is_some_and(Value::is_array);
    match value.get_mut("items") {
        Some(Value::Array(items)) if is_list && depth < MAX_LIST_DEPTH => {
            for (i, child) in items.iter_mut().enumerate() {
                visit_objects(child, Some(i), &format!("{at}/items/{i}"), depth + 1, f)?;
            }
            Ok(())
        }
        _ => f(value, item, at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(text: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("m.yaml");
        fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        (dir, path)
    }

    #[test]
    fn config_map_references_are_found_across_read_chunks() {
        // "ConfigMap" cut in two by the end of the first chunk, "envFrom" in the second.
        let mut text = vec![b'#'; READ_BUFFER - 4];
        text.extend_from_slice(b"ConfigMap\nenvFrom: []\n");
        let (_dir, path) = file_with(&text);
        assert!(names_config_map_references(&path).unwrap_or(false));
        let (_dir, path) = file_with(b"kind: ConfigMap\n---\nkind: Deployment\n");
        assert!(!names_config_map_references(&path).unwrap_or(true));
    }
}
