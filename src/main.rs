//! The `ficha` binary: parse the command line, set up logging, dispatch.

use clap::Parser as _;
use ficha::cli::{self, Cli, Command};
use ficha::startup::Application;

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
    let config = cli.config()?;
    match &cli.command {
        Command::Serve(_) => {
            let _log_guard = ficha::telemetry::init(cli.log_format().as_deref() == Some("json"));
            let app = Application::build(config).await?;
            println!("ficha listening on http://{}", app.local_addr());
            app.run_until_stopped().await
        }
        other => cli::run(other, &config, cli.json).await,
    }
}
