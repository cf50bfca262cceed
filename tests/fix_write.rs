//! `audit --fix --write` keeps what the user wrote: run as the real binary over copies of every
//! manifest of the shared corpora, over a symbolic link, and over a file it must refuse.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::json;
use support::commands::{command, json_report, run, stderr, stdout};
use support::fixtures::{fixture_path, repo, temp_dir};

/// Files of the corpora that `--fix --write` refuses, with a word of the reason it must give.
/// None today: every patched document of the corpora can be edited in place.
const REFUSED: &[(&str, &str)] = &[];

fn audit(args: &[&str]) -> Output {
    run(command("audit").args(args), None)
}

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Copy the manifests under `from` to `to`, keeping their relative paths.
fn copy_manifests(from: &Path, to: &Path, copied: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(from)
        .unwrap_or_else(|e| panic!("{}: {e}", from.display()))
        .map(|e| e.unwrap_or_else(|e| panic!("{e}")).path())
        .collect();
    entries.sort();
    for entry in entries {
        let target = to.join(entry.file_name().unwrap_or_default());
        if entry.is_dir() {
            copy_manifests(&entry, &target, copied);
        } else if entry
            .extension()
            .is_some_and(|e| ["yaml", "yml", "json"].contains(&&*e.to_string_lossy()))
        {
            fs::create_dir_all(to).unwrap_or_else(|e| panic!("{e}"));
            fs::copy(&entry, &target).unwrap_or_else(|e| panic!("{e}"));
            copied.push(target);
        }
    }
}

/// The lines of `before` that `after` lost or changed: none when `after` only adds lines
/// (then `before` is a subsequence of `after`).
fn lost_lines(before: &str, after: &str) -> Vec<String> {
    let mut after = after.lines();
    before
        .lines()
        .filter(|line| !after.any(|a| a == *line))
        .map(str::to_string)
        .take(3)
        .collect()
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn fix_write_over_the_corpora_only_adds_lines_and_reaches_a_fixed_point() {
    let dir = temp_dir();
    let mut files = Vec::new();
    for corpus in ["corpus", "corpus-extra"] {
        let from = repo().join("../shared").join(corpus);
        assert!(
            from.is_dir(),
            "{} is missing: this test needs the shared corpora",
            from.display()
        );
        copy_manifests(&from, &dir.path().join(corpus), &mut files);
    }
    let before: Vec<String> = files.iter().map(|f| read(f)).collect();
    let report = json_report(&audit(&["-o", "json", &path(dir.path())]));
    assert_eq!(report["errors"], json!([]), "every corpus file is readable");
    let patched = report["summary"]["patched"].as_u64().unwrap_or(0);

    let out = audit(&["--fix", "--write", &path(dir.path())]);
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(2), "{err}");
    let mut changed = 0;
    for (file, before) in files.iter().zip(&before) {
        let name = file
            .strip_prefix(dir.path())
            .map_or_else(|_| path(file), path);
        let after = read(file);
        let refused: Vec<&str> = err
            .lines()
            .filter(|l| l.contains("--fix cannot rewrite") && l.contains(&path(file)))
            .collect();
        match REFUSED.iter().find(|(f, _)| *f == name) {
            Some((_, reason)) => {
                assert!(refused.iter().any(|l| l.contains(reason)), "{name}: {err}");
                assert_eq!(&after, before, "{name} was refused but written");
            }
            None => assert!(refused.is_empty(), "{name} refused: {refused:?}"),
        }
        if after != *before {
            changed += 1;
            let lost = lost_lines(before, &after);
            assert!(
                lost.is_empty(),
                "{name}: lines changed or removed: {lost:?}"
            );
        }
    }
    assert!(
        changed > 0 && changed as u64 <= patched,
        "{changed} of {patched}"
    );

    // Read again, nothing is left to patch, every object is still there, and --write again
    // changes nothing.
    let again = json_report(&audit(&["-o", "json", &path(dir.path())]));
    assert_eq!(again["errors"], json!([]));
    assert_eq!(again["summary"]["patched"], 0, "{}", again["summary"]);
    assert_eq!(again["summary"]["objects"], report["summary"]["objects"]);
    let fixed: Vec<String> = files.iter().map(|f| read(f)).collect();
    let out = audit(&["--fix", "--write", &path(dir.path())]);
    assert!(!stderr(&out).contains("rewrote"), "{}", stderr(&out));
    assert_eq!(files.iter().map(|f| read(f)).collect::<Vec<_>>(), fixed);
}

#[test]
fn fix_write_through_links_keeps_them_and_prints_what_it_writes() {
    let dir = temp_dir();
    let real = dir.path().join("real");
    fs::create_dir(&real).unwrap_or_else(|e| panic!("{e}"));
    let target = real.join("vllm.yaml");
    let original = read(&fixture_path("audit").join("vllm-unlabeled.yaml"));
    fs::write(&target, &original).unwrap_or_else(|e| panic!("{e}"));
    let link = dir.path().join("link.yaml");
    std::os::unix::fs::symlink("real/vllm.yaml", &link).unwrap_or_else(|e| panic!("{e}"));
    let hard = dir.path().join("hard.yaml");
    fs::hard_link(&target, &hard).unwrap_or_else(|e| panic!("{e}"));

    let printed = stdout(&audit(&["--fix", &path(&link)]));
    let out = audit(&["--fix", "--write", &path(&link)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let meta = fs::symlink_metadata(&link).unwrap_or_else(|e| panic!("{e}"));
    assert!(meta.file_type().is_symlink(), "the link stays a link");
    let written = read(&target);
    assert!(
        written.contains("alibabacloud.com/inference-backend: vllm"),
        "{written}"
    );
    assert_eq!(lost_lines(&original, &written), Vec::<String>::new());
    assert_eq!(printed, written, "--fix prints what --write writes");
    assert_eq!(
        read(&hard),
        written,
        "a hard link keeps sharing the content"
    );
    let leftovers = fs::read_dir(&real).map_or(0, Iterator::count);
    assert_eq!(leftovers, 1, "no temporary file is left");
}

#[test]
fn a_file_with_a_document_that_cannot_be_edited_is_left_whole_and_named() {
    let dir = temp_dir();
    let file = dir.path().join("m.yaml");
    let fixable = read(&fixture_path("audit").join("vllm-unlabeled.yaml"));
    // The pod template's metadata is an alias: adding labels to it would change the anchor.
    let aliased = "---\nx: &meta\n  labels: {app: q}\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: q\nspec:\n  template:\n    metadata: *meta\n    spec:\n      containers:\n      - name: vllm\n        image: vllm/vllm-openai:v0.10.0\n        command: [vllm, serve, m]\n        ports: [{containerPort: 8000}]\n";
    let text = format!("{fixable}{aliased}");
    fs::write(&file, &text).unwrap_or_else(|e| panic!("{e}"));
    let out = audit(&["--fix", "--write", &path(&file)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&path(&file))
            && err.contains("--fix cannot rewrite this document")
            && err.contains("alias *meta at line"),
        "{err}"
    );
    assert!(!err.contains("rewrote"), "{err}");
    assert_eq!(read(&file), text, "nothing of the file is written");
}
