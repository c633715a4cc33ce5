//! `colmena-central`: parse settings, start logging, serve until SIGTERM/SIGINT; or
//! `colmena-central restore FILE --database PATH` (offline).
use clap::Parser;
use colmena_central::config::{ConfigError, RestoreArgs, Settings};
use colmena_central::startup::Application;
use colmena_central::store::DatabaseUrl;
use std::io::Write;
use std::process::ExitCode;

pub fn main() -> ExitCode {
    // Test builds only (`--features failpoints`): failpoints come from the FAILPOINTS env var.
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    if std::env::args_os().nth(1).is_some_and(|a| a == "restore") {
        return restore(RestoreArgs::parse_from(std::env::args_os().skip(1)));
    }
    // Hidden: prints the OpenAPI document that `GET /openapi.json` serves
    // (`scripts/openapi.sh` writes it to docs/openapi/central.json).
    if std::env::args_os().nth(1).is_some_and(|a| a == "openapi") {
        print!("{}", colmena_central::openapi::rendered());
        return match std::io::stdout().flush() {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        };
    }
    let settings = match Settings::parse_from_env() {
        Ok(s) => s,
        Err(ConfigError::Display(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(ConfigError::Invalid(reason)) => {
            eprintln!("colmena-central: bad configuration: {reason}");
            return ExitCode::from(2);
        }
    };
    colmena_shared::telemetry::init(settings.log_format);
    actix_web::rt::System::new().block_on(async move {
        let app = match Application::build(settings).await {
            Ok(app) => app,
            Err(e) => {
                eprintln!("colmena-central: cannot start: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        // Tests and scripts wait for this exact line on stdout.
        println!("listening on {}", app.addr());
        let _ = std::io::stdout().flush();
        match app
            .run_until_stopped(colmena_shared::telemetry::shutdown_signal())
            .await
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("colmena-central: {e:#}");
                ExitCode::FAILURE
            }
        }
    })
}

fn restore(args: RestoreArgs) -> ExitCode {
    let target = match args.database {
        DatabaseUrl::Sqlite(path) => path,
        DatabaseUrl::Postgres(_) => {
            eprintln!("colmena-central: restore is for the embedded store; restore PostgreSQL with pg_restore");
            return ExitCode::from(2);
        }
    };
    match colmena_shared::backup::restore(
        &args.file,
        &target,
        colmena_central::store::sqlite::APPLICATION_ID,
        args.sha256.as_deref(),
    ) {
        Ok(info) => {
            println!(
                "restored {} (sha256 {}) into {}. Branches resend what this copy lacks: each push \
                 that does not continue a branch's sequence is answered with its applied_through.",
                args.file.display(),
                info.sha256,
                target.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("colmena-central: restore refused: {e}");
            ExitCode::FAILURE
        }
    }
}
