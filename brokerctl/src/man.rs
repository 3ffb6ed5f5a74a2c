//! The man pages under `man/`, brokerctl(1) and one page a subcommand (brokerctl-login(1), …),
//! are generated from the clap definitions by this test, which fails when the committed ones
//! are stale. After changing the command line:
//! `TOKENBROKER_WRITE_MAN=1 cargo test -p brokerctl --lib man` (and commit man/).

use std::path::{Path, PathBuf};

use clap::CommandFactory;

use crate::args::Cli;

/// Every page: its file name and its roff text.
fn pages() -> Vec<(String, Vec<u8>)> {
    let mut command = Cli::command();
    command.build();
    let mut pages = Vec::new();
    collect(&command, "brokerctl", &mut pages);
    pages
}

fn collect(command: &clap::Command, name: &str, pages: &mut Vec<(String, Vec<u8>)>) {
    let mut text = Vec::new();
    // clap takes a command's name as &'static str (without its `string` feature); a test may leak.
    let static_name: &'static str = Box::leak(name.to_owned().into_boxed_str());
    let page = command.clone().name(static_name).bin_name(name.replace('-', " ")).version(env!("CARGO_PKG_VERSION"));
    clap_mangen::Man::new(page).render(&mut text).expect("rendered to memory");
    pages.push((format!("{name}.1"), text));
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        collect(sub, &format!("{name}-{}", sub.get_name()), pages);
    }
}

fn man_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../man")
}

#[test]
fn the_committed_man_pages_are_those_the_command_line_makes() {
    let write = std::env::var_os("TOKENBROKER_WRITE_MAN").is_some();
    let pages = pages();
    // A page of a subcommand that is gone is stale too.
    let mut stale: Vec<String> = std::fs::read_dir(man_dir())
        .map(|dir| dir.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    stale.retain(|f| f.starts_with("brokerctl") && f.ends_with(".1") && !pages.iter().any(|(p, _)| p == f));
    if write {
        for gone in stale.drain(..) {
            std::fs::remove_file(man_dir().join(gone)).unwrap();
        }
    }
    for (file, text) in pages {
        let path = man_dir().join(&file);
        if write {
            std::fs::create_dir_all(man_dir()).unwrap();
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(&text[..]) {
            stale.push(file);
        }
    }
    assert!(
        stale.is_empty(),
        "stale or missing under man/: {stale:?}; regenerate with `TOKENBROKER_WRITE_MAN=1 cargo test -p brokerctl --lib man`"
    );
}

#[test]
fn the_page_says_the_exit_codes_and_the_environment() {
    let (_, page) = pages().into_iter().find(|(f, _)| f == "brokerctl.1").unwrap();
    let page = String::from_utf8(page).unwrap();
    for part in ["Exit codes", "TOKENBROKER_SOCKET", "BROWSER", "NO_COLOR", "completions"] {
        assert!(page.contains(part), "{part} missing from brokerctl.1");
    }
}
