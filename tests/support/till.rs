//! A logged-in clerk at a branch's till, for the till's tests (docs/protocol.md, "The
//! till"): login, then any request with the user's token, and the few steps every till test
//! takes (open a shift, sell on it, close it). Shared by `api` and `e2e`.
use super::client;
use serde_json::{json, Value};

/// The error code of an error body ("" when there is none).
pub fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

pub struct Clerk {
    pub base: String,
    pub user: String,
    pub token: String,
    c: reqwest::Client,
}

impl Clerk {
    /// Logs `user` in at the branch `base` (panics unless 200).
    pub async fn login(base: &str, user: &str, pin: &str) -> Clerk {
        let c = client();
        let r = c
            .post(format!("{base}/login"))
            .json(&json!({"user_id": user, "pin": pin}))
            .send()
            .await
            .expect("POST /login");
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 200, "login {user}: {v}");
        Clerk {
            base: base.to_string(),
            user: user.to_string(),
            token: v["token"].as_str().expect("token").to_string(),
            c,
        }
    }

    /// A clerk whose session token is already known.
    pub fn with_token(base: &str, user: &str, token: String) -> Clerk {
        Clerk {
            base: base.to_string(),
            user: user.to_string(),
            token,
            c: client(),
        }
    }

    /// `POST path` with an optional `Idempotency-Key`: status, body, replayed.
    pub async fn post_key(&self, path: &str, body: &Value, key: Option<&str>) -> (u16, Value, bool) {
        let mut rb = self
            .c
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body);
        if let Some(k) = key {
            rb = rb.header("Idempotency-Key", k);
        }
        let r = rb.send().await.expect("POST");
        let status = r.status().as_u16();
        let replayed = r.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
        let text = r.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
            replayed,
        )
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let (s, v, _) = self.post_key(path, body, None).await;
        (s, v)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .c
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Opens a shift on `till` (panics unless 201); its id.
    pub async fn open(&self, till: &str, float_cents: i64) -> String {
        let (s, v) = self
            .post("/shifts", &json!({"till_id": till, "opening_float_cents": float_cents}))
            .await;
        assert_eq!(s, 201, "{} opens {till}: {v}", self.user);
        v["shift_id"].as_str().expect("shift_id").to_string()
    }

    /// Sells `items` on `shift` with `payments` (null: none); the 201's body (panics otherwise).
    pub async fn sell(&self, shift: &str, items: Value, payments: Value) -> Value {
        let mut body = json!({"items": items, "shift_id": shift});
        if !payments.is_null() {
            body["payments"] = payments;
        }
        let (s, v) = self.post("/sell", &body).await;
        assert_eq!(s, 201, "{} sells {body}: {v}", self.user);
        v
    }

    /// Closes `shift` counting `counted` (panics unless 200); the closed shift.
    pub async fn close(&self, shift: &str, counted: i64) -> Value {
        let (s, v) = self
            .post(
                &format!("/shifts/{shift}/close"),
                &json!({"counted_cash_cents": counted}),
            )
            .await;
        assert_eq!(s, 200, "{} closes {shift}: {v}", self.user);
        v
    }
}
