//! The systemd unit, and a snap's name, from `/proc/PID/cgroup` and the AppArmor label.
//!
//! Both are HINTS, not proof: a user's own processes can make cgroups under their
//! `user@UID.service` with any name (`systemd-run --user --scope --unit=anything`, or a
//! `mkdir` in the delegated tree), and an unconfined process may switch itself into any loaded
//! AppArmor profile (then it is as confined as that profile says). What they tell apart is
//! processes that did not try to look like another.

/// What the cgroup line says.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Found {
    /// The deepest path component that is a unit name ending in `.service` or `.scope`.
    pub unit: Option<String>,
    /// `snap.NAME` when that unit is a snap's (`snap.NAME.APP-….scope`, `snap.NAME.APP.service`).
    pub snap: Option<String>,
}

/// Parse `/proc/PID/cgroup`: the one cgroup v2 line (`0::/path`). No such line, or more than
/// one, or a path that is not absolute: nothing found.
pub fn parse(text: &str) -> Found {
    let mut v2 = text.lines().filter_map(|l| l.strip_prefix("0::"));
    let (Some(path), None) = (v2.next(), v2.next()) else { return Found::default() };
    if !path.starts_with('/') {
        return Found::default();
    }
    let Some(unit) = path.rsplit('/').find(|c| c.ends_with(".service") || c.ends_with(".scope")) else {
        return Found::default();
    };
    if !is_unit_name(unit) {
        return Found::default();
    }
    Found { snap: snap_of_unit(unit), unit: Some(unit.to_owned()) }
}

/// systemd's unit name rules: at most 255 bytes of ASCII letters, digits and `:-_.\@`, and a
/// name before the suffix.
fn is_unit_name(s: &str) -> bool {
    let stem = s.strip_suffix(".service").or_else(|| s.strip_suffix(".scope")).unwrap_or("");
    !stem.is_empty() && s.len() <= 255 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b))
}

/// `snap.NAME` of a snap's scope or service unit.
fn snap_of_unit(unit: &str) -> Option<String> {
    let stem = unit.strip_suffix(".scope").or_else(|| unit.strip_suffix(".service"))?;
    let mut parts = stem.strip_prefix("snap.")?.split('.');
    let name = parts.next()?;
    // An app (or `hook`) must follow: `snap.NAME.scope` is not a snap's.
    parts.next()?;
    is_snap_name(name).then(|| format!("snap.{name}"))
}

/// A snap's name (2 to 40 of `a-z 0-9 -`) with an optional `_KEY` instance key (1 to 10 of
/// `a-z 0-9`).
fn is_snap_name(s: &str) -> bool {
    let (name, key) = match s.split_once('_') {
        Some((name, key)) => (name, Some(key)),
        None => (s, None),
    };
    let name_ok = (2..=40).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.bytes().any(|b| b.is_ascii_lowercase())
        && !name.starts_with('-')
        && !name.ends_with('-');
    let key_ok = key
        .is_none_or(|k| (1..=10).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    name_ok && key_ok
}

/// `snap.NAME` from an AppArmor label (`/proc/PID/attr/apparmor/current`:
/// `snap.NAME.APP (enforce)`). A stacked label (`a//&b`), `unconfined`, or anything not a
/// snap's: `None`.
pub fn snap_of_apparmor_label(text: &str) -> Option<String> {
    let text = text.strip_suffix('\n').unwrap_or(text);
    let label = match text.rsplit_once(" (") {
        Some((label, mode)) if mode.ends_with(')') => label,
        _ => text,
    };
    if label.contains("//") || label.contains(char::is_whitespace) {
        return None;
    }
    let mut parts = label.strip_prefix("snap.")?.split('.');
    let name = parts.next()?;
    parts.next()?;
    is_snap_name(name).then(|| format!("snap.{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(text: &str) -> Option<String> {
        parse(text).unit
    }

    #[test]
    fn the_deepest_service_or_scope_of_the_v2_line_is_the_unit() {
        let user = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-org.gnome.Terminal.slice/vte-spawn-1b2c.scope\n";
        assert_eq!(unit(user).as_deref(), Some("vte-spawn-1b2c.scope"));
        assert_eq!(unit("0::/system.slice/sshd.service\n").as_deref(), Some("sshd.service"));
        // A process in a sub-cgroup of its service (delegation) belongs to the service.
        assert_eq!(unit("0::/system.slice/foo.service/payload\n").as_deref(), Some("foo.service"));
        assert_eq!(unit("0::/user.slice/user-1000.slice/user@1000.service/init.scope").as_deref(), Some("init.scope"));
        // v1 lines around the v2 one (hybrid hierarchy) are ignored.
        let hybrid = "12:pids:/user.slice/evil.service\n1:name=systemd:/x.scope\n0::/user.slice/user-1000.slice/session-3.scope\n";
        assert_eq!(unit(hybrid).as_deref(), Some("session-3.scope"));
    }

    #[test]
    fn no_unit_is_made_up_from_hostile_or_odd_lines() {
        for text in [
            "",
            "0::/\n",
            "0::/user.slice\n",
            // cgroup v1 only.
            "1:name=systemd:/user.slice/a.service\n",
            // Two v2 lines: which one? Neither.
            "0::/a.service\n0::/b.service\n",
            // Not absolute (a cgroup namespace shows "/.." paths, which are absolute).
            "0::a.service\n",
            // A bare suffix, spaces, control and non-ASCII characters, an overlong name.
            "0::/.service\n",
            "0::/my app.service\n",
            "0::/a\tb.service\n",
            "0::/caf\u{e9}.service\n",
            &format!("0::/{}.service\n", "a".repeat(250)),
            // Looks alike, is not.
            "0::/a.services\n",
            "0::/a.service.d\n",
        ] {
            assert_eq!(parse(text), Found::default(), "{text:?}");
        }
        // The odd component below a real unit does not hide it, but is not taken either.
        assert_eq!(unit("0::/system.slice/ok.service/bad name.scope\n"), None);
        assert_eq!(unit("0::/../../x.slice/y.scope\n").as_deref(), Some("y.scope"));
    }

    #[test]
    fn a_snaps_scope_or_service_names_the_snap_as_a_hint() {
        let scope = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/snap.firefox.firefox-2f4e1c.scope\n";
        assert_eq!(parse(scope).snap.as_deref(), Some("snap.firefox"));
        assert_eq!(parse("0::/system.slice/snap.lxd.daemon.service\n").snap.as_deref(), Some("snap.lxd"));
        assert_eq!(parse("0::/x/snap.foo_dev.hook.configure-1.scope\n").snap.as_deref(), Some("snap.foo_dev"));
        for not_snap in [
            "0::/x/snap.scope\n",
            "0::/x/snap.firefox.scope\n",
            "0::/x/snap.Firefox.app.scope\n",
            "0::/x/snap.-x.app.scope\n",
            "0::/x/snapd.service\n",
            "0::/x/app-snap.firefox.firefox.scope\n",
        ] {
            assert_eq!(parse(not_snap).snap, None, "{not_snap:?}");
        }
    }

    #[test]
    fn the_apparmor_label_names_a_snap_only_when_it_is_one() {
        assert_eq!(snap_of_apparmor_label("snap.firefox.firefox (enforce)\n").as_deref(), Some("snap.firefox"));
        assert_eq!(snap_of_apparmor_label("snap.lxd.hook.configure (complain)").as_deref(), Some("snap.lxd"));
        for other in [
            "unconfined\n",
            "snap.firefox (enforce)\n",
            "/usr/bin/man (enforce)\n",
            "snap.a.b//&snap.c.d (enforce)\n",
            "snap.fire fox.x (enforce)\n",
            "system_u:system_r:unconfined_t:s0\n",
            "",
        ] {
            assert_eq!(snap_of_apparmor_label(other), None, "{other:?}");
        }
    }
}
