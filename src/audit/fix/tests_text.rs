//! `fixed_document` on texts that a re-serialisation would lose: what the user wrote stays,
//! only the patch's lines are added.

use serde_json::{Value, json};

use super::fixed_document;
use crate::audit::documents::{self, RawDocument};
use crate::decide::{Decision, PatchOp};

const LABELS: &str = "/spec/template/metadata/labels";

fn fix(text: &str, ops: &[(&str, Value)]) -> Result<String, String> {
    let raw = RawDocument {
        index: 1,
        start: 1,
        line: 1,
        bytes: text.as_bytes().to_vec(),
    };
    let decision = Decision {
        patch: ops
            .iter()
            .map(|(path, value)| PatchOp::Add {
                path: (*path).to_string(),
                value: value.clone(),
            })
            .collect(),
        ..Decision::default()
    };
    let values = documents::parse::<Value>(&raw, documents::RepeatedKeys::LastWins)
        .map_or(1, |d| d.values.len());
    fixed_document(&raw, values, &[(0, String::new(), decision)])
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn label(value: &str) -> (String, Value) {
    (format!("{LABELS}/app.io~1backend"), json!(value))
}

fn fixed(text: &str, ops: &[(String, Value)]) -> String {
    let ops: Vec<(&str, Value)> = ops.iter().map(|(p, v)| (p.as_str(), v.clone())).collect();
    fix(text, &ops).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn comments_quoting_and_key_order_stay_and_lines_are_only_added() {
    let text = "# Source: chart/x.yaml\nkind: Deployment # the kind\nspec:\n  template:\n    metadata:\n      labels:\n        'app': \"q\"   # keep\n        z: 'yes'\n      # trailing comment\n    spec: {}\n";
    let out = fixed(text, &[label("vllm")]);
    assert_eq!(
        out,
        text.replace(
            "        z: 'yes'\n",
            "        z: 'yes'\n        app.io/backend: vllm\n"
        )
    );
}

#[test]
fn values_yaml_would_misread_are_quoted() {
    let text = "spec:\n  template:\n    metadata:\n      labels:\n        a: b\n";
    let out = fixed(
        text,
        &[label("1e3"), (format!("{LABELS}/on"), json!("true"))],
    );
    assert!(
        out.ends_with("        app.io/backend: \"1e3\"\n        \"on\": \"true\"\n"),
        "{out}"
    );
}

#[test]
fn anchors_and_aliases_elsewhere_stay_unexpanded() {
    let text = "x: &env\n  - {name: A, value: b}\nspec:\n  template:\n    metadata:\n      labels: {a: b}\n    spec:\n      containers:\n      - name: c\n        env: *env\n";
    let out = fixed(text, &[label("vllm")]);
    assert_eq!(out, text.replace("{a: b}", "{a: b, app.io/backend: vllm}"));
}

#[test]
fn a_patch_through_a_reused_anchor_or_an_alias_is_refused() {
    let anchored = "spec:\n  template:\n    metadata: &m\n      labels:\n        a: b\nother: *m\n";
    let err = fix(anchored, &[(&label("v").0, json!("v"))]).err();
    assert!(
        err.as_deref().is_some_and(|e| e.contains("anchor")),
        "{err:?}"
    );
    let aliased = "m: &m\n  labels:\n    a: b\nspec:\n  template:\n    metadata: *m\n";
    let err = fix(aliased, &[(&label("v").0, json!("v"))]).err();
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("alias *m at line 6")),
        "{err:?}"
    );
}

#[test]
fn flow_collections_get_flow_members() {
    let port = json!({"name": "http", "containerPort": 8000, "protocol": "TCP"});
    let text = "spec:\n  template:\n    metadata: {labels: {}}\n    spec:\n      containers:\n      - {name: c, ports: []}\n";
    let ops = [
        label("vllm"),
        ("/spec/template/spec/containers/0/ports/-".to_string(), port),
    ];
    assert_eq!(
        fixed(text, &ops),
        "spec:\n  template:\n    metadata: {labels: {app.io/backend: vllm}}\n    spec:\n      containers:\n      - {name: c, ports: [{containerPort: 8000, name: http, protocol: TCP}]}\n"
    );
}

#[test]
fn block_lists_get_an_item_in_their_own_dash_style() {
    let text = "spec:\n  template:\n    spec:\n      containers:\n        -   name: c\n            ports:\n              - containerPort: 80\n";
    let ops = [
        (
            "/spec/template/spec/containers/0/ports/0/name".to_string(),
            json!("http"),
        ),
        (
            "/spec/template/spec/containers/0/ports/-".to_string(),
            json!({"containerPort": 81}),
        ),
        (
            "/spec/template/metadata".to_string(),
            json!({"labels": {"a": "b"}}),
        ),
    ];
    assert_eq!(
        fixed(text, &ops),
        "spec:\n  template:\n    spec:\n      containers:\n        -   name: c\n            ports:\n              - containerPort: 80\n                name: http\n              - containerPort: 81\n    metadata:\n      labels:\n        a: b\n"
    );
}

#[test]
fn null_maps_are_filled_in() {
    let text = "spec:\n  template:\n    metadata:\n    spec:\n      containers:\n      - name: c\n        ports: ~\n";
    let ops = [
        (
            "/spec/template/metadata".to_string(),
            json!({"labels": {"a": "b"}}),
        ),
        (
            "/spec/template/spec/containers/0/ports".to_string(),
            json!([{"containerPort": 80}]),
        ),
    ];
    assert_eq!(
        fixed(text, &ops),
        "spec:\n  template:\n    metadata:\n      labels:\n        a: b\n    spec:\n      containers:\n      - name: c\n        ports: [{containerPort: 80}]\n"
    );
}

#[test]
fn block_scalars_crlf_and_a_missing_last_line_break_are_kept() {
    let text = "spec:\r\n  template:\r\n    metadata:\r\n      labels:\r\n        s: |\r\n          x\r\n\r\n    spec: {}";
    let out = fixed(text, &[label("vllm")]);
    assert_eq!(
        out,
        text.replace("x\r\n\r\n", "x\r\n\r\n        app.io/backend: vllm\r\n")
    );
    let text = "spec:\n  template:\n    metadata:\n      labels:\n        a: b";
    assert_eq!(
        fixed(text, &[label("vllm")]),
        format!("{text}\n        app.io/backend: vllm\n")
    );
}

#[test]
fn json_stays_json_with_the_member_on_a_line_of_its_own() {
    let text = "{\n  \"spec\": {\"template\": {\"metadata\": {\n    \"labels\": {\n      \"a\": \"b\"\n    }\n  }}}\n}\n{\"kind\": \"X\"}\n";
    let out = fixed(text, &[label("vllm")]);
    assert_eq!(
        out,
        text.replace(
            "\"a\": \"b\"\n",
            "\"a\": \"b\",\n      \"app.io/backend\": \"vllm\"\n"
        )
    );
}

#[test]
fn nested_lines_follow_the_indentation_of_their_neighbours() {
    let text = "metadata:\n    name: q\nspec:\n  template:\n    spec:\n      containers: []\n";
    let ops = [(
        "/spec/template/metadata".to_string(),
        json!({"labels": {"a": "b"}}),
    )];
    assert_eq!(
        fixed(text, &ops),
        format!("{text}    metadata:\n      labels:\n        a: b\n")
    );
}

#[test]
fn a_repeated_operation_adds_once_and_indentless_lists_stay_indentless() {
    let text = "spec:\n  template:\n    metadata:\n      labels:\n        a: b\n    spec:\n      containers:\n      - name: c\n        ports:\n        - containerPort: 80\n";
    let ops = [
        label("vllm"),
        label("vllm"),
        (
            "/spec/template/spec/containers/0/ports/-".to_string(),
            json!({"containerPort": 81}),
        ),
    ];
    assert_eq!(
        fixed(text, &ops),
        "spec:\n  template:\n    metadata:\n      labels:\n        a: b\n        app.io/backend: vllm\n    spec:\n      containers:\n      - name: c\n        ports:\n        - containerPort: 80\n        - containerPort: 81\n"
    );
}

/// Lines of `before` that `after` dropped or changed (none: `after` only adds lines).
fn lost_lines(before: &str, after: &str) -> usize {
    let mut after = after.lines();
    before
        .lines()
        .filter(|line| !after.any(|a| a == *line))
        .count()
}

mod generated {
    use super::*;
    use proptest::prelude::*;

    /// Strings a YAML reader could take for something else, and plain ones.
    const WORDS: [&str; 8] = ["vllm", "yes", "8000", "a b", "x:y", "#c", "ü-ñ", "null"];

    /// A Deployment whose labels and ports are written in one of the styles users write,
    /// with comments, and the operations the engine would emit for it.
    fn case(
        indent: usize,
        indentless: bool,
        labels: usize,
        ports: usize,
        words: &[usize],
    ) -> (String, Vec<(String, Value)>) {
        let i = |n: usize| " ".repeat(indent * n);
        let word = |n: usize| WORDS[words[n % words.len()] % WORDS.len()];
        let q = |s: &str| super::super::emit::scalar(s, false);
        let mut text = format!(
            "kind: Deployment # k\nspec:\n{}template:\n{}metadata:\n",
            i(1),
            i(2)
        );
        let (k, v) = (q(word(1)), q(word(2)));
        match labels {
            0 => text.push_str(&format!("{}labels: {{{k}: {v}}}  # flow\n", i(3))),
            1 => text.push_str(&format!(
                "{}labels:\n{}{k}: {v} # c\n{}# end\n",
                i(3),
                i(4),
                i(4)
            )),
            2 => text.push_str(&format!("{}labels: {{}}\n", i(3))),
            _ => text.push_str(&format!("{}labels:\n", i(3))),
        }
        let mut ops = Vec::new();
        if labels < 3 {
            let key = format!("app.io/{}", word(0))
                .replace('~', "~0")
                .replace('/', "~1");
            ops.push((format!("{LABELS}/{key}"), json!(word(3))));
        } else {
            ops.push((LABELS.to_string(), json!({"app.io/x": word(3)})));
        }
        // The containers list's dashes at its key's column, or one step in.
        let dash = if indentless { i(3) } else { i(4) };
        text.push_str(&format!(
            "{}spec:\n{}containers:\n{dash}- name: c\n",
            i(2),
            i(3)
        ));
        let content = " ".repeat(dash.len() + 2);
        let port = json!({"containerPort": 8000, "name": "http", "protocol": "TCP"});
        let ports_path = "/spec/template/spec/containers/0/ports";
        match ports {
            0 => text.push_str(&format!("{content}ports: []\n")),
            1 => text.push_str(&format!("{content}ports:\n{content}- containerPort: 80\n")),
            _ => text.push_str(&format!("{content}image: {}\n", q(word(4)))),
        }
        match ports {
            0 | 1 => ops.push((format!("{ports_path}/-"), port)),
            _ => ops.push((ports_path.to_string(), json!([port]))),
        }
        (text, ops)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Each edit is verified by `fix` itself; block styles must also only gain lines
        /// (flow collections gain their member on the line they are on).
        #[test]
        fn every_style_is_edited_and_block_styles_only_gain_lines(
            indent in 1usize..5,
            indentless in any::<bool>(),
            labels in 0usize..4,
            ports in 0usize..3,
            words in proptest::collection::vec(0usize..WORDS.len(), 5),
        ) {
            let (text, ops) = case(indent, indentless, labels, ports, &words);
            let ops: Vec<(&str, Value)> = ops.iter().map(|(p, v)| (p.as_str(), v.clone())).collect();
            let out = fix(&text, &ops);
            prop_assert!(out.is_ok(), "{out:?}\n{text}");
            let out = out.unwrap_or_default();
            if labels % 2 == 1 && ports != 0 {
                prop_assert_eq!(lost_lines(&text, &out), 0, "{}\n---\n{}", text, out);
            }
        }
    }
}
