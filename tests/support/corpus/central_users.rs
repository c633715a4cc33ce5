//! Central's documented 4xx answers for users, the audit trail, sales by cashier and the
//! pull's `include` (docs/protocol.md, "Users", "Audit trail"), as cases of the one corpus,
//! run with [`super::central_api::central_api_corpus`] against a central that knows the
//! branches CUS and ABA and has no users: each would create or change one if let through.
use super::{case, Case, Svc};
use crate::support::branch_token;
use serde_json::json;

fn put_user(id: &str, body: serde_json::Value) -> Case {
    case(Svc::Central, "PUT", &format!("/users/{id}")).json(body)
}

fn get(path: &str) -> Case {
    case(Svc::Central, "GET", path)
}

pub fn central_users_corpus() -> Vec<Case> {
    let ok = || json!({"name": "Ana", "role": "cashier", "branches": ["CUS"], "pin": "4821"});
    let with = |k: &str, v: serde_json::Value| {
        let mut b = ok();
        b[k] = v;
        b
    };
    let mut extra = ok();
    extra["email"] = json!("ana@example.com");
    let mut no_pin = ok();
    no_pin.as_object_mut().unwrap().remove("pin");
    let long_id = "u".repeat(65);
    let bad = |c: Case, why: &str| c.named(why).expect(400, "invalid_request");
    vec![
        // PUT /users/{id}
        bad(put_user("a%20b", ok()), "bad user id"),
        bad(put_user(&long_id, ok()), "user id over 64 chars"),
        bad(put_user("ana", with("name", json!(""))), "empty name"),
        bad(put_user("ana", with("name", json!("   "))), "blank name"),
        bad(put_user("ana", with("name", json!("n".repeat(201)))), "name over 200"),
        bad(put_user("ana", with("branches", json!([]))), "no branches"),
        bad(
            put_user("ana", with("branches", json!(["*", "CUS"]))),
            "star among others",
        ),
        bad(put_user("ana", with("branches", json!(["ZZZ"]))), "unknown branch"),
        bad(put_user("ana", with("branches", json!(["cus"]))), "bad branch id"),
        bad(put_user("ana", with("branches", json!("CUS"))), "branches not a list"),
        bad(put_user("ana", with("role", json!("owner"))), "unknown role"),
        bad(put_user("ana", with("pin", json!("12"))), "short PIN"),
        bad(put_user("ana", with("pin", json!("123456789"))), "long PIN"),
        bad(put_user("ana", with("pin", json!("12a4"))), "PIN not digits"),
        bad(put_user("ana", with("pin", json!(4821))), "PIN a number"),
        bad(put_user("ana", with("active", json!("yes"))), "active not a bool"),
        bad(put_user("ana", extra), "unknown field"),
        bad(put_user("ana", no_pin), "no PIN on create"),
        bad(case(Svc::Central, "PUT", "/users/ana").raw("{"), "malformed JSON"),
        put_user("ana", ok())
            .token(&branch_token("CUS"))
            .named("branch token")
            .expect(403, "forbidden"),
        case(Svc::Central, "DELETE", "/users/ana").expect(405, "method_not_allowed"),
        // GET /users/{id}
        bad(get("/users/a%20b"), "bad user id"),
        get("/users/nobody").expect(404, "not_found"),
        get("/users").token(&branch_token("CUS")).expect(403, "forbidden"),
        // GET /audit
        bad(get("/audit?limit=0"), "limit 0"),
        bad(get("/audit?limit=1001"), "limit over 1000"),
        bad(get("/audit?from=yesterday"), "from not RFC 3339"),
        bad(
            get("/audit?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z"),
            "from after to",
        ),
        bad(get("/audit?after=zzz"), "bad cursor"),
        bad(get("/audit?actor=admin"), "unknown parameter"),
        get("/audit").token(&branch_token("CUS")).expect(403, "forbidden"),
        // sales by cashier
        bad(get("/sales?cashier_id=a%20b"), "bad cashier_id"),
        bad(get("/sales?cashier_id="), "empty cashier_id"),
        bad(get("/sales/export?cashier_id=%C3%B1"), "bad cashier_id"),
        // the pull's include
        bad(
            get("/sync/pull?include=shifts").token(&branch_token("CUS")),
            "unknown include",
        ),
        bad(get("/sync/pull?include=").token(&branch_token("CUS")), "empty include"),
    ]
}
