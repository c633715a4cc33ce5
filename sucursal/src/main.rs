//! `colmena-sucursal`: parse flags, start logging, serve until SIGTERM/SIGINT; or the
//! offline `restore` and the hidden `openapi` subcommands. The binary prints
//! `listening on <addr>` on stdout once bound: scripts and tests wait for that exact line.
use clap::Parser;
use colmena_sucursal::config::{Cli, Command};
use colmena_sucursal::startup::Application;
use std::io::Write;

pub fn main() -> std::process::ExitCode {
    // Test builds only (`--features failpoints`): failpoints come from the FAILPOINTS env var.
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    let cli = Cli::parse();
    colmena_shared::telemetry::init(cli.settings.log_format);
    let result = match cli.command {
        None | Some(Command::Serve) => serve(cli.settings),
        Some(Command::Restore { file, data_dir, sha256 }) => restore(&file, &data_dir, sha256.as_deref()),
        Some(Command::Openapi) => {
            print!("{}", colmena_sucursal::openapi::rendered());
            std::io::stdout().flush().map_err(|e| format!("stdout: {e}"))
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("colmena-sucursal: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn serve(settings: colmena_sucursal::config::Settings) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    rt.block_on(async move {
        let app = Application::build(settings).await?;
        println!("listening on {}", app.addr());
        let _ = std::io::stdout().flush();
        app.run_until_stopped(colmena_shared::telemetry::shutdown_signal())
            .await
    })
}

fn restore(file: &std::path::Path, data_dir: &std::path::Path, sha256: Option<&str>) -> Result<(), String> {
    let target = colmena_sucursal::storage::db_path(data_dir);
    let info = colmena_shared::backup::restore(file, &target, colmena_sucursal::storage::APPLICATION_ID, sha256)
        .map_err(|e| format!("restore refused: {e}"))?;
    println!(
        "restored {} (sha256 {}) into {}. On its next start the branch asks central where it stands and continues its seq above it.",
        file.display(),
        info.sha256,
        target.display()
    );
    Ok(())
}
