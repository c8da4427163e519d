//! Reads gitleaks' TOML configuration format into our rule model.

use serde::Deserialize;

use crate::error::RuleError;
use crate::rules::{AllowTarget, Allowlist, Condition, Rule, RuleSet, SecretGroup, Severity};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    #[serde(default)]
    rules: Vec<GlRule>,
    #[serde(default)]
    allowlist: Option<GlAllowlist>,
    #[serde(default)]
    allowlists: Vec<GlAllowlist>,
    #[serde(default)]
    extend: Option<Extend>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Extend {
    #[serde(default)]
    disabled_rules: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GlRule {
    id: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    regex: Option<String>,
    #[serde(default)]
    secret_group: Option<usize>,
    #[serde(default)]
    entropy: Option<f64>,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    allowlist: Option<GlAllowlist>,
    #[serde(default)]
    allowlists: Vec<GlAllowlist>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GlAllowlist {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    condition: Option<String>,
    #[serde(default)]
    regex_target: Option<String>,
    #[serde(default)]
    regexes: Vec<String>,
    #[serde(default)]
    stopwords: Vec<String>,
    /// Global allowlists may name the rules they apply to.
    #[serde(default)]
    target_rules: Vec<String>,
}

pub(crate) fn looks_like(text: &str) -> bool {
    // Our format has none of these keys; gitleaks files nearly always carry one.
    ["secretGroup", "regexTarget", "[extend]", "useDefault", "[[rules.allowlists]]", "title ="]
        .iter()
        .any(|k| text.contains(k))
}

pub(crate) fn parse(text: &str) -> Result<RuleSet, RuleError> {
    let cfg: Config = toml::from_str(text)
        .map_err(|e| RuleError::new(format!("invalid gitleaks TOML: {}", e.to_string().trim_end())))?;
    let mut set = RuleSet::default();
    let mut globals: Vec<(Vec<String>, Allowlist)> = Vec::new();
    for a in cfg.allowlist.into_iter().chain(cfg.allowlists) {
        let targets = a.target_rules.clone();
        if let Some(al) = convert_allowlist(a, None)? {
            globals.push((targets, al));
        }
    }
    let disabled = cfg.extend.map(|e| e.disabled_rules).unwrap_or_default();
    for r in cfg.rules {
        // Path-only rules flag file names, which a stream never has.
        let Some(regex) = r.regex.filter(|s| !s.is_empty()) else {
            continue;
        };
        let mut allowlist = Vec::new();
        for a in r.allowlist.into_iter().chain(r.allowlists) {
            if let Some(al) = convert_allowlist(a, Some(&r.id))? {
                allowlist.push(al);
            }
        }
        for (targets, al) in &globals {
            if targets.iter().any(|t| t == &r.id) {
                allowlist.push(al.clone());
            }
        }
        // gitleaks matches whole files; keep its multi-line patterns whole.
        let multiline = ["[\\s\\S]", "(?s", "\\n"].iter().any(|m| regex.contains(m));
        let category = r.tags.first().cloned().unwrap_or_else(|| "gitleaks".to_string());
        set.rules.push(Rule {
            enabled: !disabled.contains(&r.id),
            id: r.id,
            description: r.description,
            category,
            severity: Severity::High,
            regex,
            secret_group: r.secret_group.filter(|&g| g > 0).map(SecretGroup::Index),
            prefixes: Vec::new(),
            keywords: r.keywords,
            min_digits: None,
            entropy: r.entropy.filter(|&e| e > 0.0),
            validators: Vec::new(),
            context: Vec::new(),
            multiline,
            placeholder_check: true,
            allowlist,
            mode: None,
            tags: r.tags,
            references: Vec::new(),
            examples: Vec::new(),
            negative_examples: Vec::new(),
        });
    }
    set.allowlist = globals.into_iter().filter(|(t, _)| t.is_empty()).map(|(_, a)| a).collect();
    set.check()?;
    Ok(set)
}

fn convert_allowlist(a: GlAllowlist, rule: Option<&str>) -> Result<Option<Allowlist>, RuleError> {
    let fail = |msg: String| match rule {
        Some(id) => RuleError::rule(id, msg),
        None => RuleError::new(msg),
    };
    let target = match a.regex_target.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("secret") => AllowTarget::Secret,
        Some("match") => AllowTarget::Match,
        Some("line") => AllowTarget::Line,
        Some(other) => {
            return Err(fail(format!("allowlist regexTarget `{other}` is not secret, match or line")));
        }
    };
    let condition = match a.condition.as_deref().map(str::to_ascii_uppercase).as_deref() {
        None | Some("") | Some("OR") => Condition::Or,
        Some("AND") => Condition::And,
        Some(other) => {
            return Err(fail(format!("allowlist condition `{other}` is not OR or AND")));
        }
    };
    let al = Allowlist {
        description: a.description,
        regexes: a.regexes,
        target,
        stopwords: a.stopwords,
        values: Vec::new(),
        condition,
    };
    // Allowlists that only list paths or commits have nothing to apply here.
    Ok((!al.regexes.is_empty() || !al.stopwords.is_empty()).then_some(al))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
title = "custom"
[extend]
useDefault = true
disabledRules = ["old-rule"]

[[rules]]
id = "acme-token"
description = "Acme API token"
regex = '''\b(acme_[a-z0-9]{32})\b'''
secretGroup = 1
entropy = 3.0
keywords = ["acme_"]
tags = ["vendor"]
[[rules.allowlists]]
regexTarget = "line"
regexes = ['''example''']
stopwords = ["dummy"]

[[rules]]
id = "old-rule"
regex = '''old_[0-9]+'''

[[rules]]
id = "path-only"
path = '''\.pem$'''

[allowlist]
regexes = ['''CHANGEME''']
paths = ['''vendor/''']
"#;

    #[test]
    fn maps_fields() {
        assert!(looks_like(SAMPLE));
        let set = parse(SAMPLE).unwrap();
        assert_eq!(set.rules.len(), 2, "the path-only rule is skipped");
        let r = &set.rules[0];
        assert_eq!(r.id, "acme-token");
        assert_eq!(r.secret_group, Some(SecretGroup::Index(1)));
        assert_eq!(r.entropy, Some(3.0));
        assert_eq!(r.keywords, vec!["acme_"]);
        assert_eq!(r.category, "vendor");
        assert_eq!(r.allowlist[0].target, AllowTarget::Line);
        assert_eq!(r.allowlist[0].stopwords, vec!["dummy"]);
        assert!(!set.rules[1].enabled, "disabledRules turns the rule off");
        assert_eq!(set.allowlist.len(), 1);
        assert_eq!(set.allowlist[0].regexes, vec!["CHANGEME"]);
    }

    #[test]
    fn bad_target_names_the_rule() {
        let text =
            "[[rules]]\nid = \"x\"\nregex = 'a'\n[[rules.allowlists]]\nregexTarget = \"file\"\nregexes = ['b']\n";
        let err = parse(text).unwrap_err();
        assert_eq!(err.rule_id(), Some("x"));
        assert!(err.to_string().contains("regexTarget"), "{err}");
    }
}
