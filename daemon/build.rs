//! Link-time settings for tokenbrokerd: its `.rela.dyn` (~300 KiB) would otherwise stay
//! resident for the daemon's whole life.

include!("../build-support/relr.rs");

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../build-support/relr.rs");
    pack_relative_relocations();
}
