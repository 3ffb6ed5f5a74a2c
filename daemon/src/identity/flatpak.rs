//! The Flatpak application ID from a process's `/.flatpak-info`, read as xdg-desktop-portal
//! reads it: the file in the process's own root (`/proc/PID/root/.flatpak-info`, opened without
//! following a symlink there, which would resolve in the daemon's root), a regular file, a key
//! file whose `[Runtime]` (if there is one) or `[Application]` group's `name` is a valid ID.
//!
//! What it proves: flatpak puts the file at the root of every sandbox, read-only, and a
//! sandboxed app can neither change it nor leave its sandbox (its seccomp filter refuses the
//! user and mount namespaces that would be needed), so an app in a Flatpak sandbox cannot claim
//! another ID. What it does not: an UNSANDBOXED process of the same user can make a root of its
//! own (`bwrap`, an unprivileged user namespace) with any `/.flatpak-info` in it, and so claim
//! any ID. Such a process could also read the user's files and run any program, so the ID
//! tells sandboxed apps apart from each other and from the host; it is no proof against the
//! user's unsandboxed programs.

/// The ID from the text of a `.flatpak-info`, or `None` when it is not one, names no valid ID,
/// or is ambiguous (a `name` given twice in the group that counts).
pub fn app_id(text: &str) -> Option<String> {
    let mut group = "";
    let mut has_runtime = false;
    let (mut application, mut runtime) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            group = rest.strip_suffix(']')?;
            has_runtime |= group == "Runtime";
            continue;
        }
        let (key, value) = line.split_once('=')?;
        if key.trim_end() == "name" {
            match group {
                "Application" => application.push(value.trim_start()),
                "Runtime" => runtime.push(value.trim_start()),
                _ => {}
            }
        }
    }
    let names = if has_runtime { runtime } else { application };
    let [name] = names[..] else { return None };
    is_valid_id(name).then(|| name.to_owned())
}

/// Flatpak's rule for application IDs: at most 255 bytes, three or more dot-separated
/// elements, each non-empty, of ASCII letters, digits and `_` (and `-` in the last), not
/// beginning with a digit.
pub fn is_valid_id(id: &str) -> bool {
    let elements: Vec<&str> = id.split('.').collect();
    let last = elements.len() - 1;
    id.len() <= 255
        && elements.len() >= 3
        && elements.iter().enumerate().all(|(i, e)| {
            let ok = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || (i == last && b == b'-');
            e.bytes().next().is_some_and(|b| !b.is_ascii_digit()) && e.bytes().all(ok)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &str = "[Application]\nname=org.mozilla.firefox\nruntime=runtime/org.freedesktop.Platform/x86_64/23.08\n\n[Instance]\ninstance-id=1234567\napp-path=/var/lib/flatpak/app/org.mozilla.firefox/x86_64/stable/abc/files\n\n[Context]\nshared=network;ipc;\n";

    #[test]
    fn the_applications_name_is_the_id() {
        assert_eq!(app_id(REAL).as_deref(), Some("org.mozilla.firefox"));
        // Spaces around `=` and comments, as GKeyFile allows them.
        assert_eq!(app_id("# c\n[Application]\nname = org.x.Y-z\n").as_deref(), Some("org.x.Y-z"));
        // A runtime's sandbox: the runtime's name counts, as in xdg-desktop-portal.
        let runtime = "[Runtime]\nname=org.freedesktop.Sdk\n[Application]\nname=org.evil.App\n";
        assert_eq!(app_id(runtime).as_deref(), Some("org.freedesktop.Sdk"));
    }

    #[test]
    fn hostile_or_broken_files_name_no_app() {
        for text in [
            "",
            "name=org.x.Y\n",
            "[Instance]\nname=org.x.Y\n",
            "[Application]\nname=org.x.Y\nname=org.evil.Z\n",
            "[Application]\nname=org.x.Y\n[Application]\nname=org.evil.Z\n",
            "[Application\nname=org.x.Y\n",
            "[Application]\nname\n",
            "[Application]\nname=org.x\n",
            "[Application]\nname=org..Y\n",
            "[Application]\nname=org.x-y.Z\n",
            "[Application]\nname=org.1x.Y\n",
            "[Application]\nname=.org.x.Y\n",
            "[Application]\nname=org.x.Y.\n",
            "[Application]\nname=org.x.Y/../../z\n",
            "[Application]\nname=org.x.Y z\n",
            "[Application]\nname=org.x.Caf\u{e9}\n",
            "[Runtime]\n[Application]\nname=org.x.Y\n",
        ] {
            assert_eq!(app_id(text), None, "{text:?}");
        }
        assert!(!is_valid_id(&format!("org.x.{}", "a".repeat(250))));
    }
}
