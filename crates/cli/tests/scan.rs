//! `leakguard scan` and `leakguard redact FILE` on a fixture tree, through the binary.

mod common;

use common::leakguard;
use std::path::Path;
use std::process::Output;

const GH: &str = "ghp_R7kPq2LmN9xVt4Hs8WzC1bYd6FjG3aEu0K9p";
const SK: &str =
    "sk-ant-api03-Xq7rT2mKp9LzW4vN8bYc3HdF6jS1gA5eR0uTiOkMnBvCxZaQwErTyUiOpLkJhGfDsAqWeRtY5uI8oP3lK2jH9gF6dS4aZ1xCAA";
const AWS_ID: &str = "AKIAZ7K3ZQ5WQXNMJ2PA";

fn notebook(cells: serde_json::Value) -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5
    }))
    .unwrap()
}

/// The fixture tree: every place a secret hides, and look-alikes that are not secrets.
fn fixture(root: &Path) {
    let w = |p: &str, text: &str| {
        let path = root.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    let png =
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==".repeat(40);
    w(
        "nb/leaky.ipynb",
        &notebook(serde_json::json!([
            {"cell_type": "code", "id": "c0", "execution_count": 1, "metadata": {}, "outputs": [],
             "source": ["import os\n", format!("os.environ[\"GITHUB_TOKEN\"] = \"{GH}\"\n")]},
            {"cell_type": "code", "id": "c1", "execution_count": 2, "metadata": {},
             "source": ["print(key)"],
             "outputs": [{"output_type": "stream", "name": "stdout", "text": ["loading\n", format!("{SK}\n")]}]},
            {"cell_type": "code", "id": "c2", "execution_count": 3, "metadata": {}, "source": ["df"],
             "outputs": [{"output_type": "execute_result", "execution_count": 3, "metadata": {},
                          "data": {"text/html": [format!("<td>{AWS_ID}</td>")], "text/plain": ["df"]}}]},
            {"cell_type": "code", "id": "c3", "execution_count": 4, "metadata": {}, "source": ["boom()"],
             "outputs": [{"output_type": "error", "ename": "RuntimeError", "evalue": "auth failed",
                          "traceback": [format!("\u{1b}[0;31mRuntimeError\u{1b}[0m: token {GH}")]}]},
            {"cell_type": "code", "id": "c4", "execution_count": 5, "metadata": {}, "source": ["cfg"],
             "outputs": [{"output_type": "display_data", "metadata": {},
                          "data": {"application/json": {"client": {"api_key": SK}}, "text/plain": ["{...}"]}}]}
        ])),
    );
    w(
        "nb/clean.ipynb",
        &notebook(serde_json::json!([
            {"cell_type": "code", "id": "7f3a9c2e-4b1d-4e8a-9c3f-2a1b0c9d8e7f", "execution_count": 1,
             "metadata": {"execution": {"iopub.execute_input": "2024-06-01T10:00:00.123Z"}, "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
             "source": ["plt.plot(x)\n", "run_id = '3f2a9c1e-8b7d-4c6e-9a5f-1b2c3d4e5f60'"],
             "outputs": [{"output_type": "display_data", "metadata": {},
                          "data": {"image/png": png, "text/plain": ["<Figure size 640x480 with 1 Axes>"]}},
                         {"output_type": "stream", "name": "stdout", "text": ["commit 5d41402abc4b2a76b9719d911017c5925d41402a\n"]}]}
        ])),
    );
    w(".env", &format!("DB_PASSWORD=Xk29vLq7mZ4pR\nGITHUB_TOKEN={GH}\n"));
    w("config/app.yaml", &format!("service:\n  name: trainer\n  aws_access_key_id: {AWS_ID}\n"));
    w("config/settings.json", &format!("{{\"anthropic\": {{\"api_key\": \"{SK}\"}}}}\n"));
    w("scripts/deploy.sh", &format!("#!/bin/sh\ncurl -H 'Authorization: Bearer {GH}' https://api.example.org\n"));
    w("src/clean.py", "import torch\nx = torch.randn(3, 3)\nprint(x)  # UUID 3f2a9c1e-8b7d-4c6e-9a5f-1b2c3d4e5f60\n");
    w(".gitignore", "ignored/\n");
    w("ignored/secret.env", &format!("GITHUB_TOKEN={GH}\n"));
    w("trusted/notes.txt", &format!("GITHUB_TOKEN={GH}\n"));
    std::fs::write(root.join("bin.dat"), [0u8, 1, 2, 3].repeat(100)).unwrap();
}

fn scan_json(root: &Path, extra: &[&str]) -> (Output, Vec<serde_json::Value>) {
    let mut cmd = leakguard(root);
    cmd.args(["scan", "--format", "json"]).args(extra).env("ALLOWLIST_PATHS", root.join("trusted"));
    let out = cmd.output().unwrap();
    let reports: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
    (out, reports)
}

#[test]
fn scan_finds_every_placement_and_skips_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let (out, reports) = scan_json(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let at = |path: &str| reports.iter().filter(|r| r["path"].as_str().unwrap().ends_with(path)).collect::<Vec<_>>();
    let nb = at("nb/leaky.ipynb");
    let cells: Vec<(u64, &str)> =
        nb.iter().map(|r| (r["cell"].as_u64().unwrap(), r["location"].as_str().unwrap())).collect();
    for want in [(0, "source"), (1, "output"), (2, "output"), (3, "output"), (4, "output")] {
        assert!(cells.contains(&want), "missing {want:?} in {cells:?}");
    }
    let src = nb.iter().find(|r| r["cell"] == 0).unwrap();
    assert_eq!(src["line"], 2, "line within the cell");
    assert!(at("nb/clean.ipynb").is_empty(), "{:?}", at("nb/clean.ipynb"));
    assert_eq!(at(".env").len(), 2);
    let yaml = &at("config/app.yaml")[0];
    assert_eq!((yaml["line"].as_u64(), yaml["column"].as_u64()), (Some(3), Some(22)));
    assert_eq!(at("config/settings.json").len(), 1);
    assert_eq!(at("scripts/deploy.sh").len(), 1);
    assert!(at("src/clean.py").is_empty());
    assert!(at("ignored/secret.env").is_empty(), "gitignored");
    assert!(at("trusted/notes.txt").is_empty(), "allowlisted");
    for r in &reports {
        for field in ["rule_id", "category", "path", "line", "column", "fingerprint"] {
            assert!(!r[field].is_null(), "{field} in {r}");
        }
        assert!(r.get("secret").is_none());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains(&GH[..12]), "secrets are not printed without --show-secrets");
}

#[test]
fn exit_codes_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ok.txt"), "nothing to see\n").unwrap();
    let mut cmd = leakguard(dir.path());
    assert_eq!(cmd.args(["scan", "ok.txt"]).output().unwrap().status.code(), Some(0));
    let mut cmd = leakguard(dir.path());
    let out = cmd.args(["scan", "missing.txt"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.txt"));
    let nb = notebook(
        serde_json::json!([{"cell_type": "code", "source": [format!("t = '{GH}'")], "outputs": [], "metadata": {}}]),
    );
    std::fs::write(dir.path().join("cut.ipynb"), &nb[..nb.len() - 40]).unwrap();
    let mut cmd = leakguard(dir.path());
    let out = cmd.args(["scan", "--format", "json", "cut.ipynb"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "a damaged notebook is an error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid JSON"));
    let reports: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reports.len(), 1, "and is still scanned as text");
}

#[test]
fn baselines_key_on_the_secret_not_the_line() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let (_, all) = scan_json(dir.path(), &["--write-baseline", "baseline.json"]);
    let (out, rest) = scan_json(dir.path(), &["--baseline", "baseline.json"]);
    assert_eq!(out.status.code(), Some(0), "{rest:?}");
    assert!(!all.is_empty());
    // A new secret on an old line is still reported.
    let other = "ghp_Qx9vLm2Kp7Rt4Ws8Yz1Bc3Dd6Ff0Gh5Jk2Ln8P";
    std::fs::write(dir.path().join(".env"), format!("DB_PASSWORD=Xk29vLq7mZ4pR\nGITHUB_TOKEN={other}\n")).unwrap();
    let (out, rest) = scan_json(dir.path(), &["--baseline", "baseline.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0]["line"], 2);
}

#[test]
fn redact_in_place_keeps_notebook_structure() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let nb = dir.path().join("nb/leaky.ipynb");
    let before: serde_json::Value = serde_json::from_slice(&std::fs::read(&nb).unwrap()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&nb, std::fs::Permissions::from_mode(0o640)).unwrap();
    let mut cmd = leakguard(dir.path());
    let dry = cmd.args(["redact", "--dry-run"]).arg(&nb).output().unwrap();
    assert!(String::from_utf8_lossy(&dry.stdout).contains("would be masked"));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(&nb).unwrap()).unwrap(),
        before,
        "dry run writes nothing"
    );
    let mut cmd = leakguard(dir.path());
    assert!(cmd.args(["redact", "--in-place"]).arg(&nb).arg(dir.path().join(".env")).status().unwrap().success());
    let after: serde_json::Value = serde_json::from_slice(&std::fs::read(&nb).unwrap()).unwrap();
    assert_eq!(std::fs::metadata(&nb).unwrap().permissions().mode() & 0o777, 0o640);
    assert_eq!(before["cells"].as_array().unwrap().len(), after["cells"].as_array().unwrap().len());
    assert_eq!(before["metadata"], after["metadata"]);
    assert_eq!(after["cells"][1]["outputs"][0]["text"][0], "loading\n");
    let mut cmd = leakguard(dir.path());
    assert_eq!(cmd.args(["scan", "nb/leaky.ipynb", ".env"]).output().unwrap().status.code(), Some(0));
    assert!(std::fs::read_to_string(dir.path().join(".env")).unwrap().contains("GITHUB_TOKEN=[REDACTED]"));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("nb"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn redact_file_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("log.txt"), format!("a {GH} b\n")).unwrap();
    let mut cmd = leakguard(dir.path());
    let out = cmd.args(["redact", "log.txt"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a [REDACTED] b\n");
}
