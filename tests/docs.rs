//! The rule reference (docs/rules.md) documents every rule with its default level, in a row that
//! is the link target (`#rule-id`) of the SARIF report's `helpUri`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use inference_webhook::decide::RuleId;
use support::fixtures::repo;

#[test]
fn every_rule_is_documented_with_its_default_level() {
    let reference = std::fs::read_to_string(repo().join("docs/rules.md")).unwrap();
    for rule in RuleId::ALL {
        let row = format!(
            "| <a id=\"{id}\"></a>`{id}` | {level} |",
            id = rule.as_str(),
            level = rule.default_level().as_str()
        );
        assert!(
            reference.contains(&row),
            "docs/rules.md lacks the row {row}"
        );
    }
}
