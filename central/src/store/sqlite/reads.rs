//! The read queries, each on a pooled reader connection (a committed WAL snapshot).
use super::writes::user_row;
use super::{KIND_ALLOCATION, KIND_PRODUCT, KIND_TRANSFER, KIND_USER};
use crate::store::catalog::scheduled;
use crate::store::common::{audit_entry, corrupt, decode_lines, inventory_entry, to_i64, to_u64, user_record};
use crate::store::till::decode_payments;
use crate::store::{AuditFilter, AuditPageData, PullData, SalesCursor, SalesFilter, SalesPageData, StoreError};
use colmena_shared::catalog::price_in_force;
use colmena_shared::clock;
use colmena_shared::ids::BranchId;
use colmena_shared::users::{User, UserId};
use colmena_shared::wire::{BranchSummary, CentralProductStock, CentralSale, Change, ChangeKind};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use std::collections::BTreeMap;

pub(super) fn read_inventory(conn: &Connection, only: Option<&str>) -> Result<Vec<CentralProductStock>, StoreError> {
    let mut out: BTreeMap<String, CentralProductStock> = BTreeMap::new();
    let (products_sql, stock_sql) = match only {
        Some(_) => (
            "SELECT product_id, name, price_cents, sched_price_cents, sched_effective_ms FROM products \
             WHERE product_id = ?1",
            // One (branch_key, product_id) lookup per branch: CROSS JOIN keeps branches outside.
            "SELECT s.product_id, b.branch_id, s.stock FROM branches b CROSS JOIN stock s \
             ON s.branch_key = b.branch_key AND s.product_id = ?1",
        ),
        None => (
            "SELECT product_id, name, price_cents, sched_price_cents, sched_effective_ms FROM products",
            "SELECT s.product_id, b.branch_id, s.stock FROM stock s JOIN branches b ON b.branch_key = s.branch_key",
        ),
    };
    let args: Vec<&str> = only.into_iter().collect();
    let now = clock::now_millis();
    {
        let mut stmt = conn.prepare_cached(products_sql)?;
        let mut rows = stmt.query(params_from_iter(args.iter()))?;
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            let p = inventory_entry(&mut out, id);
            p.name = Some(r.get(1)?);
            let sched = r.get::<_, Option<i64>>(3)?.zip(r.get::<_, Option<i64>>(4)?);
            p.price_cents = Some(price_in_force(r.get(2)?, sched, now));
        }
    }
    {
        let mut stmt = conn.prepare_cached(stock_sql)?;
        let mut rows = stmt.query(params_from_iter(args.iter()))?;
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            let branch: String = r.get(1)?;
            let stock: i64 = r.get(2)?;
            let p = inventory_entry(&mut out, id);
            p.total_stock = p.total_stock.saturating_add(stock);
            p.by_branch.insert(branch, stock);
        }
    }
    crate::store::transfers::add_in_transit(&mut out, &super::transfers::in_transit(conn)?, only);
    Ok(out.into_values().collect())
}

pub(super) fn read_branches(conn: &Connection) -> Result<Vec<BranchSummary>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT branch_id, applied_through, last_push_ms, events_applied, sales_count FROM branches ORDER BY branch_id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(BranchSummary {
            branch_id: r.get(0)?,
            applied_through: to_u64(r.get(1)?),
            last_push_at: r.get::<_, Option<i64>>(2)?.map(clock::millis_to_rfc3339),
            events_applied: to_u64(r.get(3)?),
            sales_count: to_u64(r.get(4)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Sales in (branch_id, sold_ms, seq) order: branch by branch (from the cursor's branch on),
/// each an index range scan of `sales_by_branch_time`, until the page is full.
pub(super) fn read_sales(
    conn: &Connection,
    filter: &SalesFilter,
    after: Option<SalesCursor>,
    limit: u32,
) -> Result<SalesPageData, StoreError> {
    let after_branch: Option<String> = match after {
        Some(c) => match conn
            .prepare_cached("SELECT branch_id FROM branches WHERE branch_key = ?1")?
            .query_row([c.branch], |r| r.get(0))
            .optional()?
        {
            Some(id) => Some(id),
            None => {
                return Ok(SalesPageData {
                    sales: Vec::new(),
                    next: None,
                })
            } // not our cursor
        },
        None => None,
    };
    let branches: Vec<(i64, String)> = {
        let mut stmt = conn.prepare_cached(
            "SELECT branch_key, branch_id FROM branches WHERE branch_id >= ?1 AND (?2 IS NULL OR branch_id = ?2) \
             ORDER BY branch_id",
        )?;
        let rows = stmt.query_map(
            params![
                after_branch.as_deref().unwrap_or(""),
                filter.branch.as_ref().map(BranchId::as_str)
            ],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        rows.collect::<Result<_, _>>()?
    };
    let mut stmt = conn.prepare_cached(
        "SELECT sold_ms, seq, sale_id, received_ms, total_cents, cashier_id, lines, shift_id, payments, \
         (SELECT coalesce(sum(r.total_cents), 0) FROM returns r INDEXED BY returns_by_sale \
          WHERE r.branch_key = sales.branch_key AND r.sale_id = sales.sale_id) FROM sales \
         WHERE branch_key = ?1 AND (sold_ms, seq) > (?2, ?3) AND sold_ms < ?4 \
         AND (?6 IS NULL OR cashier_id = ?6) ORDER BY sold_ms, seq LIMIT ?5",
    )?;
    let cashier = filter.cashier.as_ref().map(UserId::as_str);
    let want = limit as usize;
    let mut sales = Vec::with_capacity(want.min(1024));
    let mut last = None;
    for (key, branch_id) in branches {
        let (from_ms, from_seq) = crate::store::start_in_branch(filter.from_ms, after, key);
        let to_ms = filter.to_ms.unwrap_or(i64::MAX);
        // One more than needed tells whether another page follows.
        let room = (want + 1 - sales.len()) as i64;
        let mut rows = stmt.query(params![key, from_ms, from_seq, to_ms, room, cashier])?;
        while let Some(r) = rows.next()? {
            if sales.len() == want {
                return Ok(SalesPageData { sales, next: last });
            }
            let sold_ms: i64 = r.get(0)?;
            let seq: i64 = r.get(1)?;
            let lines: String = r.get(6)?;
            let total_cents: i64 = r.get(4)?;
            let payments: Option<String> = r.get(8)?;
            sales.push(CentralSale {
                sale_id: r.get(2)?,
                branch_id: branch_id.clone(),
                seq: to_u64(seq),
                lines: decode_lines(&lines)?,
                total_cents,
                sold_at: clock::millis_to_rfc3339(sold_ms),
                cashier_id: r.get(5)?,
                received_at: clock::millis_to_rfc3339(r.get(3)?),
                payments: decode_payments(payments.as_deref(), total_cents)?,
                shift_id: r.get(7)?,
                returned_cents: r.get(9)?,
            });
            last = Some(SalesCursor {
                sold_ms,
                branch: key,
                seq,
            });
        }
    }
    Ok(SalesPageData { sales, next: None })
}

pub(super) fn read_pull(
    conn: &Connection,
    branch: &str,
    after: u64,
    limit: u32,
    include_users: bool,
) -> Result<PullData, StoreError> {
    let after = to_i64("cursor", after)?;
    // An unknown branch (key -1) gets the product changes only.
    let (key, applied_through) = conn
        .prepare_cached("SELECT branch_key, applied_through FROM branches WHERE branch_id = ?1")?
        .query_row([branch], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
        .optional()?
        .unwrap_or((-1, 0));
    // Index range scans merged in cursor order: global product changes, this branch's
    // allocations (skipping every other branch's) and, when asked for, the user changes
    // this branch must hear of. Filtering in SQL keeps a page full however many entries
    // a branch does not see, so its cursor always moves on.
    let mut stmt = conn.prepare_cached(
        "SELECT cursor, kind, product_id, name, price_cents, version, quantity, payload, \
         barcode, category, active, reorder_point, sched_price_cents, sched_effective_ms FROM changes \
         WHERE branch_key IS NULL AND kind = 0 AND cursor > ?1 \
         UNION ALL \
         SELECT cursor, kind, product_id, name, price_cents, version, quantity, payload, \
         barcode, category, active, reorder_point, sched_price_cents, sched_effective_ms FROM changes \
         WHERE branch_key = ?2 AND cursor > ?1 \
         UNION ALL \
         SELECT cursor, kind, product_id, name, price_cents, version, quantity, payload, \
         barcode, category, active, reorder_point, sched_price_cents, sched_effective_ms FROM changes \
         WHERE kind = 2 AND cursor > ?1 AND ?4 \
         AND (instr(audience, ',*,') > 0 OR instr(audience, ',' || ?5 || ',') > 0) \
         ORDER BY cursor LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![after, key, limit, include_users, branch], |r| {
        let kind: i64 = r.get(1)?;
        let payload: Option<String> = r.get(7)?;
        Ok((
            kind,
            payload,
            Change {
                cursor: to_u64(r.get(0)?),
                kind: ChangeKind::Product,
                product_id: r.get(2)?,
                name: r.get(3)?,
                price_cents: r.get(4)?,
                version: r.get::<_, Option<i64>>(5)?.map(to_u64),
                quantity: r.get(6)?,
                user: None,
                transfer: None,
                barcode: r.get(8)?,
                category: r.get(9)?,
                active: r.get(10)?,
                reorder_point: r.get(11)?,
                scheduled_price: r
                    .get::<_, Option<i64>>(12)?
                    .zip(r.get::<_, Option<i64>>(13)?)
                    .map(scheduled),
            },
        ))
    })?;
    let mut changes = Vec::new();
    for row in rows {
        let (kind, payload, mut change) = row?;
        change.kind = match kind {
            KIND_PRODUCT => ChangeKind::Product,
            KIND_ALLOCATION => ChangeKind::Allocation,
            KIND_USER => {
                change.user = Some(user_record(change.cursor, payload.as_deref())?);
                change.version = None;
                ChangeKind::User
            }
            KIND_TRANSFER => {
                let payload =
                    payload.ok_or_else(|| corrupt(format!("transfer change {} has no payload", change.cursor)))?;
                change.transfer = Some(crate::store::transfers::decode("change", &payload)?);
                ChangeKind::Transfer
            }
            other => return Err(corrupt(format!("change {} has kind {other}", change.cursor))),
        };
        changes.push(change);
    }
    Ok(PullData {
        changes,
        applied_through: to_u64(applied_through),
    })
}

const SELECT_USERS: &str = "SELECT user_id, name, role, branches, active, pin_hash, version, updated_ms FROM users";

pub(super) fn read_users(conn: &Connection, only: Option<&str>) -> Result<Vec<User>, StoreError> {
    let rows = match only {
        Some(id) => conn
            .prepare_cached(&format!("{SELECT_USERS} WHERE user_id = ?1"))?
            .query_map([id], user_row)?
            .collect::<Result<Vec<_>, _>>()?,
        None => conn
            .prepare_cached(&format!("{SELECT_USERS} ORDER BY user_id"))?
            .query_map([], user_row)?
            .collect::<Result<Vec<_>, _>>()?,
    };
    rows.iter().map(|r| r.user()).collect()
}

pub(super) fn read_audit(
    conn: &Connection,
    filter: AuditFilter,
    after: u64,
    limit: u32,
) -> Result<AuditPageData, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, at_ms, actor, action, target, before, after FROM audit \
         WHERE id > ?1 AND at_ms >= ?2 AND at_ms < ?3 ORDER BY id LIMIT ?4",
    )?;
    let from = filter.from_ms.unwrap_or(i64::MIN);
    let to = filter.to_ms.unwrap_or(i64::MAX);
    // One more than needed tells whether another page follows.
    let rows = stmt.query_map(params![to_i64("after", after)?, from, to, i64::from(limit) + 1], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
        ))
    })?;
    let mut entries = Vec::new();
    for row in rows {
        let (id, at, actor, action, target, before, after) = row?;
        entries.push(audit_entry(id, at, actor, action, target, before, after)?);
    }
    let next = if entries.len() > limit as usize {
        entries.truncate(limit as usize);
        entries.last().map(|e| e.id)
    } else {
        None
    };
    Ok(AuditPageData { entries, next })
}
