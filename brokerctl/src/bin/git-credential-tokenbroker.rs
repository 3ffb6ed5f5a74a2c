//! git's credential helper, so that `git config credential.helper tokenbroker` finds it
//! (git runs `git-credential-NAME`): the same code as `brokerctl git-credential`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let Some(args) = args.iter().map(|a| a.to_str()).collect::<Option<Vec<&str>>>() else {
        eprintln!("tokenbroker: arguments must be UTF-8");
        return ExitCode::from(2);
    };
    brokerctl::git_credential::main(&args)
}
