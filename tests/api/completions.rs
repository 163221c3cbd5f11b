//! `ficha completions SHELL` and the hidden `ficha man DIR` (issue 15,
//! packaging): generated from the clap definition, without reading any
//! configuration. tests/deb.sh checks them again as the package installs
//! them.

use std::process::{Command, Output};

use clap::CommandFactory as _;

fn ficha(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_ficha"))
        .args(args)
        // Neither command may read the configuration: a broken one is no
        // obstacle to completing or documenting the CLI.
        .env("FICHA_CONFIG", "/nonexistent/ficha.toml")
        .env("FICHA_KEK", "not base64 at all")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ficha {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// What bash offers for the words typed so far (the last is being completed).
fn bash_offers(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let out = Command::new("bash")
        .arg("-c")
        .arg(
            r#"source "$0"
            COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
            _ficha ficha "${COMP_WORDS[$COMP_CWORD]}" "${COMP_WORDS[$COMP_CWORD-1]}"
            printf '%s\n' "${COMPREPLY[@]}""#,
        )
        .arg(script)
        .args(words)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completion_completes_commands_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("ficha.bash");
    std::fs::write(&script, ficha(&["completions", "bash"]).stdout).unwrap();

    assert_eq!(bash_offers(&script, &["ficha", "cl"]), ["client"]);
    let key = bash_offers(&script, &["ficha", "key", ""]);
    for sub in ["generate", "list", "rotate", "retire"] {
        assert!(key.contains(&sub.to_owned()), "{key:?}");
    }
    let serve = bash_offers(&script, &["ficha", "serve", "--trusted-"]);
    assert_eq!(serve, ["--trusted-proxies"]);
}

#[test]
fn zsh_and_fish_completions_name_every_command() {
    let zsh = String::from_utf8(ficha(&["completions", "zsh"]).stdout).unwrap();
    let fish = String::from_utf8(ficha(&["completions", "fish"]).stdout).unwrap();
    assert!(zsh.starts_with("#compdef ficha"), "{zsh:.80}");
    for sub in ficha::cli::Cli::command().get_subcommands() {
        if sub.is_hide_set() {
            continue;
        }
        let name = sub.get_name();
        assert!(zsh.contains(&format!("'{name}:")), "zsh lacks {name}");
        assert!(
            fish.contains(&format!("-a \"{name}\"")),
            "fish lacks {name}"
        );
    }
}

#[test]
fn man_writes_a_page_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man1");
    ficha(&["man", pages.to_str().unwrap()]);

    // One page for ficha and for every visible command at every depth.
    fn expect(cmd: &clap::Command, prefix: &str, pages: &std::path::Path) {
        let name = format!("{prefix}{}", cmd.get_name());
        let page = std::fs::read_to_string(pages.join(format!("{name}.1")))
            .unwrap_or_else(|e| panic!("{name}.1: {e}"));
        assert!(
            page.contains(&format!(".TH {name} 1")),
            "{name}.1: {page:.200}"
        );
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            expect(sub, &format!("{name}-"), pages);
        }
    }
    let mut cli = ficha::cli::Cli::command().disable_help_subcommand(true);
    cli.build();
    expect(&cli, "", &pages);

    let serve = std::fs::read_to_string(pages.join("ficha-serve.1")).unwrap();
    assert!(serve.contains(r"\-\-trusted\-proxies"), "{serve}");
    // `man` is for packagers: neither in --help nor given a page.
    assert!(!pages.join("ficha-man.1").exists());
    let help = String::from_utf8(ficha(&["--help"]).stdout).unwrap();
    assert!(help.contains("  completions "), "{help}");
    assert!(!help.contains("  man "), "{help}");
}
