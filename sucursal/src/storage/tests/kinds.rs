//! The kinds' ordered rules and stored state in the writer: pulled users and catalog
//! fields, the till's refusals in commit order, returns across the purge, transfers.
use super::*;
use std::time::Duration;

fn user_change(cursor: u64, id: &str, version: u64, active: bool) -> colmena_shared::wire::Change {
    use colmena_shared::users::{Role, UserId, UserRecord};
    colmena_shared::wire::Change {
        cursor,
        kind: colmena_shared::wire::ChangeKind::User,
        product_id: String::new(),
        name: None,
        price_cents: None,
        version: None,
        quantity: None,
        user: Some(UserRecord {
            user_id: UserId::parse(id).unwrap(),
            name: format!("User {id}"),
            role: Role::Cashier,
            branches: vec!["CUS".into()],
            active,
            version,
            pin_hash: format!("$argon2id$hash-of-{id}-v{version}"),
        }),
        ..Default::default()
    }
}

#[test]
fn pulled_users_reach_memory_after_the_fsync_and_only_newer_versions_count() {
    let rig = rig();
    let ana = colmena_shared::users::UserId::parse("ana").unwrap();
    let pull = |changes, next_cursor| ApplyPull {
        changes,
        next_cursor,
        applied_through: 0,
        users_catch_up: false,
    };
    let rx = submit(&rig.writer, pull(vec![user_change(1, "ana", 2, true)], 1));
    std::thread::sleep(Duration::from_millis(50));
    assert!(rig.people.user(&ana).is_none(), "not in memory before its fsync");
    rig.permits.send(true).unwrap();
    rx.recv().unwrap().unwrap();
    assert_eq!(rig.people.user(&ana).unwrap().version, 2);
    // An older version (a re-pull from a restored central) changes nothing, on disk either.
    let rx = submit(&rig.writer, pull(vec![user_change(2, "ana", 1, false)], 2));
    rig.permits.send(true).unwrap();
    rx.recv().unwrap().unwrap();
    assert!(rig.people.user(&ana).unwrap().active);
    let conn = open(&rig.dir()).unwrap();
    let stored = users::load_all(&conn).unwrap();
    assert_eq!((stored.len(), stored[0].version, stored[0].active), (1, 2, true));
    assert_eq!(stored[0].pin_hash, "$argon2id$hash-of-ana-v2");
    rig.finish();
}

#[test]
fn a_schema_1_store_upgrades_and_owes_its_users_up_to_its_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let conn = open(dir.path()).unwrap();
    db::migrate(&conn).unwrap();
    // Make it look like a schema-1 store that had pulled through cursor 42.
    conn.execute_batch("DROP TABLE users").unwrap();
    meta::set(&conn, meta::PULL_CURSOR, 42).unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    db::migrate(&conn).unwrap();
    let v: i32 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    let loaded = db::load(&conn, 0).unwrap();
    assert_eq!((v, loaded.users.len(), loaded.users_catch_up), (5, 0, (0, 42)));
    // Migrating again (every start) changes nothing.
    db::migrate(&conn).unwrap();
    assert_eq!(db::load(&conn, 0).unwrap().users_catch_up, (0, 42));
}

fn open_shift(till: &str) -> OpenShift {
    OpenShift {
        till_id: till.into(),
        opening_float_cents: 1000,
        opened_by: None,
        remember: None,
    }
}

/// A sale of one P1 at 100 on `shift`, with nothing reserved (stock is not the point).
fn sale_on(shift: &str) -> RecordSale {
    RecordSale {
        sale: crate::sales::PricedSale {
            lines: vec![colmena_shared::wire::SaleLineOut {
                product_id: "P1".into(),
                quantity: 1,
                unit_price_cents: 100,
                line_total_cents: 100,
                remaining_stock: 4,
            }],
            total_cents: 100,
            cashier_id: None,
            payments: None,
            change_cents: 0,
            shift_id: Some(shift.into()),
        },
        reserved: Vec::new(),
        remember: None,
    }
}

fn return_of(sale_seq: u64, quantity: i64) -> RecordReturn {
    RecordReturn {
        sale_seq,
        sale_id: format!("CUS-{sale_seq:010}"),
        lines: vec![colmena_shared::till::ReturnLine {
            product_id: "P1".into(),
            quantity,
            unit_price_cents: 100,
            line_total_cents: 100 * quantity,
        }],
        sold: [("P1".to_string(), 2)].into(),
        restock: true,
        refund_method: "cash".into(),
        shift_id: None,
        reason: "damaged".into(),
        user_id: None,
        remember: None,
    }
}

#[test]
fn a_sale_on_a_shift_closed_before_it_in_the_same_batch_is_refused_and_takes_no_seq() {
    let r = rig();
    let opened = submit(&r.writer, open_shift("T1"));
    r.permits.send(true).unwrap();
    let shift = opened.recv_timeout(Duration::from_secs(5)).unwrap().unwrap().unwrap();
    assert!(r.till.is_open(&shift.shift_id));
    // The syncer is held on a batch (a seed, ignored: the store has data); the close and
    // then the sale join the next batch.
    let held = submit(&r.writer, seed());
    std::thread::sleep(Duration::from_millis(100));
    let closed = submit(
        &r.writer,
        CloseShift {
            shift_id: shift.shift_id.clone(),
            counted_cash_cents: 1000,
            closed_by: None,
            remember: None,
        },
    );
    std::thread::sleep(Duration::from_millis(50));
    let sold = submit(&r.writer, sale_on(&shift.shift_id));
    std::thread::sleep(Duration::from_millis(50));
    r.permits.send(true).unwrap();
    r.permits.send(true).unwrap();
    assert!(held.recv_timeout(Duration::from_secs(5)).unwrap().is_ok());
    let closed = closed.recv_timeout(Duration::from_secs(5)).unwrap().unwrap().unwrap();
    assert_eq!(closed.summary.difference_cents, Some(0));
    assert_eq!(
        sold.recv_timeout(Duration::from_secs(5)).unwrap().unwrap().unwrap_err(),
        Refusal::ShiftNotOpen(shift.shift_id.clone())
    );
    assert!(!r.till.is_open(&shift.shift_id));
    // Open (1), the close (2): the refused sale took no seq.
    assert_eq!(r.state.last_seq.load(Ordering::Acquire), 2);
    r.finish();
}

#[test]
fn two_returns_in_one_batch_cannot_together_take_back_more_than_was_sold() {
    let r = rig();
    let held = submit(&r.writer, seed());
    std::thread::sleep(Duration::from_millis(100));
    let first = submit(&r.writer, return_of(1, 2));
    std::thread::sleep(Duration::from_millis(50));
    let second = submit(&r.writer, return_of(1, 1));
    std::thread::sleep(Duration::from_millis(50));
    r.permits.send(true).unwrap();
    r.permits.send(true).unwrap();
    assert!(held.recv_timeout(Duration::from_secs(5)).unwrap().is_ok());
    let done = first.recv_timeout(Duration::from_secs(5)).unwrap().unwrap().unwrap();
    assert_eq!(done.total_cents, 200);
    assert_eq!(
        second
            .recv_timeout(Duration::from_secs(5))
            .unwrap()
            .unwrap()
            .unwrap_err(),
        Refusal::ReturnExceedsSale {
            product_id: "P1".into(),
            left: 0,
            requested: 1
        }
    );
    r.finish();
}

#[test]
fn a_sale_stays_returnable_after_the_purge_drops_its_outbox_row_and_goes_with_the_window() {
    let r = rig();
    let sold = submit(&r.writer, sale_on("none"));
    r.permits.send(true).unwrap();
    // No such shift: refused; a sale without one is recorded.
    assert!(sold.recv_timeout(Duration::from_secs(5)).unwrap().unwrap().is_err());
    let mut plain = sale_on("none");
    plain.sale.shift_id = None;
    let sold = submit(&r.writer, plain);
    r.permits.send(true).unwrap();
    let seq = sold
        .recv_timeout(Duration::from_secs(5))
        .unwrap()
        .unwrap()
        .unwrap()
        .receipt
        .seq;
    let acked = submit(&r.writer, RecordAck(seq));
    r.permits.send(true).unwrap();
    acked.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
    let reader = open(&r.dir()).unwrap();
    let far_future = colmena_shared::clock::now_millis() + 60_000;
    let purge = |returns_since_ms| Purge {
        outbox_before_ms: far_future,
        idempotency_before_ms: 0,
        returns_since_ms,
    };
    // The outbox row goes; the sale is still found, from its record.
    let purged = submit(&r.writer, purge(0));
    r.permits.send(true).unwrap();
    purged.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
    assert_eq!(outbox::max_seq(&reader).unwrap(), 0, "the outbox row was purged");
    let kept = returns::sale(&reader, seq)
        .unwrap()
        .expect("the sale is still returnable");
    assert_eq!(kept.event.total_cents, Some(100));
    // Once the window has passed, the record goes too.
    let purged = submit(&r.writer, purge(far_future));
    r.permits.send(true).unwrap();
    purged.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
    assert!(returns::sale(&reader, seq).unwrap().is_none());
    r.finish();
}

#[test]
fn a_schema_3_store_gains_the_catalog_fields_with_their_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let conn = open(dir.path()).unwrap();
    // The products table as schema 3 had it, with a product in it.
    conn.execute_batch(
        "CREATE TABLE products (product_id TEXT PRIMARY KEY, name TEXT NOT NULL, price_cents INTEGER NOT NULL,
            version INTEGER NOT NULL, stock INTEGER NOT NULL) WITHOUT ROWID;
         INSERT INTO products VALUES ('P1', 'uno', 100, 3, 7);
         PRAGMA user_version = 3;",
    )
    .unwrap();
    db::migrate(&conn).unwrap();
    db::migrate(&conn).unwrap();
    let v: i32 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    let rows = products::load_all(&conn).unwrap();
    assert_eq!(v, 5);
    assert_eq!((rows[0].stock, rows[0].version), (7, 3));
    assert_eq!(rows[0].catalog, products::CatalogFields::default());
}

#[test]
fn pulled_catalog_fields_are_stored_and_an_older_version_changes_none_of_them() {
    use colmena_shared::catalog::ScheduledPrice;
    use colmena_shared::wire::{Change, ChangeKind};
    let rig = rig();
    let product = |cursor, version, active, price| Change {
        cursor,
        kind: ChangeKind::Product,
        product_id: "AZUCAR-1KG".into(),
        name: Some("Azúcar rubia 1 kg".into()),
        price_cents: Some(price),
        version: Some(version),
        barcode: Some("7750885000018".into()),
        category: Some("abarrotes".into()),
        active: Some(active),
        reorder_point: Some(12),
        scheduled_price: Some(ScheduledPrice {
            price_cents: price + 40,
            effective_at: "2026-12-24T05:00:00Z".into(),
        }),
        ..Default::default()
    };
    for (changes, next_cursor) in [
        (vec![product(1, 2, false, 550)], 1),
        (vec![product(2, 1, true, 999)], 2),
    ] {
        let rx = submit(
            &rig.writer,
            ApplyPull {
                changes,
                next_cursor,
                applied_through: 0,
                users_catch_up: false,
            },
        );
        rig.permits.send(true).unwrap();
        rx.recv().unwrap().unwrap();
    }
    let at = colmena_shared::clock::parse_rfc3339_millis("2026-12-24T05:00:00Z").unwrap();
    let want = products::CatalogFields {
        barcode: Some("7750885000018".into()),
        category: Some("abarrotes".into()),
        active: false,
        reorder_point: 12,
        scheduled: Some((590, at)),
    };
    let rows = products::load_all(&open(&rig.dir()).unwrap()).unwrap();
    assert_eq!((rows[0].price_cents, rows[0].version), (550, 2));
    assert_eq!(rows[0].catalog, want);
    let item = rig.inventory.get("AZUCAR-1KG").unwrap();
    assert_eq!((item.price_cents, item.version, item.active), (550, 2, false));
    assert_eq!((item.scheduled(), item.reorder_point), (Some((590, at)), 12));
    rig.finish();
}

#[test]
fn two_dispatches_of_one_transfer_record_one_event_and_a_stale_pull_does_not_undo_it() {
    use colmena_shared::transfers::{Transfer, TransferLine, TransferStatus};
    use colmena_shared::wire::{Change, ChangeKind};
    let rig = rig();
    let seeded = submit(&rig.writer, seed());
    rig.permits.send(true).unwrap();
    seeded.recv().unwrap().unwrap();
    let requested = Transfer {
        transfer_id: "TR-000001".into(),
        from_branch: "CUS".into(),
        to_branch: "ABA".into(),
        status: TransferStatus::Requested,
        lines: vec![TransferLine {
            product_id: "P1".into(),
            quantity: 2,
            received: None,
            lost: None,
        }],
        requested_at: "2026-12-07T14:00:00Z".into(),
        ..Default::default()
    };
    let pull = |cursor: u64, t: &Transfer| ApplyPull {
        changes: vec![Change {
            cursor,
            kind: ChangeKind::Transfer,
            transfer: Some(t.clone()),
            ..Default::default()
        }],
        next_cursor: cursor,
        applied_through: 0,
        users_catch_up: false,
    };
    let pulled = submit(&rig.writer, pull(1, &requested));
    rig.permits.send(true).unwrap();
    pulled.recv().unwrap().unwrap();
    assert_eq!(
        rig.transfers.get("TR-000001").unwrap().status,
        TransferStatus::Requested
    );

    // Both reserve (memory does not know yet), but the writer lets only the first through.
    let dispatch = || DispatchTransfer {
        transfer_id: "TR-000001".into(),
        user_id: None,
        reserved: rig.inventory.reserve(&[("P1".into(), 2)]).unwrap(),
    };
    let (a, b) = (submit(&rig.writer, dispatch()), submit(&rig.writer, dispatch()));
    for _ in 0..2 {
        rig.permits.send(true).unwrap();
    }
    let steps = [a.recv().unwrap().unwrap().unwrap(), b.recv().unwrap().unwrap().unwrap()];
    assert_eq!(steps.iter().filter(|s| s.seq.is_some()).count(), 1, "{steps:?}");
    assert_eq!(steps[0].transfer, steps[1].transfer);
    assert_eq!(steps[0].transfer.status, TransferStatus::InTransit);
    assert_eq!(
        rig.inventory.get("P1").unwrap().stock,
        3,
        "the second reservation is given back"
    );
    let reader = open(&rig.dir()).unwrap();
    let events: i64 = reader
        .query_row(
            "SELECT COUNT(*) FROM outbox WHERE kind = 'transfer_dispatched'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(events, 1);
    assert_eq!(products::stock_of(&reader, "P1").unwrap(), Some(3));

    // Central's view from before it applied the dispatch: the dispatch stands.
    let stale = submit(&rig.writer, pull(2, &requested));
    rig.permits.send(true).unwrap();
    stale.recv().unwrap().unwrap();
    assert_eq!(rig.transfers.get("TR-000001").unwrap(), steps[0].transfer);
    assert_eq!(
        transfers::get(&reader, "TR-000001").unwrap().unwrap(),
        steps[0].transfer
    );
    rig.finish();
}

/// A pull's `applied_through` is central's word without a push behind it: it must never
/// acknowledge an event this store has not had acknowledged by a push answer (an impostor
/// central could otherwise make pending sales look shipped), yet it still raises the seq
/// floor so a restored store never reuses a seq central holds.
#[test]
fn a_pull_claiming_more_than_the_store_wrote_raises_the_seq_floor_but_acknowledges_nothing_pending() {
    let rig = rig();
    let pull = |applied_through| ApplyPull {
        changes: Vec::new(),
        next_cursor: 0,
        applied_through,
        users_catch_up: false,
    };
    commit(&rig, seed());
    let first = commit(&rig, adjust(1));
    commit(&rig, pull(1_000));
    let conn = open(&rig.dir()).unwrap();
    assert_eq!(
        meta::get(&conn, meta::ACKED_THROUGH).unwrap(),
        0,
        "nothing acknowledged by the pull"
    );
    assert_eq!(rig.state.acked_through.load(Ordering::Acquire), 0);
    let after = commit(&rig, adjust(1));
    assert_eq!(
        after.seq, 1_001,
        "new events continue above central's position (first was {})",
        first.seq
    );

    // A push answer acknowledges; with nothing left pending, a later pull's position moves
    // the mark over seqs this store never wrote.
    commit(&rig, RecordAck(1_001));
    commit(&rig, pull(1_500));
    assert_eq!(meta::get(&conn, meta::ACKED_THROUGH).unwrap(), 1_500);
    assert_eq!(rig.state.pending(), 0);
    rig.finish();
}
