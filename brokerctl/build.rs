//! Link-time settings for brokerctl: fewer relocations mean a faster start for a command run
//! once per token.

include!("../build-support/relr.rs");

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../build-support/relr.rs");
    pack_relative_relocations();
}
