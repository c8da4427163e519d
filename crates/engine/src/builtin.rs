//! The built-in rule pack: the TOML files under `rules/`, embedded at build time.

include!(concat!(env!("OUT_DIR"), "/builtin_rules.rs"));
