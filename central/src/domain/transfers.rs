//! Input rules of central's transfer endpoints (docs/protocol.md, "Transfers"). What needs
//! no store is checked here, so every refusal is a 400 that changed nothing; whether the
//! branches and products are known is the store's call, in the write's transaction.
use super::truncate;
use crate::error::CentralError;
use crate::store::{IdempotencyKey, TransferFilter};
use colmena_shared::transfers::{check_transfer_id, TransferRequest, TransferStatus};
use serde::Deserialize;

/// `POST /transfers` body, checked by the shared rules ([`TransferRequest::validate`]).
pub fn transfer_request(req: TransferRequest) -> Result<TransferRequest, CentralError> {
    req.validate().map_err(CentralError::InvalidRequest)?;
    Ok(req)
}

/// What "the same request" means for a `POST /transfers` key: the request as understood
/// (its fields, not their spelling).
pub fn transfer_fingerprint(key: String, req: &TransferRequest) -> IdempotencyKey {
    let lines: Vec<(&str, i64)> = req.lines.iter().map(|l| (l.product_id.as_str(), l.quantity)).collect();
    let body = serde_json::json!({
        "from_branch": req.from_branch.as_str(), "to_branch": req.to_branch.as_str(),
        "lines": lines, "note": req.note,
    });
    IdempotencyKey {
        key,
        fingerprint: format!("POST /transfers {body}"),
    }
}

/// A transfer id from the path: 400 when it cannot be one.
pub fn transfer_id(s: &str) -> Result<String, CentralError> {
    check_transfer_id(s).map_err(CentralError::InvalidRequest)?;
    Ok(s.to_string())
}

/// `GET /transfers` query. Unknown parameters are rejected, as on `/sales`: a misspelt
/// filter would otherwise silently list every transfer.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TransfersQuery {
    /// Only transfers in this status.
    #[param(pattern = "^(requested|cancelled|in_transit|received)$", example = "in_transit")]
    pub status: Option<String>,
    /// Only transfers from or to this branch.
    #[param(pattern = "^[A-Z0-9_-]{2,16}$")]
    pub branch_id: Option<String>,
}

pub fn transfers_query(q: TransfersQuery) -> Result<TransferFilter, CentralError> {
    let status = q
        .status
        .as_deref()
        .map(|s| {
            TransferStatus::parse(s).ok_or_else(|| {
                CentralError::InvalidRequest(format!(
                    "status must be requested, cancelled, in_transit or received, got {:?}",
                    truncate(s)
                ))
            })
        })
        .transpose()?;
    Ok(TransferFilter {
        status,
        branch: q.branch_id.as_deref().map(super::branch_id).transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_filters_and_ids_are_checked() {
        let ok = transfers_query(TransfersQuery {
            status: Some("in_transit".into()),
            branch_id: Some("CUS".into()),
        })
        .unwrap();
        assert_eq!(ok.status, Some(TransferStatus::InTransit));
        for (status, branch) in [(Some("sent"), None), (None, Some("cus"))] {
            let q = TransfersQuery {
                status: status.map(str::to_string),
                branch_id: branch.map(str::to_string),
            };
            assert!(transfers_query(q).is_err());
        }
        assert!(transfer_id("TR-000001").is_ok());
        assert!(transfer_id("TR 1").is_err());
    }
}
