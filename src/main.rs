//! `cargo run --release`: the demo chain (see docs/protocol.md for the API it serves).
//!
//! Starts, in this one process, central on 127.0.0.1:8000 and the branches `CUS` (:8001)
//! and `ABA` (:8002) on embedded stores under `./colmena-demo/` (override with
//! `COLMENA_DEMO_DIR`), each exactly as its own binary would (`Application::build` from the
//! same flags). On the first run it loads a small abarrotes catalog into central and
//! allocates stock to both branches; the branches receive it by pull. Every run it puts a
//! cashier and a supervisor per branch at central (`PUT /users/{id}`, PINs printed), which
//! the branches also receive by pull, so the printed curl can log in and sell with the
//! user's token. Ctrl-C stops all three gracefully (each application is handed its own
//! `shutdown_signal()` future, and every one of them resolves on the same Ctrl-C). The data
//! survives restarts: run it again and the chain continues.
use anyhow::{bail, Context};
use clap::Parser;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

const ADMIN_TOKEN: &str = "demo-admin-token";
const POS_TOKEN: &str = "demo-pos-token";
/// The branches' admin token (`--admin-token`): backups, exports, adjustments.
const BRANCH_ADMIN_TOKEN: &str = "demo-branch-admin-token";
/// (user_id, name, role, branch, PIN): demo PINs, printed at start; real ones are never
/// shown anywhere.
const USERS: [(&str, &str, &str, &str, &str); 4] = [
    ("cus-ana", "Ana Quispe", "cashier", "CUS", "4821"),
    ("cus-rosa", "Rosa Mamani", "supervisor", "CUS", "7390"),
    ("aba-luis", "Luis Huamán", "cashier", "ABA", "1357"),
    ("aba-carmen", "Carmen Rojas", "supervisor", "ABA", "2468"),
];
const CENTRAL: &str = "127.0.0.1:8000";
const BRANCHES: [(&str, &str, &str); 2] = [
    ("CUS", "127.0.0.1:8001", "demo-cus-token"),
    ("ABA", "127.0.0.1:8002", "demo-aba-token"),
];

/// One product of the demo catalog, with what each branch gets allocated.
struct DemoProduct {
    id: &'static str,
    name: &'static str,
    price_cents: i64,
    units_cus: i64,
    units_aba: i64,
    barcode: &'static str,
    category: &'static str,
    reorder_point: i64,
}

const fn product(
    (id, name, price_cents): (&'static str, &'static str, i64),
    (units_cus, units_aba): (i64, i64),
    (barcode, category, reorder_point): (&'static str, &'static str, i64),
) -> DemoProduct {
    DemoProduct {
        id,
        name,
        price_cents,
        units_cus,
        units_aba,
        barcode,
        category,
        reorder_point,
    }
}

/// Tuna's reorder point is above ABA's stock, so ABA's low-stock gauge shows 1 from the start.
const CATALOG: [DemoProduct; 8] = [
    product(
        ("ARROZ-1KG", "Arroz Costeño 1 kg", 520),
        (120, 80),
        ("7750243000113", "abarrotes", 20),
    ),
    product(
        ("AZUCAR-1KG", "Azúcar rubia 1 kg", 450),
        (100, 60),
        ("7750885000018", "abarrotes", 20),
    ),
    product(
        ("ACEITE-1L", "Aceite Primor 1 L", 1090),
        (60, 40),
        ("7751271011115", "abarrotes", 10),
    ),
    product(
        ("LECHE-400G", "Leche Gloria 400 g", 420),
        (200, 150),
        ("7751271021213", "lácteos", 30),
    ),
    product(
        ("FIDEOS-500G", "Fideos Don Vittorio 500 g", 380),
        (150, 90),
        ("7750243001318", "abarrotes", 20),
    ),
    product(
        ("ATUN-170G", "Atún Florida 170 g", 650),
        (80, 50),
        ("7750106002019", "conservas", 60),
    ),
    product(
        ("COCA-500ML", "Coca Cola 500 ml", 350),
        (240, 120),
        ("7750182002218", "bebidas", 48),
    ),
    product(
        ("PAN-UN", "Pan francés (unidad)", 30),
        (500, 300),
        ("20000017", "panadería", 0),
    ),
];

fn main() -> anyhow::Result<()> {
    colmena_shared::telemetry::init(colmena_shared::telemetry::LogFormat::Text);
    colmena_shared::tls::install_crypto_provider();
    let dir = PathBuf::from(std::env::var("COLMENA_DEMO_DIR").unwrap_or_else(|_| "colmena-demo".into()));
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    actix_web::rt::System::new().block_on(run(dir))
}

async fn run(dir: PathBuf) -> anyhow::Result<()> {
    let db = dir.join("central.db");
    let mut args: Vec<String> = vec![
        "colmena-central".into(),
        "--listen".into(),
        CENTRAL.into(),
        "--database".into(),
        db.to_string_lossy().into_owned(),
        "--admin-token".into(),
        ADMIN_TOKEN.into(),
    ];
    for (b, _, tok) in BRANCHES {
        args.push("--branch-token".into());
        args.push(format!("{b}={tok}"));
    }
    let settings = colmena_central::config::Settings::parse_from_args(args).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let central = colmena_central::startup::Application::build(settings)
        .await
        .context("central")?;
    let central_task = tokio::spawn(central.run_until_stopped(colmena_shared::telemetry::shutdown_signal()));
    seed_central().await.context("loading the demo catalog into central")?;
    let users_ok = match put_users().await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("demo users not created at central: {e:#}");
            false
        }
    };

    let mut branch_tasks = Vec::new();
    for (b, listen, tok) in BRANCHES {
        let data = dir.join(b);
        let cli = colmena_sucursal::config::Cli::try_parse_from([
            "colmena-sucursal",
            "--branch-id",
            b,
            "--listen",
            listen,
            "--data-dir",
            &data.to_string_lossy(),
            "--central-url",
            &format!("http://{CENTRAL}"),
            "--central-token",
            tok,
            "--pos-token",
            POS_TOKEN,
            "--admin-token",
            BRANCH_ADMIN_TOKEN,
        ])
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let app = colmena_sucursal::startup::Application::build(cli.settings)
            .await
            .map_err(|e| anyhow::anyhow!("branch {b}: {e}"))?;
        branch_tasks.push(tokio::spawn(
            app.run_until_stopped(colmena_shared::telemetry::shutdown_signal()),
        ));
    }

    print_banner(&dir, users_ok);

    for t in branch_tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("branch stopped with an error: {e}"),
            Err(e) => tracing::error!("branch task failed: {e}"),
        }
    }
    match central_task.await {
        Ok(r) => r.context("central")?,
        Err(e) => bail!("central task failed: {e}"),
    }
    println!("demo chain stopped");
    Ok(())
}

/// What the chain is, its tokens and demo PINs, and the curl lines to try it.
fn print_banner(dir: &std::path::Path, users_ok: bool) {
    println!();
    println!("colmena demo chain is up (data in {}/)", dir.display());
    println!("  central  http://{CENTRAL}   admin token: {ADMIN_TOKEN}");
    for (b, listen, _) in BRANCHES {
        println!("  {b}      http://{listen}   POS token:   {POS_TOKEN}   admin token: {BRANCH_ADMIN_TOKEN}");
    }
    if users_ok {
        println!("  users (demo PINs):");
        for (id, name, role, branch, pin) in USERS {
            println!("    {branch}  {id:<11} {role:<10} PIN {pin}   ({name})");
        }
    }
    let cus = BRANCHES[0].1;
    println!();
    println!("The cashier's page (a till in the browser, served by each branch):");
    for (b, listen, _) in BRANCHES {
        println!("  {b}  http://{listen}/");
    }
    println!();
    println!("Log in as Ana at CUS, open her till, sell two bags of rice paid in cash, take one back, close the till:");
    let lines = [
        r#"TOKEN=$(curl -s -X POST http://{cus}/login -H 'Content-Type: application/json' -d '{"user_id":"cus-ana","pin":"4821"}' | sed -E 's/.*"token":"([^"]+)".*/\1/')"#,
        r#"SHIFT=$(curl -s -X POST http://{cus}/shifts -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"till_id":"T1","opening_float_cents":10000}' | sed -E 's/.*"shift_id":"([^"]+)".*/\1/')"#,
        r#"SALE=$(curl -s -X POST http://{cus}/sell -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"product_id":"ARROZ-1KG","quantity":2,"shift_id":"'$SHIFT'","payments":[{"method":"cash","amount_cents":2000}]}' | tee /dev/stderr | sed -E 's/.*"sale_id":"([^"]+)".*/\1/')"#,
        r#"curl -s -X POST http://{cus}/sales/$SALE/returns -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"lines":[{"product_id":"ARROZ-1KG","quantity":1}],"shift_id":"'$SHIFT'"}'"#,
        r#"curl -s -X POST http://{cus}/shifts/$SHIFT/close -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"counted_cash_cents":10520}'"#,
        r#"curl -s 'http://{cus}/products/search?q=azucar' -H "Authorization: Bearer $TOKEN""#,
        r#"curl -s 'http://{cus}/products/search?barcode=7750885000018' -H "Authorization: Bearer $TOKEN""#,
    ];
    for l in lines {
        println!("  {}", l.replace("{cus}", cus));
    }
    println!("(The POS token sells too, without a cashier: -H 'Authorization: Bearer {POS_TOKEN}'.)");
    print_transfer_lines(cus, BRANCHES[1].1);
    println!("See it at central (stock, and the shift as central recomputed it):");
    println!("  curl -s http://{CENTRAL}/inventory/ARROZ-1KG -H 'Authorization: Bearer {ADMIN_TOKEN}'");
    println!("  curl -s 'http://{CENTRAL}/shifts?branch_id=CUS' -H 'Authorization: Bearer {ADMIN_TOKEN}'");
    println!(
        "Branch status:  curl -s http://{}/status -H 'Authorization: Bearer {POS_TOKEN}'",
        BRANCHES[0].1
    );
    println!("Metrics:        http://{CENTRAL}/metrics  (prometheus.yml in the repo scrapes all three)");
    println!("API (OpenAPI):  http://{CENTRAL}/openapi.json, and /openapi.json on each branch");
    println!("Ctrl-C stops the chain.");
    println!();
}

/// A transfer of tuna from CUS to ABA, each step by the store's supervisor.
fn print_transfer_lines(cus: &str, aba: &str) {
    println!("ABA is short of tuna: head office asks CUS to send 12 cans, Rosa dispatches them at CUS, Carmen receives 11 at ABA (one was lost):");
    let lines = [
        r#"TR=$(curl -s -X POST http://{central}/transfers -H 'Authorization: Bearer {admin}' -H 'Content-Type: application/json' -d '{"from_branch":"CUS","to_branch":"ABA","lines":[{"product_id":"ATUN-170G","quantity":12}],"note":"ABA se quedó sin atún"}' | sed -E 's/.*"transfer_id":"([^"]+)".*/\1/'); sleep 6"#,
        r#"ROSA=$(curl -s -X POST http://{cus}/login -H 'Content-Type: application/json' -d '{"user_id":"cus-rosa","pin":"7390"}' | sed -E 's/.*"token":"([^"]+)".*/\1/')"#,
        r#"curl -s -X POST http://{cus}/transfers/$TR/dispatch -H "Authorization: Bearer $ROSA"; sleep 6"#,
        r#"CARMEN=$(curl -s -X POST http://{aba}/login -H 'Content-Type: application/json' -d '{"user_id":"aba-carmen","pin":"2468"}' | sed -E 's/.*"token":"([^"]+)".*/\1/')"#,
        r#"curl -s -X POST http://{aba}/transfers/$TR/receive -H "Authorization: Bearer $CARMEN" -H 'Content-Type: application/json' -d '{"lines":[{"product_id":"ATUN-170G","quantity":11}]}'"#,
        r#"sleep 1; curl -s http://{central}/inventory/ATUN-170G -H 'Authorization: Bearer {admin}'"#,
    ];
    for l in lines {
        let l = l.replace("{central}", CENTRAL).replace("{admin}", ADMIN_TOKEN);
        println!("  {}", l.replace("{cus}", cus).replace("{aba}", aba));
    }
    println!("(The sleeps wait for the branches' pulls, every 5 s; each step also works with central down.)");
}

/// First run only: the catalog and each branch's opening stock.
async fn seed_central() -> anyhow::Result<()> {
    let c = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    let base = format!("http://{CENTRAL}");
    let products: Value = c
        .get(format!("{base}/products"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    if products["products"].as_array().is_some_and(|p| !p.is_empty()) {
        return Ok(());
    }
    for p in &CATALOG {
        let id = p.id;
        c.put(format!("{base}/products/{id}"))
            .bearer_auth(ADMIN_TOKEN)
            .json(
                &json!({"name": p.name, "price_cents": p.price_cents, "barcode": p.barcode,
                          "category": p.category, "reorder_point": p.reorder_point}),
            )
            .send()
            .await?
            .error_for_status()?;
        for (branch, qty) in [("CUS", p.units_cus), ("ABA", p.units_aba)] {
            c.post(format!("{base}/branches/{branch}/allocations"))
                .bearer_auth(ADMIN_TOKEN)
                .json(&json!({"product_id": id, "quantity": qty}))
                .send()
                .await?
                .error_for_status()?;
        }
    }
    Ok(())
}

/// Every run: the demo users at central (a PUT with the same fields is harmless). Fails
/// with a clear message when central has no users endpoint.
async fn put_users() -> anyhow::Result<()> {
    let c = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    for (id, name, role, branch, pin) in USERS {
        let r = c
            .put(format!("http://{CENTRAL}/users/{id}"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"name": name, "role": role, "branches": [branch], "pin": pin, "active": true}))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("PUT /users/{id} answered {}", r.status());
        }
    }
    Ok(())
}
