//! `brokerctl completions bash|zsh|fish`: the shell's completion script, from the same clap
//! definitions as the parser. Only this command builds it: `brokerctl token` and the other
//! clap-free paths never reach here.

use clap_complete::Shell;

use crate::args::ShellArg;

pub fn print(shell: ShellArg, command: &mut clap::Command) {
    let shell = match shell {
        ShellArg::Bash => Shell::Bash,
        ShellArg::Zsh => Shell::Zsh,
        ShellArg::Fish => Shell::Fish,
    };
    // Into memory first: clap_complete panics on a failed write (`… | head` closing the pipe).
    let mut script = Vec::new();
    clap_complete::generate(shell, command, "brokerctl", &mut script);
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), &script);
}
