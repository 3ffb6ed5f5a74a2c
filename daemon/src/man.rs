//! tokenbrokerd(8) under `man/`, generated from the daemon's clap `Args` by this test, which
//! fails when the committed page is stale. After changing the arguments:
//! `TOKENBROKER_WRITE_MAN=1 cargo test -p tokenbroker-daemon --lib man` (and commit man/).

use std::path::Path;

use clap::CommandFactory;

fn page() -> Vec<u8> {
    let mut text = Vec::new();
    clap_mangen::Man::new(crate::Args::command()).section("8").render(&mut text).expect("rendered to memory");
    text
}

#[test]
fn the_committed_man_page_is_the_one_the_arguments_make() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../man/tokenbrokerd.8");
    let page = page();
    if std::env::var_os("TOKENBROKER_WRITE_MAN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &page).unwrap();
    }
    assert!(
        std::fs::read(&path).ok() == Some(page),
        "man/tokenbrokerd.8 is stale or missing; regenerate it with \
         `TOKENBROKER_WRITE_MAN=1 cargo test -p tokenbroker-daemon --lib man`"
    );
}

#[test]
fn the_page_names_the_files_signals_and_environment() {
    let page = String::from_utf8(page()).unwrap();
    for part in ["SIGHUP", "TOKENBROKER_CONFIG", "RUST_LOG", "config.toml"] {
        assert!(page.contains(part), "{part} missing from tokenbrokerd.8");
    }
}
