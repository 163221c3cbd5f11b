//! Unit tests of the grant and scope rules and of minting.

use super::*;
use crate::oauth::client::ClientId;

fn client(scopes: &str, defaults: Option<&str>) -> Client {
    Client {
        id: ClientId::parse("c").unwrap(),
        name: None,
        scopes: ScopeSet::parse(scopes).unwrap(),
        default_scopes: defaults.map(|d| ScopeSet::parse(d).unwrap()),
        ttl: None,
        audience: None,
        allowed_audiences: Default::default(),
        grants: [GrantType::ClientCredentials].into(),
        auth_methods: Default::default(),
        dialects: Default::default(),
        alg: crate::keys::Alg::Es256,
        can_introspect: false,
        enabled: true,
        created_at: 0,
        updated_at: 0,
        secrets: vec![],
    }
}

#[test]
fn an_omitted_scope_grants_the_default_scopes() {
    let c = client("transaction confirmation annulment", None);
    assert_eq!(granted_scope(&c, None).unwrap(), c.scopes);
    let c = client("transaction confirmation", Some("transaction"));
    assert_eq!(granted_scope(&c, None).unwrap().to_string(), "transaction");
}

#[test]
fn a_documented_lifetime_is_the_default_and_the_production_ceiling() {
    let mut c = client("transaction", None);
    assert_eq!(lifetime(Mode::Production, &c, None).unwrap(), DEFAULT_TTL);
    assert_eq!(lifetime(Mode::Production, &c, Some(3600)).unwrap(), 3600);
    c.ttl = Some(3600);
    assert!(matches!(
        lifetime(Mode::Production, &c, None),
        Err(TokenError::UnauthorizedClient(_))
    ));
    assert_eq!(lifetime(Mode::Production, &c, Some(3600)).unwrap(), 3600);
    c.ttl = Some(86_400);
    assert_eq!(lifetime(Mode::Sandbox, &c, None).unwrap(), 86_400);
}

#[test]
fn a_requested_audience_must_be_the_clients_own_or_in_its_list() {
    let mut c = client("transaction", None);
    let aud = |c: &Client, a: Option<&str>| audience_for(c, "https://ficha", a.map(Into::into));
    assert_eq!(aud(&c, None).unwrap(), "https://ficha");
    assert_eq!(aud(&c, Some("https://ficha")).unwrap(), "https://ficha");
    assert!(matches!(
        aud(&c, Some("https://api.example")),
        Err(TokenError::InvalidTarget(_))
    ));
    c.allowed_audiences = ["https://api.example".to_owned()].into();
    assert_eq!(
        aud(&c, Some("https://api.example")).unwrap(),
        "https://api.example"
    );
    assert!(aud(&c, Some("https://other.example")).is_err());
    c.allowed_audiences = [crate::oauth::ANY_AUDIENCE.to_owned()].into();
    assert_eq!(
        aud(&c, Some("https://other.example")).unwrap(),
        "https://other.example"
    );
}

#[test]
fn a_scope_outside_the_allowed_set_is_invalid_scope() {
    let c = client("transaction", None);
    let r = granted_scope(&c, Some(ScopeSet::parse("transaction refund").unwrap()));
    assert!(matches!(r, Err(TokenError::InvalidScope(_))));
}

#[test]
fn jtis_of_one_second_share_a_prefix_and_differ() {
    let (a, b) = (new_jti(1_764_590_400), new_jti(1_764_590_400));
    assert_eq!(a.len(), JTI_LEN);
    assert_eq!(JTI_LEN, 22);
    assert_ne!(a, b);
    assert_eq!(a[..5], b[..5]);
    assert_ne!(
        new_jti(1_764_590_400)[..5],
        new_jti(1_764_590_400 + 64)[..5]
    );
}
