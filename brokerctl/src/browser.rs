//! Which browser `brokerctl login` opens, and opening it. The person's choice, most specific
//! first: `--browser-command`, the config's `browser_command`, `$BROWSER` (colon-separated,
//! tried in turn, as xdg-open and Python's webbrowser read it), then the system's opener
//! (xdg-open, or open on macOS). Whichever it is, it gets the one-time link of `handoff`,
//! never the login's own URL (an opener's command line is readable by every user).

use std::path::Path;

use serde::Deserialize;

use crate::handoff::Handoff;

/// A browser command: the program and its arguments; `%s` in an argument stands for the URL,
/// which otherwise goes last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opener(pub Vec<String>);

/// Where the choice came from: a chosen browser that cannot be started is reported as
/// such, and only the `$BROWSER` list and the system's opener are fallen back through.
#[derive(Debug, PartialEq, Eq)]
pub struct Choice {
    pub openers: Vec<Opener>,
    pub from: &'static str,
}

/// The browsers to try, from the flag, the config, `$BROWSER` and the system.
pub fn choose(flag: Option<&str>) -> Choice {
    let config = crate::git_hosts::config_path(None).and_then(|p| configured(&p));
    pick(flag, config, std::env::var("BROWSER").ok().as_deref())
}

fn pick(flag: Option<&str>, config: Option<Vec<String>>, env_browser: Option<&str>) -> Choice {
    let words = |cmd: &str| Opener(cmd.split_whitespace().map(str::to_owned).collect());
    if let Some(flag) = flag.filter(|f| !f.trim().is_empty()) {
        return Choice { openers: vec![words(flag)], from: "--browser-command" };
    }
    if let Some(argv) = config.filter(|a| a.first().is_some_and(|p| !p.is_empty())) {
        return Choice { openers: vec![Opener(argv)], from: "the config's browser_command" };
    }
    let system = Opener(vec![if cfg!(target_os = "macos") { "open" } else { "xdg-open" }.to_owned()]);
    let mut openers: Vec<Opener> =
        env_browser.unwrap_or_default().split(':').filter(|e| !e.trim().is_empty()).map(words).collect();
    let from = if openers.is_empty() { "the system's opener" } else { "$BROWSER" };
    openers.push(system);
    Choice { openers, from }
}

/// The config's `browser_command`, read without the daemon's parser (which checks it).
fn configured(path: &Path) -> Option<Vec<String>> {
    #[derive(Deserialize)]
    struct OnlyBrowser {
        browser_command: Option<Vec<String>>,
    }
    let text = std::fs::read_to_string(path).ok()?;
    toml::from_str::<OnlyBrowser>(&text).ok()?.browser_command
}

impl Opener {
    /// The command line for `url`.
    fn argv(&self, url: &str) -> Vec<String> {
        let mut argv: Vec<String> = self.0.iter().map(|a| a.replace("%s", url)).collect();
        if !self.0.iter().any(|a| a.contains("%s")) {
            argv.push(url.to_owned());
        }
        argv
    }
}

/// Open a browser on a one-time link to `url`; the link lives as long as the returned
/// `Handoff`.
pub fn open(url: &str, choice: &Choice) -> Option<Handoff> {
    let handoff = match Handoff::start(url) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("(could not serve the browser a one-time link: {e}; open the address yourself)");
            return None;
        }
    };
    for opener in &choice.openers {
        let argv = opener.argv(handoff.url());
        let spawned = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if spawned.is_ok() {
            return Some(handoff);
        }
        // The person named this browser: say it did not start rather than open another.
        if choice.from.starts_with("--") || choice.from.starts_with("the config") {
            break;
        }
    }
    let tried: Vec<&str> = choice.openers.iter().map(|o| o.0[0].as_str()).collect();
    eprintln!("(could not start {} (from {}); open the address yourself)", tried.join(", "), choice.from);
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argvs(c: &Choice) -> Vec<Vec<String>> {
        c.openers.iter().map(|o| o.argv("URL")).collect()
    }

    #[test]
    fn the_flag_wins_over_the_config_which_wins_over_browser_which_wins_over_the_system() {
        let config = Some(vec!["firefox".to_owned(), "--new-window".to_owned()]);
        let flag = pick(Some("chromium --incognito"), config.clone(), Some("lynx"));
        assert_eq!(
            (argvs(&flag), flag.from),
            (vec![vec!["chromium".into(), "--incognito".into(), "URL".into()]], "--browser-command")
        );
        let conf = pick(None, config.clone(), Some("lynx"));
        assert_eq!(argvs(&conf), vec![vec!["firefox".to_owned(), "--new-window".into(), "URL".into()]]);
        let env = pick(None, None, Some("w3m %s -dump:lynx"));
        let system = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
        assert_eq!(
            argvs(&env),
            vec![
                vec!["w3m".to_owned(), "URL".into(), "-dump".into()],
                vec!["lynx".into(), "URL".into()],
                vec![system.into(), "URL".into()]
            ]
        );
        assert_eq!(env.from, "$BROWSER");
        let none = pick(Some(" "), Some(vec![]), Some("::"));
        assert_eq!((argvs(&none), none.from), (vec![vec![system.to_owned(), "URL".into()]], "the system's opener"));
    }

    #[test]
    fn the_config_key_is_read_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "browser_command = [\"firefox\", \"-P\", \"work\"]\n[accounts.x]\nissuer = \"https://i\"\n",
        )
        .unwrap();
        assert_eq!(configured(&path), Some(vec!["firefox".into(), "-P".into(), "work".into()]));
        std::fs::write(&path, "[accounts.x]\nissuer = \"https://i\"\n").unwrap();
        assert_eq!(configured(&path), None);
        assert_eq!(configured(&dir.path().join("missing.toml")), None);
    }
}
