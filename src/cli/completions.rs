//! Shell completions and man pages, generated from the one clap [`Cli`]
//! definition so they can never drift from the real flags: `ficha
//! completions SHELL` for users, and the hidden `ficha man DIR` that the
//! packaging script (packaging/build-deb.sh) runs to write the roff pages.
//! Neither reads the configuration or touches the database.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{CommandFactory as _, Subcommand};
use clap_complete::Shell;

use super::Cli;

/// The binary's name, as completions register it and man pages title it.
const BIN_NAME: &str = "ficha";

/// `ficha completions` and `ficha man`, flattened into the top-level commands.
#[derive(Debug, Subcommand)]
pub enum DocsCommand {
    /// Print a shell completion script on stdout, e.g.
    /// `ficha completions bash > /etc/bash_completion.d/ficha`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: Shell,
    },
    /// Write the man pages (ficha.1 and one per subcommand) into DIR.
    #[command(hide = true)]
    Man {
        /// Directory to write the pages into; created if missing.
        dir: PathBuf,
    },
}

/// Runs `ficha completions` or `ficha man`.
pub fn run(cmd: &DocsCommand) -> anyhow::Result<()> {
    match cmd {
        DocsCommand::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), BIN_NAME, &mut out);
            // A reader that stops early (`| head`) ends the command with
            // SIGPIPE, as for every command but serve (main.rs).
            std::io::stdout()
                .write_all(&out)
                .context("Failed to write the completion script")
        }
        DocsCommand::Man { dir } => write_man_pages(dir),
    }
}

/// Writes `ficha.1` and `ficha-SUBCOMMAND[-...].1` for every visible
/// subcommand into `dir`.
pub fn write_man_pages(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("Failed to create {}", dir.display()))?;
    // clap_mangen's own generate_to leaves the version off subcommands'
    // pages: each page here names it in its footer.
    let mut cmd = Cli::command().name(BIN_NAME).disable_help_subcommand(true);
    cmd.build();
    let source = format!("{BIN_NAME} {}", env!("CARGO_PKG_VERSION"));
    write_page_tree(&cmd, &source, dir)
}

fn write_page_tree(cmd: &clap::Command, source: &str, dir: &Path) -> anyhow::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_page_tree(sub, source, dir)?;
    }
    clap_mangen::Man::new(cmd.clone())
        .source(source)
        .generate_to(dir)
        .with_context(|| format!("Failed to write a man page into {}", dir.display()))?;
    Ok(())
}
