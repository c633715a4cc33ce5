//! Who may do what at the branch: one table, asked for every request by [`crate::auth`]
//! once the caller is known (docs/protocol.md, "Permissions").
//!
//! Each route pattern maps to one [`Action`] ([`action_of`]); [`allows`] says whether a
//! [`Caller`] may perform it. A route missing from [`action_of`] is refused to everyone
//! (403), so a new endpoint is closed until it is given a row here; a unit test holds every
//! route of the OpenAPI document to that.
use colmena_shared::users::{Role, UserId};

/// Who is calling, resolved from the bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The POS token: a till without a logged-in user.
    Device,
    /// A live login session.
    User { user_id: UserId, role: Role },
    /// `--admin-token`: automation (backups, exports).
    Admin,
}

impl Caller {
    /// The logged-in user behind a user token; `None` for the device and admin tokens.
    pub fn user_id(&self) -> Option<&UserId> {
        match self {
            Caller::User { user_id, .. } => Some(user_id),
            _ => None,
        }
    }

    /// The label used in logs and metrics (never the token).
    pub fn kind(&self) -> &'static str {
        match self {
            Caller::Device => "device",
            Caller::User { role, .. } => role.as_str(),
            Caller::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `GET /inventory`, `GET /inventory/{product_id}`.
    ReadInventory,
    /// `GET /status`.
    ReadStatus,
    /// `POST /sell`.
    Sell,
    /// `POST /stock/adjustments`, `POST /stock/counts`.
    AdjustStock,
    /// `GET /products/search`: a read of the catalog, for every caller (a till searches
    /// before it sells, and whoever may read the inventory may read the catalog).
    SearchProducts,
    /// `/admin/*` (backups).
    Backups,
    /// `GET /sales/export`.
    ExportSales,
    /// `GET /outbox`.
    ReadOutbox,
    /// `POST /logout`.
    Logout,
    /// `/shifts*`: open, read, cash movements, close. Whose shift (a cashier only their
    /// own) is decided by [`crate::till`], which knows the shift.
    Till,
    /// `POST /sales/{id}/returns`. Above `--cashier-return-limit` a supervisor or manager
    /// ([`crate::till::returns`], which knows the amount).
    Return,
    /// `/transfers*`: read, dispatch and receive transfers (docs/protocol.md,
    /// "Transfers"). Which side may take which step is [`crate::transfers`]'s.
    Transfers,
}

/// Whether `caller` may perform `action`. `require_login` (`--require-login`) takes selling
/// away from the POS token, so every sale names a logged-in cashier.
pub fn allows(caller: &Caller, action: Action, require_login: bool) -> bool {
    use Role::{Manager, Supervisor};
    match action {
        Action::ReadInventory | Action::ReadStatus | Action::SearchProducts => true,
        Action::Sell => match caller {
            Caller::Device => !require_login,
            Caller::User { .. } => true,
            // Automation does not sell: a sale is always a till's or a person's.
            Caller::Admin => false,
        },
        Action::AdjustStock | Action::Transfers => matches!(
            caller,
            Caller::Admin
                | Caller::User {
                    role: Supervisor | Manager,
                    ..
                }
        ),
        Action::Backups | Action::ExportSales | Action::ReadOutbox => {
            matches!(caller, Caller::Admin | Caller::User { role: Manager, .. })
        }
        // A till is a person's: the POS and admin tokens name nobody to record.
        Action::Logout | Action::Till | Action::Return => matches!(caller, Caller::User { .. }),
    }
}

/// The action of a matched route pattern; `None` for a route with no row (refused).
pub fn action_of(pattern: &str) -> Option<Action> {
    Some(match pattern {
        "/inventory" | "/inventory/{product_id}" => Action::ReadInventory,
        "/status" => Action::ReadStatus,
        "/sell" => Action::Sell,
        "/stock/adjustments" | "/stock/counts" => Action::AdjustStock,
        "/products/search" => Action::SearchProducts,
        "/sales/export" => Action::ExportSales,
        "/outbox" => Action::ReadOutbox,
        "/logout" => Action::Logout,
        "/shifts" | "/shifts/{shift_id}" | "/shifts/{shift_id}/cash-movements" | "/shifts/{shift_id}/close" => {
            Action::Till
        }
        "/sales/{sale_id}/returns" => Action::Return,
        "/transfers"
        | "/transfers/{transfer_id}"
        | "/transfers/{transfer_id}/dispatch"
        | "/transfers/{transfer_id}/receive" => Action::Transfers,
        p if p == "/admin" || p.starts_with("/admin/") => Action::Backups,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role) -> Caller {
        Caller::User {
            user_id: UserId::parse("u").unwrap(),
            role,
        }
    }

    #[test]
    fn the_table() {
        use Action::*;
        let callers = [
            Caller::Device,
            user(Role::Cashier),
            user(Role::Supervisor),
            user(Role::Manager),
            Caller::Admin,
        ];
        // Columns: device, cashier, supervisor, manager, admin.
        let table: [(Action, [bool; 5]); 12] = [
            (ReadInventory, [true, true, true, true, true]),
            (ReadStatus, [true, true, true, true, true]),
            (Sell, [true, true, true, true, false]),
            (AdjustStock, [false, false, true, true, true]),
            (SearchProducts, [true, true, true, true, true]),
            (Backups, [false, false, false, true, true]),
            (ExportSales, [false, false, false, true, true]),
            (ReadOutbox, [false, false, false, true, true]),
            (Logout, [false, true, true, true, false]),
            (Till, [false, true, true, true, false]),
            (Return, [false, true, true, true, false]),
            (Transfers, [false, false, true, true, true]),
        ];
        for (action, row) in table {
            for (caller, want) in callers.iter().zip(row) {
                assert_eq!(allows(caller, action, false), want, "{caller:?} {action:?}");
            }
        }
        assert!(!allows(&Caller::Device, Sell, true));
        assert!(allows(&user(Role::Cashier), Sell, true));
    }

    #[test]
    fn every_documented_route_has_a_row() {
        let doc = crate::openapi::document();
        for path in doc.paths.paths.keys() {
            if ["/health", "/metrics", "/openapi.json", "/login"].contains(&path.as_str()) {
                continue;
            }
            assert!(action_of(path).is_some(), "{path} has no row in the permission table");
        }
    }
}
