//! The rule reference (docs/rules.md) documents every rule with its default level.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use inference_webhook::engine::RuleId;

#[test]
fn every_rule_is_documented_with_its_default_level() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/rules.md")).unwrap();
    for rule in RuleId::ALL {
        let row = format!(
            "| `{}` | {} |",
            rule.as_str(),
            rule.default_level().as_str()
        );
        assert!(readme.contains(&row), "docs/rules.md lacks the row {row}");
    }
}
