// Shared by the build scripts of tokenbrokerd and brokerctl (`include!`d, not a crate).

/// Pack the relative relocations (DT_RELR) of this package's binaries: a PIE's `.rela.dyn`
/// is read whole by the loader at every start, and each entry is work before `main`; packed,
/// they are a few KiB. Only where the C library understands them (glibc 2.36 and later).
fn pack_relative_relocations() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu")
        && glibc_has_relr()
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether the C library the binary will load defines the `GLIBC_ABI_DT_RELR` version.
fn glibc_has_relr() -> bool {
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let candidates = [
        format!("/lib/{arch}-linux-gnu/libc.so.6"),
        format!("/usr/lib/{arch}-linux-gnu/libc.so.6"),
        "/lib64/libc.so.6".to_owned(),
        "/usr/lib64/libc.so.6".to_owned(),
    ];
    let needle = b"GLIBC_ABI_DT_RELR";
    candidates
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .any(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
}
