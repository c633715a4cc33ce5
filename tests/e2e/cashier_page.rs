//! The cashier's page in a real browser (docs/protocol.md, "The cashier's page"): headless
//! Chromium driven over WebDriver against a real central and a real branch, which the tests
//! kill and restart. What a cashier does — log in, open the till, scan, pay, return, close —
//! is done by typing and clicking in the page, and checked both on screen and in the
//! branch's and central's own answers. Screenshots of every screen go to
//! `target/screenshots/` (the main ones are committed under `docs/screenshots/`).
//!
//! Without chromium and chromedriver these tests fail, unless `COLMENA_SKIP_BROWSER_TESTS`
//! is set (tests/support/browser.rs).
use crate::support::browser::{key, Browser};
use crate::support::central::put_user_ok;
use crate::support::proxy::Proxy;
use crate::support::*;
use fantoccini::key::Key;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// (product_id, name, price_cents, barcode, units allocated to CUS).
const PRODUCTS: [(&str, &str, i64, &str, i64); 4] = [
    ("ARROZ-1KG", "Arroz Costeño 1 kg", 520, "7751234000011", 500),
    ("ACEITE-1L", "Aceite Primor 1 l", 1190, "7751234000028", 200),
    ("LECHE-400", "Leche Gloria tarro 400 g", 430, "7751234000035", 300),
    ("ATUN-170", "Atún Florida 170 g", 650, "7751234000042", 3),
];
const ANA: (&str, &str) = ("cus-ana", "4821");

/// The branch's relay flags for most tests: quick pulls, so the catalog arrives fast.
const QUICK: [&str; 4] = ["--pull-interval", "300ms", "--breaker-wait-max", "1s"];

/// Central with the products, their stock at CUS and Ana (cashier); CUS on it with
/// `branch_flags`, ready to log her in.
async fn chain(dir: &TempDir, branch_flags: &[&str]) -> (Proc, Proc) {
    let c = client();
    let central = spawn_central(dir.path(), &["CUS"], &[]);
    for (id, name, price, barcode, units) in PRODUCTS {
        let r = c
            .put(format!("{}/products/{id}", central.url))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"name": name, "price_cents": price, "barcode": barcode, "category": "abarrotes"}))
            .send()
            .await
            .expect("put product");
        assert!(r.status().is_success(), "PUT {id}: {}", r.status());
        allocate(&c, &central.url, "CUS", id, units).await;
    }
    put_user_ok(
        &c,
        &central.url,
        ANA.0,
        json!({"name": "Ana Quispe", "role": "cashier", "branches": ["CUS"], "pin": ANA.1}),
    )
    .await;
    let branch = spawn_branch(dir.path(), "CUS", &central.url, branch_flags);
    let url = branch.url.clone();
    eventually(Duration::from_secs(30), "catalog, stock and Ana at CUS", || async {
        let found = get_json(&c, &format!("{url}/products/search?barcode=7751234000042"), POS_TOKEN).await;
        let login = c
            .post(format!("{url}/login"))
            .json(&json!({"user_id": ANA.0, "pin": ANA.1}))
            .send()
            .await
            .ok()?;
        (found["products"][0]["stock"] == 3 && login.status().as_u16() == 200).then_some(())
    })
    .await;
    (central, branch)
}

/// Logs Ana in on the page and opens till T1 with `float` (typed as the cashier would).
async fn login_and_open(b: &Browser, float: &str) {
    b.on_screen("login").await;
    b.type_into("#login-user", ANA.0).await;
    b.type_into("#login-pin", &format!("{}{}", ANA.1, key(Key::Enter)))
        .await;
    b.on_screen("open").await;
    b.type_into("#open-float", &format!("{float}{}", key(Key::Enter))).await;
    b.on_screen("sell").await;
}

/// Scans `barcode` into the basket (digits, then Enter, as a scanner types) and waits for
/// the line to show `qty`.
async fn scan(b: &Browser, barcode: &str, product: &str, qty: u32) {
    b.type_into("#search", &format!("{barcode}{}", key(Key::Enter))).await;
    let script =
        format!("return document.querySelector('#basket tr[data-product=\"{product}\"]')?.dataset.qty === '{qty}'");
    b.until(
        &format!("{product} × {qty} in the basket"),
        Duration::from_secs(10),
        &script,
    )
    .await;
}

/// The sale id the receipt shows once the 201 came.
async fn sale_done(b: &Browser) -> String {
    b.on_screen("receipt").await;
    let id = b.js("return document.getElementById('sale-ok').dataset.sale").await;
    id.as_str().expect("sale id on the receipt").to_string()
}

/// The branch's sales (one CSV row per line) — its own record, not central's.
async fn branch_sale_ids(c: &reqwest::Client, branch: &str) -> Vec<String> {
    let url = format!("{branch}/sales/export?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z");
    let r = c
        .get(&url)
        .bearer_auth(BRANCH_ADMIN_TOKEN)
        .send()
        .await
        .expect("export");
    assert_eq!(r.status(), 200);
    let text = r.text().await.expect("csv");
    let mut ids: Vec<String> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next().map(str::to_string))
        .collect();
    ids.dedup();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cashier_sells_returns_and_closes_her_shift_in_the_browser_and_central_has_the_same_sales() {
    let dir = TempDir::new("page-day");
    let (central, branch) = chain(&dir, &QUICK).await;
    let Some(b) = Browser::start("page-day").await else {
        return;
    };
    let c = client();
    b.open(&format!("{}/", branch.url)).await;
    b.shot("01-login").await;
    b.type_into("#login-user", ANA.0).await;
    b.type_into("#login-pin", ANA.1).await;
    b.click("#login-go").await;
    b.on_screen("open").await;
    b.type_into("#open-float", "100.00").await;
    b.shot("02-open-shift").await;
    b.click("#open-go").await;
    b.on_screen("sell").await;

    // A scanned sale: two bags of rice (10.40), paid with 20.00 in cash → 9.60 change.
    scan(&b, "7751234000011", "ARROZ-1KG", 1).await;
    scan(&b, "7751234000011", "ARROZ-1KG", 2).await;
    // Search as you type: "aceite" finds the oil; it is added, then removed again.
    b.type_into("#search", "aceite").await;
    b.until(
        "the search lists the oil",
        Duration::from_secs(5),
        "return document.querySelector('#results li[data-product=\"ACEITE-1L\"]') !== null",
    )
    .await;
    b.shot("03-search").await;
    b.click("#results li[data-product=\"ACEITE-1L\"]").await;
    b.until(
        "oil in the basket",
        Duration::from_secs(5),
        "return document.querySelector('#basket tr[data-product=\"ACEITE-1L\"]') !== null",
    )
    .await;
    b.shot("04-basket").await;
    b.click("#basket tr[data-product=\"ACEITE-1L\"] .remove").await;
    assert_eq!(b.text("#total").await, "S/ 10.40");
    b.click("#pay").await;
    b.on_screen("pay").await;
    b.type_into("#pay-received", "20").await;
    assert_eq!(
        b.text("#pay-change").await,
        "S/ 9.60",
        "the change shows as the cashier types"
    );
    b.shot("05-pay-cash").await;
    b.click("#pay-go").await;
    let first = sale_done(&b).await;
    assert_eq!(b.text("#change").await, "S/ 9.60");
    b.shot("06-receipt").await;

    // A split tender: oil + milk = 16.20, 10.00 by card and 10.00 in cash → 3.80 change.
    b.click("#next-sale").await;
    b.on_screen("sell").await;
    scan(&b, "7751234000028", "ACEITE-1L", 1).await;
    scan(&b, "7751234000035", "LECHE-400", 1).await;
    b.click("#pay").await;
    b.on_screen("pay").await;
    b.click("#pay-split-method").await;
    b.type_into("#pay-card", "10.00").await;
    b.type_into("#pay-cash", "10").await;
    assert_eq!(b.text("#pay-change").await, "S/ 3.80");
    b.shot("07-pay-split").await;
    b.click("#pay-go").await;
    let second = sale_done(&b).await;
    assert_eq!(b.text("#receipt-total").await, "S/ 16.20");

    // Too much tuna: the error names the product and what is left.
    b.click("#next-sale").await;
    b.on_screen("sell").await;
    for q in 1..=4 {
        scan(&b, "7751234000042", "ATUN-170", q).await;
    }
    b.click("#pay").await;
    b.on_screen("pay").await;
    b.click("#pay-card-method").await;
    b.click("#pay-go").await;
    let msg = b
        .until(
            "the stock error",
            Duration::from_secs(10),
            "const t = document.getElementById('pay-msg').textContent; return t.includes('quedan') ? t : ''",
        )
        .await;
    assert!(
        msg.as_str()
            .is_some_and(|t| t.contains("Atún Florida 170 g") && t.contains("quedan 3")),
        "{msg}"
    );
    b.shot("08-insufficient-stock").await;
    b.click("#pay-back").await;
    b.on_screen("sell").await;
    b.click("#clear").await;

    // A return of one bag of rice from the first sale, refunded in cash from this drawer.
    b.click("#to-returns").await;
    b.on_screen("returns").await;
    b.type_into("#ret-sale", &format!("{first}{}", key(Key::Enter))).await;
    b.type_into("#ret-lines tr[data-product=\"ARROZ-1KG\"] input", "1")
        .await;
    b.click("#ret-method").await;
    b.find("#ret-method option[value=\"cash\"]")
        .await
        .click()
        .await
        .expect("cash refund");
    b.type_into("#ret-reason", "bolsa rota").await;
    b.shot("09-return").await;
    b.click("#ret-go").await;
    b.on_screen("sell").await;

    // Cash out 5.00 for the delivery.
    b.click("#to-cash").await;
    b.on_screen("cash").await;
    b.type_into("#cash-amount", "5").await;
    b.type_into("#cash-reason", "pago de delivery").await;
    b.shot("10-cash-out").await;
    b.click("#cash-go").await;
    b.on_screen("sell").await;

    // Expected: 100.00 + 10.40 + 6.20 (16.20 - 10.00 by card) - 5.20 - 5.00 = 106.40.
    // Counted one sol short: the summary says -1.00.
    b.click("#to-close").await;
    b.on_screen("close").await;
    b.type_into("#close-counted", "105.40").await;
    b.shot("11-close").await;
    b.click("#close-go").await;
    b.on_screen("summary").await;
    assert_eq!(b.text("#sum-expected td").await, "S/ 106.40");
    assert_eq!(b.text("#sum-diff td").await, "-S/ 1.00");
    b.shot("12-summary").await;

    // The branch and central hold exactly these two sales, the return and the closed shift.
    assert_eq!(
        branch_sale_ids(&c, &branch.url).await,
        vec![first.clone(), second.clone()]
    );
    wait_drained(&c, &branch.url, Duration::from_secs(30)).await;
    let at_central: Vec<String> = central_sales(&c, &central.url, "CUS")
        .await
        .iter()
        .map(|s| s["sale_id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(at_central, vec![first, second]);
    let shifts = get_json(&c, &format!("{}/shifts?branch_id=CUS", central.url), ADMIN_TOKEN).await;
    let s = &shifts["shifts"][0];
    assert_eq!(
        (s["status"].as_str(), s["consistent"].as_bool()),
        (Some("closed"), Some(true)),
        "{s}"
    );
    assert_eq!(s["summary"]["difference_cents"], -100, "{s}");

    b.click("#logout").await;
    b.on_screen("login").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_bar_says_offline_within_5_s_of_central_dying_and_online_once_it_drained() {
    let dir = TempDir::new("page-offline");
    // The branch's default relay flags: the relay learns that central is gone when its
    // breaker opens, at once when a sale's push fails, else at the first failed pull (every
    // 2 s, 3 attempts, 3 failures open it); its way back is the breaker's next trial, at most
    // --breaker-wait-max (4 s) after central returns.
    let flags: [&str; 0] = [];
    let (mut central, branch) = chain(&dir, &flags).await;
    let Some(b) = Browser::start("page-offline").await else {
        return;
    };
    let c = client();
    b.open(&format!("{}/", branch.url)).await;
    login_and_open(&b, "50").await;
    b.until(
        "online",
        Duration::from_secs(10),
        "return document.getElementById('net').dataset.state === 'online'",
    )
    .await;

    central.kill9();
    let died = Instant::now();
    b.until(
        "offline",
        Duration::from_secs(5),
        "return document.getElementById('net').dataset.state === 'offline'",
    )
    .await;
    let took = died.elapsed();
    assert!(took <= Duration::from_secs(5), "offline after {took:?}");
    eprintln!("status bar offline {took:?} after central died");

    // Selling goes on, and the pending count rises with each sale.
    for (i, barcode) in ["7751234000011", "7751234000035"].into_iter().enumerate() {
        let product = if i == 0 { "ARROZ-1KG" } else { "LECHE-400" };
        scan(&b, barcode, product, 1).await;
        b.click("#pay").await;
        b.on_screen("pay").await;
        b.click("#pay-go").await; // exact cash
        sale_done(&b).await;
        let at_least = 1 + i; // each sale made offline waits in the outbox
        let script = format!("return Number(document.getElementById('pending').dataset.count) >= {at_least}");
        b.until("the pending count rises", Duration::from_secs(5), &script)
            .await;
        b.click("#next-sale").await;
        b.on_screen("sell").await;
    }
    b.shot("13-offline").await;

    central.restart();
    let back = Instant::now();
    b.until(
        "online again",
        Duration::from_secs(5),
        "return document.getElementById('net').dataset.state === 'online'",
    )
    .await;
    eprintln!("status bar online {:?} after central was back", back.elapsed());
    b.until(
        "drained",
        Duration::from_secs(10),
        "return document.getElementById('pending').dataset.count === '0'",
    )
    .await;
    b.shot("14-online-again").await;
    let sales = central_sales(&c, &central.url, "CUS").await;
    assert_eq!(sales.len(), 2, "{sales:?}");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sale_whose_answer_is_lost_while_the_branch_restarts_is_retried_and_recorded_once() {
    let dir = TempDir::new("page-restart");
    let (central, mut branch) = chain(&dir, &QUICK).await;
    // The browser reaches the branch through a proxy that can lose answers.
    let proxy = Proxy::start(branch.addr.as_str());
    let Some(b) = Browser::start("page-restart").await else {
        return;
    };
    let c = client();
    b.open(&format!("{}/", proxy.url)).await;
    login_and_open(&b, "20").await;
    scan(&b, "7751234000028", "ACEITE-1L", 1).await;
    scan(&b, "7751234000028", "ACEITE-1L", 2).await;
    b.click("#pay").await;
    b.on_screen("pay").await;
    b.type_into("#pay-received", "30").await;

    // The branch records the sale, but its answer never reaches the page.
    proxy.set_close_after(Some(0));
    b.click("#pay-go").await;
    eventually(Duration::from_secs(10), "the sale is durable at the branch", || async {
        (branch_sale_ids(&c, &branch.url).await.len() == 1).then_some(())
    })
    .await;
    assert_eq!(b.screen().await, "pay", "no receipt without a 201");
    b.until(
        "the page says it is retrying",
        Duration::from_secs(10),
        "return document.getElementById('pay-msg').textContent.includes('reintentando')",
    )
    .await;
    b.shot("15-retrying").await;

    // kill -9 and start again (sessions are in memory: the page must log in again).
    branch.restart();
    proxy.heal();
    b.on_screen("login").await;
    b.type_into("#login-pin", &format!("{}{}", ANA.1, key(Key::Enter)))
        .await;
    let sale = sale_done(&b).await;
    let replayed = b
        .js("return document.querySelector('.receipt-screen').textContent.includes('no se duplicó')")
        .await;
    assert_eq!(replayed, true, "the branch replayed the first answer");
    assert_eq!(b.text("#change").await, "S/ 6.20");

    assert_eq!(
        branch_sale_ids(&c, &branch.url).await,
        vec![sale.clone()],
        "exactly one sale at the branch"
    );
    wait_drained(&c, &branch.url, Duration::from_secs(30)).await;
    let at_central = central_sales(&c, &central.url, "CUS").await;
    assert_eq!(at_central.len(), 1, "{at_central:?}");
    assert_eq!(at_central[0]["sale_id"], Value::String(sale));
    let stock = get_json(&c, &format!("{}/inventory/ACEITE-1L", branch.url), POS_TOKEN).await;
    assert_eq!(stock["stock"], 198, "two units sold once");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_sale_is_done_with_the_keyboard_alone() {
    let dir = TempDir::new("page-keys");
    let (_central, branch) = chain(&dir, &QUICK).await;
    let Some(b) = Browser::start("page-keys").await else {
        return;
    };
    b.open(&format!("{}/", branch.url)).await;
    let enter = key(Key::Enter);
    let tab = key(Key::Tab);
    // The user field has the focus: user, Tab, PIN, Enter.
    b.keys(&format!("{}{tab}{}{enter}", ANA.0, ANA.1)).await;
    b.on_screen("open").await;
    b.keys(&format!("80{enter}")).await;
    b.on_screen("sell").await;
    // Type a name, Enter takes the first hit; scan a barcode; + for one more.
    b.keys("leche").await;
    b.until(
        "results",
        Duration::from_secs(5),
        "return document.querySelectorAll('#results li[data-product]').length > 0",
    )
    .await;
    b.keys(&enter).await;
    b.until(
        "milk in the basket",
        Duration::from_secs(5),
        "return document.querySelector('#basket tr[data-product=\"LECHE-400\"]') !== null",
    )
    .await;
    b.keys(&format!("7751234000011{enter}")).await;
    b.until(
        "rice in the basket",
        Duration::from_secs(5),
        "return document.querySelector('#basket tr[data-product=\"ARROZ-1KG\"]') !== null",
    )
    .await;
    b.keys("+").await;
    b.until(
        "two bags of rice",
        Duration::from_secs(5),
        "return document.querySelector('#basket tr[data-product=\"ARROZ-1KG\"]').dataset.qty === '2'",
    )
    .await;
    // F2 to pay, the amount received, Enter; Enter again for the next customer.
    b.keys(&key(Key::F2)).await;
    b.on_screen("pay").await;
    b.keys(&format!("20{enter}")).await;
    sale_done(&b).await;
    assert_eq!(b.text("#change").await, "S/ 5.30"); // 20.00 - (4.30 + 2 × 5.20)
    b.keys(&enter).await;
    b.on_screen("sell").await;
    let focused = b.js("return document.activeElement.id").await;
    assert_eq!(focused, "search", "ready to scan the next customer's products");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn money_is_parsed_and_shown_in_integer_cents_never_through_floating_point() {
    let dir = TempDir::new("page-money");
    let branch = spawn_branch(dir.path(), "CUS", &dead_url(), &[]);
    let Some(b) = Browser::start("page-money").await else {
        return;
    };
    b.open(&format!("{}/", branch.url)).await;
    // The page's own module, imported from the path index.html names.
    let script = r#"
        const done = arguments[0];
        const src = document.querySelector('script[type=module]').src.replace('main.js', 'money.js');
        import(src).then((m) => done({
          parsed: ["12.50", "12,5", "S/ 0.10", "0.29", "100", "1234567.89", "12.345", "-1", "abc", ""].map(m.parseCents),
          shown: [1250, 5, 0, -300, 123456789].map(m.formatCents),
          sum: m.formatCents(m.parseCents("0.10") + m.parseCents("0.20")),
        }));
    "#;
    let v = b.client.execute_async(script, vec![]).await.expect("money.js");
    assert_eq!(
        v,
        json!({
            "parsed": [1250, 1250, 10, 29, 10000, 123456789, null, null, null, null],
            "shown": ["S/ 12.50", "S/ 0.05", "S/ 0.00", "-S/ 3.00", "S/ 1,234,567.89"],
            "sum": "S/ 0.30",
        })
    );
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_session_sends_the_cashier_back_to_login_and_keeps_the_basket() {
    let dir = TempDir::new("page-expired");
    let (_central, branch) = chain(&dir, &QUICK).await;
    let Some(b) = Browser::start("page-expired").await else {
        return;
    };
    b.open(&format!("{}/", branch.url)).await;
    login_and_open(&b, "10").await;
    scan(&b, "7751234000011", "ARROZ-1KG", 1).await;
    scan(&b, "7751234000035", "LECHE-400", 1).await;
    // The session ends behind the page's back (as when it expires).
    let c = client();
    let token = b.js("return sessionStorage.getItem('colmena.token')").await;
    let token = token.as_str().expect("the token is in sessionStorage").to_string();
    let r = c
        .post(format!("{}/logout", branch.url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("logout");
    assert_eq!(r.status(), 204);
    let kept = b.js("return localStorage.length === 0 && !document.cookie").await;
    assert_eq!(kept, true, "nothing in localStorage or cookies");

    b.type_into("#search", &format!("7751234000028{}", key(Key::Enter)))
        .await;
    b.on_screen("login").await;
    let msg = b.text("#login-msg").await;
    assert!(msg.contains("canasta se conserva"), "{msg}");
    b.shot("16-session-ended").await;
    b.type_into("#login-pin", &format!("{}{}", ANA.1, key(Key::Enter)))
        .await;
    b.on_screen("sell").await;
    let lines = b
        .js("return [...document.querySelectorAll('#basket tr[data-product]')].map(r => r.dataset.product)")
        .await;
    assert_eq!(
        lines,
        json!(["ARROZ-1KG", "LECHE-400"]),
        "the basket survived the new login"
    );
    b.close().await;
}
