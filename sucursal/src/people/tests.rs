//! The directory and the login, without HTTP.
use super::*;
use colmena_shared::users::Role;

fn record(id: &str, role: Role, version: u64, pin_hash: &str) -> UserRecord {
    UserRecord {
        user_id: UserId::parse(id).unwrap(),
        name: format!("User {id}"),
        role,
        branches: vec!["CUS".into()],
        active: true,
        version,
        pin_hash: pin_hash.to_string(),
    }
}

fn login(id: &str, pin: &str) -> LoginRequest {
    serde_json::from_value(serde_json::json!({"user_id": id, "pin": pin})).unwrap()
}

#[tokio::test]
async fn login_opens_a_session_and_revocation_ends_it() {
    let hash = hash_pin("4821").unwrap();
    let people = People::new(
        "CUS",
        vec![record("ana", Role::Cashier, 1, &hash)],
        Duration::from_secs(60),
    )
    .unwrap();
    let ok = people.login(login("ana", "4821"), None).await.unwrap();
    assert_eq!(ok.role, Role::Cashier);
    let debug = format!("{ok:?}");
    assert!(!debug.contains(&ok.token), "{debug}");
    assert!(people.sessions.resolve(&ok.token, clock::now_millis()).is_some());
    for bad in [
        login("ana", "1111"),
        login("bob", "4821"),
        login("ana", "48x1"),
        login("../x", "4821"),
    ] {
        assert!(!format!("{bad:?}").contains("4821") || bad.user_id == "bob" || bad.user_id == "../x");
        assert_eq!(
            people.login(bad, None).await.unwrap_err(),
            LoginRefused::InvalidCredentials
        );
    }
    // Deactivated at central: the pulled change ends the session.
    let mut off = record("ana", Role::Cashier, 2, &hash);
    off.active = false;
    people.apply_user(&off);
    assert!(people.sessions.resolve(&ok.token, clock::now_millis()).is_none());
    assert_eq!(
        people.login(login("ana", "4821"), None).await.unwrap_err(),
        LoginRefused::InvalidCredentials
    );
    // An older version never overrides a newer one.
    people.apply_user(&record("ana", Role::Cashier, 1, &hash));
    assert!(!people.user(&UserId::parse("ana").unwrap()).unwrap().active);
}

#[test]
fn debug_output_hides_pins_hashes_and_tokens() {
    let req = login("ana", "4821");
    assert!(!format!("{req:?}").contains("4821"));
    let u = record("ana", Role::Cashier, 1, "$argon2id$v=19$secret-hash");
    assert!(!format!("{u:?}").contains("secret-hash"));
    let resp = LoginResponse {
        token: "tok-very-secret".into(),
        user_id: u.user_id.clone(),
        name: "Ana".into(),
        role: Role::Cashier,
        expires_at: "2026-01-01T00:00:00Z".into(),
    };
    assert!(!format!("{resp:?}").contains("very-secret"));
    let s = sessions::Sessions::default();
    let new = s.open(u.user_id.clone(), Role::Cashier, 10, 0);
    assert!(!format!("{new:?}").contains(&new.token));
}

#[test]
fn hashes_asking_for_too_much_memory_never_match() {
    assert!(!verify_pin(
        "$argon2id$v=19$m=4000000,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        b"1234"
    ));
    assert!(!verify_pin("not a hash", b"1234"));
}
