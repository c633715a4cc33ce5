use clap::Parser;
use colmena_sucursal::config::{Cli, Command};
use colmena_sucursal::startup::Application;
use std::io::Write;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    colmena_shared::telemetry::init(cli.settings.log_format);
    let result = match cli.command {
        None | Some(Command::Serve) => serve(cli.settings),
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
        app.run_until_stopped().await
    })
}
