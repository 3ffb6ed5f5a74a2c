//! The configs shipped in examples/ go through the daemon's own loader, so that none of them
//! can drift from what the daemon accepts.

use std::path::Path;

use super::Config;

#[test]
fn every_example_config_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut loaded = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(!config.accounts.is_empty(), "{} has no account", path.display());
        assert!(
            config.default_account().is_some(),
            "{}: which account does a bare `brokerctl token` use?",
            path.display()
        );
        loaded.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    // scripts/demo runs the daemon with test-idp.toml.
    assert!(loaded.len() >= 3 && loaded.iter().any(|f| f == "test-idp.toml"), "found only {loaded:?}");
}
