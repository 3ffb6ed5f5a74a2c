//! `brokerctl exec` and `brokerctl token --header`: a token handed to another program without
//! passing through a command line (every user can read those) or a shell.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;

use tokenbroker::protocol::AccessToken;

/// Whether `name` is a portable environment variable name (POSIX: letters, digits and `_`,
/// not starting with a digit). Anything else could not be read back by a shell, or would
/// smuggle an `=` into the environment.
pub fn env_name_ok(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Replace this process with `command`, the token in `$env_name`. Returns only if it could
/// not be run: the exit code (127 not found, 126 otherwise, as shells) and what to say.
pub fn exec(token: &AccessToken, env_name: &str, command: &[OsString]) -> (u8, String) {
    let Some((program, args)) = command.split_first() else { return (2, "no command to run".into()) };
    let error = std::process::Command::new(program).args(args).env(env_name, token.access_token.expose()).exec();
    let code = if error.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 };
    (code, format!("cannot run {}: {error}", program.to_string_lossy()))
}

/// `Authorization: SCHEME TOKEN`, the scheme from the token's type. `None` when the type or the
/// token has characters that do not belong in a header (a CR or LF would start a header of the
/// IdP's choosing in the caller's request).
pub fn header(token: &AccessToken) -> Option<String> {
    let scheme = match token.token_type.as_str() {
        t if t.eq_ignore_ascii_case("bearer") => "Bearer",
        t if t.eq_ignore_ascii_case("dpop") => "DPoP",
        t if !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+".contains(&b)) => t,
        _ => return None,
    };
    let value = token.access_token.expose();
    // RFC 6750's b64token, and what JWTs and opaque tokens are made of.
    let fits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b));
    fits.then(|| format!("Authorization: {scheme} {value}"))
}

#[cfg(test)]
mod tests {
    use tokenbroker::Secret;

    use super::*;

    fn token(kind: &str, value: &str) -> AccessToken {
        AccessToken {
            account: "a".into(),
            access_token: Secret::new(value),
            token_type: kind.into(),
            expires_at: 0,
            scope: None,
        }
    }

    #[test]
    fn env_names_are_portable_ones() {
        for good in ["TOKEN", "_t", "GITLAB_TOKEN2", "a"] {
            assert!(env_name_ok(good), "{good}");
        }
        for bad in ["", "2X", "A=B", "A-B", "A B", "É", "A\0", "PATH\n"] {
            assert!(!env_name_ok(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_header_takes_the_tokens_type_and_refuses_what_would_break_it() {
        assert_eq!(header(&token("Bearer", "ey.J-_x")).unwrap(), "Authorization: Bearer ey.J-_x");
        assert_eq!(header(&token("bearer", "abc=")).unwrap(), "Authorization: Bearer abc=");
        assert_eq!(header(&token("DPoP", "abc")).unwrap(), "Authorization: DPoP abc");
        assert!(header(&token("Bearer\r\nX-Evil: 1", "abc")).is_none());
        assert!(header(&token("Bearer", "abc\r\nX-Evil: 1")).is_none());
        assert!(header(&token("Bearer", "a b")).is_none());
        assert!(header(&token("", "abc")).is_none());
    }
}
