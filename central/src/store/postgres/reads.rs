//! The reads, each in one read-only REPEATABLE READ snapshot.
use super::{PgStore, KIND_ALLOCATION, KIND_PRODUCT, KIND_TRANSFER, KIND_USER};
use crate::store::catalog::scheduled;
use crate::store::common::{audit_entry, decode_lines, inventory_entry, to_i64, to_u64, user_record, UserRow};
use crate::store::till::decode_payments;
use crate::store::{AuditFilter, AuditPageData, PullData, SalesCursor, SalesFilter, SalesPageData, StoreError};
use colmena_shared::catalog::price_in_force;
use colmena_shared::clock;
use colmena_shared::ids::BranchId;
use colmena_shared::users::{User, UserId};
use colmena_shared::wire::{CentralProductStock, CentralSale, Change, ChangeKind};
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use tokio_postgres::IsolationLevel;

impl PgStore {
    /// Runs `f` in a read-only REPEATABLE READ transaction: every query of one answer reads
    /// the same snapshot, as the SQLite store's read transactions do.
    pub(super) async fn snapshot_read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: for<'t> FnOnce(&'t deadpool_postgres::Transaction<'t>) -> BoxFuture<'t, Result<T, StoreError>>,
    {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let r = f(&tx).await?;
        tx.commit().await?;
        Ok(r)
    }
}

pub(super) async fn read_inventory(
    tx: &deadpool_postgres::Transaction<'_>,
    only: Option<&str>,
) -> Result<Vec<CentralProductStock>, StoreError> {
    let mut out: BTreeMap<String, CentralProductStock> = BTreeMap::new();
    let (products, stock) = match only {
        Some(p) => (
            tx.query(
                &tx.prepare_cached("SELECT product_id, name, price_cents, sched_price_cents, sched_effective_ms FROM products \
                     WHERE product_id = $1")
                    .await?,
                &[&p],
            )
            .await?,
            tx.query(
                &tx.prepare_cached(
                    "SELECT s.product_id, b.branch_id, s.stock FROM branches b \
                     JOIN stock s ON s.branch_key = b.branch_key AND s.product_id = $1",
                )
                .await?,
                &[&p],
            )
            .await?,
        ),
        None => (
            tx.query(
                &tx.prepare_cached("SELECT product_id, name, price_cents, sched_price_cents, sched_effective_ms FROM products")
                    .await?,
                &[],
            )
            .await?,
            tx.query(
                &tx.prepare_cached(
                    "SELECT s.product_id, b.branch_id, s.stock FROM stock s JOIN branches b ON b.branch_key = s.branch_key",
                )
                .await?,
                &[],
            )
            .await?,
        ),
    };
    let now = clock::now_millis();
    for r in products {
        let p = inventory_entry(&mut out, r.try_get(0)?);
        p.name = Some(r.try_get(1)?);
        let sched = r.try_get::<_, Option<i64>>(3)?.zip(r.try_get::<_, Option<i64>>(4)?);
        p.price_cents = Some(price_in_force(r.try_get(2)?, sched, now));
    }
    for r in stock {
        let p = inventory_entry(&mut out, r.try_get(0)?);
        let stock: i64 = r.try_get(2)?;
        p.total_stock = p.total_stock.saturating_add(stock);
        p.by_branch.insert(r.try_get(1)?, stock);
    }
    let moving = super::transfers::in_transit(tx).await?;
    crate::store::transfers::add_in_transit(&mut out, &moving, only);
    Ok(out.into_values().collect())
}

/// Sales in (branch_id, sold_ms, seq) order: branch by branch (from the cursor's branch on),
/// each an index range scan of `sales_by_branch_time`, until the page is full.
pub(super) async fn read_sales(
    tx: &deadpool_postgres::Transaction<'_>,
    filter: &SalesFilter,
    after: Option<SalesCursor>,
    limit: u32,
) -> Result<SalesPageData, StoreError> {
    let after_branch: Option<String> = match after {
        Some(c) => {
            let found = tx
                .query_opt(
                    &tx.prepare_cached("SELECT branch_id FROM branches WHERE branch_key = $1")
                        .await?,
                    &[&c.branch],
                )
                .await?;
            match found {
                Some(r) => Some(r.try_get(0)?),
                // Not our cursor: an empty last page.
                None => {
                    return Ok(SalesPageData {
                        sales: Vec::new(),
                        next: None,
                    })
                }
            }
        }
        None => None,
    };
    let only = filter.branch.as_ref().map(BranchId::as_str);
    let branches = tx
        .query(
            &tx.prepare_cached(
                "SELECT branch_key, branch_id FROM branches \
                 WHERE branch_id >= $1 AND ($2::text IS NULL OR branch_id = $2) ORDER BY branch_id",
            )
            .await?,
            &[&after_branch.as_deref().unwrap_or(""), &only],
        )
        .await?;
    let stmt = tx
        .prepare_cached(
            "SELECT sold_ms, seq, sale_id, received_ms, total_cents, cashier_id, lines, shift_id, payments, \
             (SELECT coalesce(sum(r.total_cents), 0)::int8 FROM returns r \
              WHERE r.branch_key = sales.branch_key AND r.sale_id = sales.sale_id) FROM sales \
             WHERE branch_key = $1 AND (sold_ms, seq) > ($2, $3) AND sold_ms < $4 \
             AND ($6::text IS NULL OR cashier_id = $6) ORDER BY sold_ms, seq LIMIT $5",
        )
        .await?;
    let cashier = filter.cashier.as_ref().map(UserId::as_str);
    let want = limit as usize;
    let mut sales = Vec::with_capacity(want.min(1024));
    let mut last = None;
    for b in branches {
        let key: i64 = b.try_get(0)?;
        let branch_id: String = b.try_get(1)?;
        let (from_ms, from_seq) = crate::store::start_in_branch(filter.from_ms, after, key);
        let to_ms = filter.to_ms.unwrap_or(i64::MAX);
        // One more than needed tells whether another page follows.
        let room = (want + 1 - sales.len()) as i64;
        let rows = tx
            .query(&stmt, &[&key, &from_ms, &from_seq, &to_ms, &room, &cashier])
            .await?;
        for r in rows {
            if sales.len() == want {
                return Ok(SalesPageData { sales, next: last });
            }
            let sold_ms: i64 = r.try_get(0)?;
            let seq: i64 = r.try_get(1)?;
            let lines: &str = r.try_get(6)?;
            let total_cents: i64 = r.try_get(4)?;
            sales.push(CentralSale {
                sale_id: r.try_get(2)?,
                branch_id: branch_id.clone(),
                seq: to_u64(seq),
                lines: decode_lines(lines)?,
                total_cents,
                sold_at: clock::millis_to_rfc3339(sold_ms),
                cashier_id: r.try_get(5)?,
                received_at: clock::millis_to_rfc3339(r.try_get(3)?),
                payments: decode_payments(r.try_get(8)?, total_cents)?,
                shift_id: r.try_get(7)?,
                returned_cents: r.try_get(9)?,
            });
            last = Some(SalesCursor {
                branch: key,
                sold_ms,
                seq,
            });
        }
    }
    Ok(SalesPageData { sales, next: None })
}

pub(super) async fn read_pull(
    tx: &deadpool_postgres::Transaction<'_>,
    branch: &str,
    after: u64,
    limit: u32,
    include_users: bool,
) -> Result<PullData, StoreError> {
    let after = to_i64("cursor", after)?;
    // An unknown branch (key -1) gets the product changes only.
    let (key, applied_through): (i64, i64) = match tx
        .query_opt(
            &tx.prepare_cached("SELECT branch_key, applied_through FROM branches WHERE branch_id = $1")
                .await?,
            &[&branch],
        )
        .await?
    {
        Some(r) => (r.try_get(0)?, r.try_get(1)?),
        None => (-1, 0),
    };
    // Index range scans merged in cursor order: global product changes, this branch's
    // allocations (skipping every other branch's) and, when asked for, the user changes
    // this branch must hear of. Filtering in SQL keeps a page full however many entries
    // a branch does not see, so its cursor always moves on.
    let rows = tx
        .query(
            &tx.prepare_cached(
                "(SELECT cursor, kind, product_id, name, price_cents, version, quantity, payload, \
                  barcode, category, active, reorder_point, sched_price_cents, sched_effective_ms FROM changes \
                  WHERE branch_key IS NULL AND kind = 0 AND cursor > $1 ORDER BY cursor LIMIT $3) \
                 UNION ALL \
                 (SELECT cursor, kind, product_id, name, price_cents, version, quantity, payload, \
                  barcode, category, active, reorder_point, sched_price_cents, sched_effective_ms FROM changes \
                  WHERE branch_key = $2 AND cursor > $1 ORDER BY cursor LIMIT $3) \
                 UNION ALL \
                 (SELECT cursor, kind, product_id, name, price_cents, version, quantity, payload, \
                  barcode, category, active, reorder_point, sched_price_cents, sched_effective_ms FROM changes \
                  WHERE kind = 2 AND cursor > $1 AND $4 \
                  AND (strpos(audience, ',*,') > 0 OR strpos(audience, ',' || $5::text || ',') > 0) \
                  ORDER BY cursor LIMIT $3) \
                 ORDER BY cursor LIMIT $3",
            )
            .await?,
            &[&after, &key, &i64::from(limit), &include_users, &branch],
        )
        .await?;
    let mut changes = Vec::with_capacity(rows.len());
    for r in rows {
        let cursor: i64 = r.try_get(0)?;
        let mut change = Change {
            cursor: to_u64(cursor),
            kind: ChangeKind::Product,
            product_id: r.try_get(2)?,
            name: r.try_get(3)?,
            price_cents: r.try_get(4)?,
            version: r.try_get::<_, Option<i64>>(5)?.map(to_u64),
            quantity: r.try_get(6)?,
            user: None,
            transfer: None,
            barcode: r.try_get(8)?,
            category: r.try_get(9)?,
            active: r.try_get(10)?,
            reorder_point: r.try_get(11)?,
            scheduled_price: r
                .try_get::<_, Option<i64>>(12)?
                .zip(r.try_get::<_, Option<i64>>(13)?)
                .map(scheduled),
        };
        change.kind = match r.try_get::<_, i16>(1)? {
            KIND_PRODUCT => ChangeKind::Product,
            KIND_ALLOCATION => ChangeKind::Allocation,
            KIND_USER => {
                let payload: Option<&str> = r.try_get(7)?;
                change.user = Some(user_record(change.cursor, payload)?);
                change.version = None;
                ChangeKind::User
            }
            KIND_TRANSFER => {
                let payload: Option<&str> = r.try_get(7)?;
                let payload =
                    payload.ok_or_else(|| StoreError::Corrupt(format!("transfer change {cursor} has no payload")))?;
                change.transfer = Some(crate::store::transfers::decode("change", payload)?);
                ChangeKind::Transfer
            }
            other => return Err(StoreError::Corrupt(format!("change {cursor} has kind {other}"))),
        };
        changes.push(change);
    }
    Ok(PullData {
        changes,
        applied_through: to_u64(applied_through),
    })
}

pub(super) const SELECT_USERS: &str =
    "SELECT user_id, name, role, branches, active, pin_hash, version, updated_ms FROM users";

pub(super) fn user_row(r: &tokio_postgres::Row) -> Result<UserRow, StoreError> {
    Ok(UserRow {
        user_id: r.try_get(0)?,
        name: r.try_get(1)?,
        role: r.try_get(2)?,
        branches: r.try_get(3)?,
        active: r.try_get(4)?,
        pin_hash: r.try_get(5)?,
        version: r.try_get(6)?,
        updated_ms: r.try_get(7)?,
    })
}

pub(super) async fn read_users(
    tx: &deadpool_postgres::Transaction<'_>,
    only: Option<&str>,
) -> Result<Vec<User>, StoreError> {
    let rows = match only {
        Some(id) => {
            let stmt = tx.prepare_cached(&format!("{SELECT_USERS} WHERE user_id = $1")).await?;
            tx.query(&stmt, &[&id]).await?
        }
        None => {
            let stmt = tx.prepare_cached(&format!("{SELECT_USERS} ORDER BY user_id")).await?;
            tx.query(&stmt, &[]).await?
        }
    };
    rows.iter().map(|r| user_row(r)?.user()).collect()
}

pub(super) async fn read_audit(
    tx: &deadpool_postgres::Transaction<'_>,
    filter: AuditFilter,
    after: u64,
    limit: u32,
) -> Result<AuditPageData, StoreError> {
    let stmt = tx
        .prepare_cached(
            "SELECT id, at_ms, actor, action, target, before, after FROM audit \
             WHERE id > $1 AND at_ms >= $2 AND at_ms < $3 ORDER BY id LIMIT $4",
        )
        .await?;
    let from = filter.from_ms.unwrap_or(i64::MIN);
    let to = filter.to_ms.unwrap_or(i64::MAX);
    // One more than needed tells whether another page follows.
    let rows = tx
        .query(&stmt, &[&to_i64("after", after)?, &from, &to, &(i64::from(limit) + 1)])
        .await?;
    let mut entries = Vec::with_capacity(rows.len());
    for r in &rows {
        entries.push(audit_entry(
            r.try_get(0)?,
            r.try_get(1)?,
            r.try_get(2)?,
            r.try_get(3)?,
            r.try_get(4)?,
            r.try_get(5)?,
            r.try_get(6)?,
        )?);
    }
    let next = if entries.len() > limit as usize {
        entries.truncate(limit as usize);
        entries.last().map(|e| e.id)
    } else {
        None
    };
    Ok(AuditPageData { entries, next })
}
