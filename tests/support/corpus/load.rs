//! Reads the corpus' data files (`tests/support/corpus/*.json`) into [`Case`]s.
//!
//! A file is a JSON array of cases, one per line:
//!
//! ```json
//! {"name": "POST /sell — quantity 0", "svc": "branch", "method": "POST", "path": "/sell",
//!  "body": {"json": {"product_id": "P1", "quantity": 0}}, "expect": [400, "invalid_request"]}
//! ```
//!
//! - `headers` (optional): the whole list, in order, as `[name, value]`; absent, the
//!   builder's defaults ([`super::case`]: the service's good token, JSON content type).
//! - `framing: true`: send no Content-Length of our own (the headers carry the framing).
//! - `expect`: `[status, code]` of a JSON error, or `{"framing": status}` for a request
//!   actix-http's parser refuses with an empty body.
//! - `body`: `{"stream": {"len": n, "byte": "x"}}`, `{"chunked": n}`, or bytes.
//!
//! Bytes (a body, a path, a header value) are a string, a segment, or a list of segments,
//! joined: a string (templated, below); `{"json": v}` (`v` serialized compactly, its strings
//! templated; a string that is only a `{{next…}}` template becomes that number);
//! `{"repeat": "s", "times": n}`; `{"hex": "ff"}`; `{"gzip": bytes, "level": "best",
//! "take": n}` (gzip of the bytes, optionally cut to its first `n` bytes); `{"sale_events":
//! n}` (`n` sale events from `next`, comma-separated). Big bodies stay generated so that the
//! files stay small and readable.
//!
//! Templates: `{{pos}}`, `{{admin}}`, `{{branch_admin}}` (the tests' tokens: POS, central's
//! admin, a branch's admin), `{{cus}}` (branch CUS's token),
//! `{{next}}`, `{{next+k}}` (CUS's next seq at central, plus k), `{{next+k:010}}` (the same,
//! zero-padded to 10 digits as in sale ids), and for the till `{{cashier}}` (a cashier's
//! session token at CUS), `{{shift}}` (their open shift), `{{sale}}` (their sale of one P1).
//! Anything else is an error, so a typo cannot
//! silently turn into a different request.
use super::{Body, Case, Expect, Svc};

/// What templates are filled from.
pub struct Ctx {
    /// CUS's next seq at central.
    pub next: Option<u64>,
    pub till: Option<TillFixture>,
}

/// A cashier logged in at CUS with a shift open, and a sale of theirs (one unit of P1).
#[derive(Clone)]
pub struct TillFixture {
    pub cashier_token: String,
    pub shift_id: String,
    pub sale_id: String,
}
use crate::support::{branch_token, ADMIN_TOKEN, BRANCH_ADMIN_TOKEN, POS_TOKEN};
use serde_json::{json, Value};
use std::io::Write as _;
use std::path::PathBuf;

/// Every case of `file` (a name under `tests/support/corpus/`), CUS's next seq at central
/// being `next` (`None` for a file with no `{{next}}` template). Panics, naming the file and case, on a malformed file: a corpus that
/// cannot be read must fail the test, not shrink it.
pub fn load(file: &str, next: Option<u64>) -> Vec<Case> {
    load_with(file, &Ctx { next, till: None })
}

/// [`load`] with the till's templates too (see the module doc).
pub fn load_with(file: &str, ctx: &Ctx) -> Vec<Case> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support/corpus")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    cases
        .iter()
        .enumerate()
        .map(|(i, v)| case_of(v, ctx).unwrap_or_else(|e| panic!("{file}, case {i}: {e}")))
        .collect()
}

/// A sale event of branch CUS at `seq`, valid in every way.
fn event_sale(seq: u64) -> Value {
    json!({"seq": seq, "kind": "sale", "occurred_at": "2026-11-23T16:00:00Z", "sale_id": format!("CUS-{seq:010}"),
           "lines": [{"product_id": "P1", "quantity": 2, "unit_price_cents": 100}], "total_cents": 200})
}

type R<T> = Result<T, String>;

fn case_of(v: &Value, ctx: &Ctx) -> R<Case> {
    let s = |k: &str| v[k].as_str().ok_or_else(|| format!("`{k}` must be a string"));
    let svc = match s("svc")? {
        "branch" => Svc::Branch,
        "central" => Svc::Central,
        other => return Err(format!("unknown svc {other:?}")),
    };
    let method = s("method")?;
    let path = String::from_utf8(bytes(&v["path"], ctx)?).map_err(|_| "path is not UTF-8")?;
    let mut c = super::case(svc, method, &path);
    c.name = s("name")?.to_string();
    if let Some(hs) = v.get("headers") {
        let hs = hs.as_array().ok_or("`headers` must be a list")?;
        c.headers = hs
            .iter()
            .map(|h| match (h[0].as_str(), h.get(1)) {
                (Some(k), Some(val)) => Ok((k.to_string(), bytes(val, ctx)?)),
                _ => Err(format!("a header must be [name, value], not {h}")),
            })
            .collect::<R<_>>()?;
    }
    c.raw_framing = v.get("framing").and_then(Value::as_bool).unwrap_or(false);
    c.body = body(v.get("body"), ctx)?;
    c.expect = match &v["expect"] {
        Value::Array(a) => match (a.first().and_then(Value::as_u64), a.get(1).and_then(Value::as_str)) {
            (Some(st), Some(code)) => Expect::Json(status(st)?, code.to_string()),
            _ => return Err("`expect` must be [status, code]".into()),
        },
        e => Expect::Framing(status(e["framing"].as_u64().ok_or("`expect` is missing")?)?),
    };
    Ok(c)
}

fn status(n: u64) -> R<u16> {
    u16::try_from(n).map_err(|_| format!("status {n}"))
}

fn body(v: Option<&Value>, ctx: &Ctx) -> R<Body> {
    let Some(v) = v else {
        return Ok(Body::Bytes(Vec::new()));
    };
    if let Some(s) = v.get("stream") {
        let len = s["len"].as_u64().ok_or("stream.len")?;
        let byte = match s["byte"].as_str().map(str::as_bytes) {
            Some([b]) => *b,
            _ => return Err("stream.byte must be one ASCII character".into()),
        };
        return Ok(Body::Stream { len, byte });
    }
    if let Some(len) = v.get("chunked") {
        return Ok(Body::Chunked {
            len: len.as_u64().ok_or("chunked must be a length")?,
        });
    }
    Ok(Body::Bytes(bytes(v, ctx)?))
}

/// Bytes: a string, one segment or a list of them (see the module doc).
fn bytes(v: &Value, ctx: &Ctx) -> R<Vec<u8>> {
    match v {
        Value::String(s) => Ok(expand(s, ctx)?.into_bytes()),
        Value::Array(parts) => {
            let mut out = Vec::new();
            for p in parts {
                out.extend(bytes(p, ctx)?);
            }
            Ok(out)
        }
        Value::Object(_) => segment(v, ctx),
        _ => Err(format!("not bytes: {v}")),
    }
}

fn segment(v: &Value, ctx: &Ctx) -> R<Vec<u8>> {
    if let Some(j) = v.get("json") {
        return Ok(json_of(j, ctx)?.to_string().into_bytes());
    }
    if let Some(r) = v.get("repeat") {
        let times = v["times"].as_u64().ok_or("repeat needs times")?;
        return Ok(r.as_str().ok_or("repeat a string")?.repeat(times as usize).into_bytes());
    }
    if let Some(h) = v.get("hex") {
        return hex(h.as_str().ok_or("hex must be a string")?);
    }
    if let Some(g) = v.get("gzip") {
        let level = match v.get("level").and_then(Value::as_str) {
            Some("best") => flate2::Compression::best(),
            _ => flate2::Compression::default(),
        };
        let mut e = flate2::write::GzEncoder::new(Vec::new(), level);
        e.write_all(&bytes(g, ctx)?).map_err(|e| e.to_string())?;
        let mut z = e.finish().map_err(|e| e.to_string())?;
        if let Some(n) = v.get("take").and_then(Value::as_u64) {
            z.truncate(n as usize);
        }
        return Ok(z);
    }
    if let Some(n) = v.get("sale_events").and_then(Value::as_u64) {
        let first = seq("next", ctx.next)?;
        let events: Vec<String> = (0..n).map(|i| event_sale(first + i).to_string()).collect();
        return Ok(events.join(",").into_bytes());
    }
    Err(format!("unknown segment {v}"))
}

fn hex(s: &str) -> R<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| {
            s.get(i..i + 2)
                .and_then(|d| u8::from_str_radix(d, 16).ok())
                .ok_or_else(|| format!("bad hex {s:?}"))
        })
        .collect()
}

/// `v` with its strings templated; a string that is only a seq template becomes a number.
fn json_of(v: &Value, ctx: &Ctx) -> R<Value> {
    Ok(match v {
        Value::String(s) => match s.strip_prefix("{{").and_then(|t| t.strip_suffix("}}")) {
            Some(t) if t.starts_with("next") && !t.contains(':') && !t.contains("}}") => json!(seq(t, ctx.next)?),
            _ => Value::String(expand(s, ctx)?),
        },
        Value::Array(a) => Value::Array(a.iter().map(|x| json_of(x, ctx)).collect::<R<_>>()?),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| Ok((k.clone(), json_of(x, ctx)?)))
                .collect::<R<_>>()?,
        ),
        other => other.clone(),
    })
}

/// `s` with its `{{…}}` templates filled in.
fn expand(s: &str, ctx: &Ctx) -> R<String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let j = rest[i..]
            .find("}}")
            .ok_or_else(|| format!("unclosed template in {s:?}"))?;
        let t = &rest[i + 2..i + j];
        out.push_str(&match t {
            "pos" => POS_TOKEN.to_string(),
            "admin" => ADMIN_TOKEN.to_string(),
            "branch_admin" => BRANCH_ADMIN_TOKEN.to_string(),
            "cus" => branch_token("CUS"),
            "cashier" | "shift" | "sale" => {
                let till = ctx
                    .till
                    .as_ref()
                    .ok_or_else(|| format!("{{{{{t}}}}} in a file loaded without a till"))?;
                match t {
                    "cashier" => till.cashier_token.clone(),
                    "shift" => till.shift_id.clone(),
                    _ => till.sale_id.clone(),
                }
            }
            _ => match t.split_once(':') {
                Some((t, "010")) => format!("{:010}", seq(t, ctx.next)?),
                Some(_) => return Err(format!("unknown template {t:?}")),
                None => seq(t, ctx.next)?.to_string(),
            },
        });
        rest = &rest[i + j + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `next` or `next+k`.
fn seq(t: &str, next: Option<u64>) -> R<u64> {
    let next = next.ok_or_else(|| format!("{{{{{t}}}}} in a file loaded without a seq"))?;
    match t.strip_prefix("next") {
        Some("") => Ok(next),
        Some(k) => k
            .strip_prefix('+')
            .and_then(|k| k.parse::<u64>().ok())
            .map(|k| next + k)
            .ok_or_else(|| format!("unknown template {t:?}")),
        None => Err(format!("unknown template {t:?}")),
    }
}
