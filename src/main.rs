//! The `ficha` binary: parse the command line, set up logging, dispatch.

use clap::Parser as _;
use ficha::cli::{self, Cli, Command};

// jemalloc rather than glibc's malloc: a token allocates a few dozen small,
// short-lived buffers across the runtime's threads, and measured side by
// side (BENCHMARKS.md) jemalloc took 5-8 % less CPU per token for ~3 MiB
// more resident memory. mimalloc was no faster here and held 17 MiB more.
// The C code's allocations too (Cargo.toml: `unprefixed_malloc_...`):
// aws-lc allocates its signing context and SQLite its statements per
// token, and through glibc's malloc that was about 5 % of a token's CPU.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        // One clear line on stderr, non-zero exit (SPEC §2).
        let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
        eprintln!("error: {}", chain.join(": "));
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_)) {
        // A command's output piped into `head` ends quietly, as other Unix
        // tools do, instead of panicking on EPIPE. Not for `serve`: Rust
        // ignores SIGPIPE so that a client hanging up is an error on its
        // socket, not the end of the server (sockets send with
        // MSG_NOSIGNAL either way, so only stdout and stderr change).
        sigpipe::reset();
    }
    cli::run(cli).await
}
