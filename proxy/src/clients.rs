//! Clients: who is calling (an API key from a mounted Secret) and whether they may, right now
//! (a token bucket per client). Built with the table, off the request path; the buckets
//! themselves are runtime state ([`crate::runtime::buckets`]) and outlive the table, so a
//! reload does not refill them.
//!
//! A client is recognised by the certificate its TLS connection presented (signed by an
//! authority of its CA Secret, carrying one of its names when it lists any; verified in the
//! handshake, [`crate::tls::peers`]), by an API key in its header (compared in constant time)
//! or by a JWT (`Authorization: Bearer`) signed by a key of its issuer's JWKS, with its
//! issuer, one of its audiences when it lists any, and an unexpired `exp`. Once any client of a table can be
//! recognised, every request must be: a missing or invalid credential is refused with 401 and
//! never reaches a backend. Credentials are never logged; API keys are not passed on. A
//! client's `rateLimit` is enforced by each proxy replica on its own (N replicas admit up to N
//! times the rate); a request over it is refused with 429 and `Retry-After`. An EdgeService's
//! requests all come from its one client.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_api::route_table::{ClientEntry, RedisEntry};
use governor::clock::{Clock, DefaultClock};
use http::{HeaderMap, HeaderName};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use subtle::ConstantTimeEq;

use crate::global_limit::GlobalLimit;
use crate::runtime::Runtime;
use crate::runtime::buckets::{Bucket, BucketKey};
use crate::runtime::in_flight::{ConcurrencyLimit, InFlightKey, Permit, Saturated};
use crate::tls::peers::PeerCertificate;

/// Mounted Secrets: Secret name → data key → value. In Kubernetes each Secret is a volume at
/// `SECRETS_DIR/NAME/`, one file per data key.
pub type SecretFiles = BTreeMap<String, BTreeMap<String, Vec<u8>>>;

/// Reads every Secret folder under `dir` (none when `dir` does not exist). Entries whose name
/// starts with `.` are skipped: the kubelet's `..data` symlink and timestamped folders.
pub fn read_secrets(dir: &Path) -> std::io::Result<SecretFiles> {
    let mut secrets = SecretFiles::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(secrets),
        Err(e) => return Err(e),
    };
    for secret in entries {
        let secret = secret?.path();
        let Some(name) = visible_name(&secret) else {
            continue;
        };
        if !secret.is_dir() {
            continue;
        }
        let mut data = BTreeMap::new();
        for file in std::fs::read_dir(&secret)? {
            let file = file?.path();
            if let Some(key) = visible_name(&file)
                && file.is_file()
            {
                data.insert(key, std::fs::read(&file)?);
            }
        }
        secrets.insert(name, data);
    }
    Ok(secrets)
}

/// The token of an `Authorization: Bearer TOKEN` header.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The data of a client's Secret, or why there is none.
fn mounted<'a>(
    client: &str,
    secret: &str,
    secrets: &'a SecretFiles,
) -> Result<&'a BTreeMap<String, Vec<u8>>, String> {
    secrets
        .get(secret)
        .ok_or_else(|| format!("client {client}: Secret {secret} does not exist"))
}

/// The warning for a client nobody can be, from why its credentials are unusable.
fn unrecognisable(reason: &str, client: &str) -> String {
    format!(
        "{reason}; requests presenting client {client}'s credentials are refused with 401 until it is fixed"
    )
}

/// The API keys of a client's Secret: every value, trimmed, that is not blank.
fn api_keys(client: &str, secret: &str, secrets: &SecretFiles) -> Result<Vec<Vec<u8>>, String> {
    let keys: Vec<Vec<u8>> = mounted(client, secret, secrets)?
        .values()
        .map(|value| value.trim_ascii().to_vec())
        .filter(|key| !key.is_empty())
        .collect();
    if keys.is_empty() {
        return Err(format!("client {client}: Secret {secret} holds no key"));
    }
    Ok(keys)
}

/// The verifying keys of a client's JWKS Secret.
fn jwks(client: &str, secret: &str, secrets: &SecretFiles) -> Result<Vec<VerifyingKey>, String> {
    let data = mounted(client, secret, secrets)?;
    let json = data
        .get(JWKS_KEY)
        .ok_or_else(|| format!("client {client}: Secret {secret} has no {JWKS_KEY}"))?;
    let set: JwkSet = serde_json::from_slice(json).map_err(|e| {
        format!("client {client}: {JWKS_KEY} of Secret {secret} is not a JWKS: {e}")
    })?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        let key = DecodingKey::from_jwk(jwk).map_err(|e| {
            format!("client {client}: a key of {JWKS_KEY} in Secret {secret} is not usable: {e}")
        })?;
        let algorithm = match jwk.common.key_algorithm {
            Some(alg) => Some(Algorithm::try_from(alg).map_err(|e| {
                format!("client {client}: a key of {JWKS_KEY} in Secret {secret} is not for signatures: {e}")
            })?),
            None => None,
        };
        keys.push(VerifyingKey {
            id: jwk.common.key_id.clone(),
            algorithm,
            key,
        });
    }
    if keys.is_empty() {
        return Err(format!(
            "client {client}: {JWKS_KEY} of Secret {secret} holds no key"
        ));
    }
    Ok(keys)
}

fn visible_name(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    (!name.starts_with('.')).then(|| name.to_owned())
}

/// Why a request's caller was not recognised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No API key in any client's header and no bearer token.
    MissingCredential,
    /// A key or token that belongs to no client.
    UnknownCredential,
}

/// The data key of a JWKS Secret.
pub const JWKS_KEY: &str = "jwks.json";

/// Leeway for `exp` and `nbf`, for clocks that disagree a little.
const JWT_LEEWAY_SECONDS: u64 = 30;

/// A client recognised by API key.
struct KeyedClient {
    name: String,
    header: HeaderName,
    keys: Vec<Vec<u8>>,
}

/// A client recognised by its TLS client certificate.
struct CertifiedClient {
    name: String,
    /// The CA Secret whose authorities must vouch for the certificate.
    authority: String,
    /// Names one of which the certificate must carry, ASCII lower case; empty: any.
    names: Vec<String>,
}

impl CertifiedClient {
    fn owns(&self, certificate: &PeerCertificate) -> bool {
        certificate.authorities.contains(&self.authority)
            && (self.names.is_empty() || self.names.iter().any(|n| certificate.names.contains(n)))
    }
}

/// A client recognised by JWT.
struct JwtClient {
    name: String,
    issuer: String,
    audiences: Vec<String>,
    keys: Vec<VerifyingKey>,
}

/// One key of an issuer's JWKS.
struct VerifyingKey {
    id: Option<String>,
    algorithm: Option<Algorithm>,
    key: DecodingKey,
}

/// A client's rate limit.
enum Limit {
    /// Enforced by this replica alone.
    Local(Arc<Bucket>),
    /// Shared by every replica through Redis.
    Global(Arc<GlobalLimit>),
}

/// Whether a request may go on, as far as its client's rate limit is concerned.
pub enum Admission {
    /// It may.
    Admitted,
    /// Not before this wait.
    Wait(Duration),
    /// The global limit must be asked (an await on Redis).
    Global(Arc<GlobalLimit>),
}

/// The table's clients, ready to recognise and limit requests.
#[derive(Default)]
pub struct Clients {
    keyed: Vec<KeyedClient>,
    jwt: Vec<JwtClient>,
    certified: Vec<CertifiedClient>,
    /// The distinct headers keys come in, in the order they are looked at.
    headers: Vec<HeaderName>,
    limits: BTreeMap<String, Limit>,
    concurrency: BTreeMap<String, ConcurrencyLimit>,
}

impl std::fmt::Debug for Clients {
    // Never prints keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients")
            .field(
                "keyed",
                &self.keyed.iter().map(|c| &c.name).collect::<Vec<_>>(),
            )
            .field("jwt", &self.jwt.iter().map(|c| &c.name).collect::<Vec<_>>())
            .field(
                "certified",
                &self.certified.iter().map(|c| &c.name).collect::<Vec<_>>(),
            )
            .field("limited", &self.limits.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Clients {
    /// Prepares the clients of a table, taking each limited client's bucket and count of
    /// requests in flight from `runtime`.
    ///
    /// A client whose Secret does not exist, holds no key or no usable JWKS is recognised by
    /// nobody (its requests get 401) and said in `warnings`; the table still loads. Deleting or
    /// emptying a client's Secret is how a leaked key is revoked, so it must take effect: were
    /// the table refused instead, the previous table, and with it the revoked key, would keep
    /// serving.
    ///
    /// Global limits draw from `redis` (the table's server, else the proxy's `--redis`); with
    /// neither, or with one that cannot be used, every such request takes its client's
    /// `onRedisFailure` (and `warnings` say why).
    pub fn build(
        entries: &[ClientEntry],
        secrets: &SecretFiles,
        redis: Option<&RedisEntry>,
        runtime: &Runtime,
        warnings: &mut Vec<String>,
    ) -> Result<Self, String> {
        let mut clients = Self::default();
        let mut store = None;
        if entries
            .iter()
            .any(|e| e.rate_limit.as_ref().is_some_and(|l| l.global.is_some()))
        {
            store = runtime.redis.store(redis, secrets).unwrap_or_else(|e| {
                warnings.push(format!(
                    "global rate limits cannot reach Redis, so every request takes its \
                     client's onRedisFailure: {e}"
                ));
                None
            });
        }
        for entry in entries {
            if let Some(api_key) = &entry.api_key {
                let header = HeaderName::from_bytes(api_key.header.as_bytes()).map_err(|_| {
                    format!(
                        "client {}: {:?} is not a header name",
                        entry.name, api_key.header
                    )
                })?;
                let keys = api_keys(&entry.name, &api_key.secret, secrets).unwrap_or_else(|e| {
                    warnings.push(unrecognisable(&e, &entry.name));
                    Vec::new()
                });
                if !clients.headers.contains(&header) {
                    clients.headers.push(header.clone());
                }
                clients.keyed.push(KeyedClient {
                    name: entry.name.clone(),
                    header,
                    keys,
                });
            }
            if let Some(jwt) = &entry.jwt {
                clients.jwt.push(JwtClient {
                    name: entry.name.clone(),
                    issuer: jwt.issuer.clone(),
                    audiences: jwt.audiences.clone(),
                    keys: jwks(&entry.name, &jwt.jwks_secret, secrets).unwrap_or_else(|e| {
                        warnings.push(unrecognisable(&e, &entry.name));
                        Vec::new()
                    }),
                });
            }
            if let Some(certificate) = &entry.certificate {
                clients.certified.push(CertifiedClient {
                    name: entry.name.clone(),
                    authority: certificate.ca_secret.clone(),
                    names: certificate
                        .names
                        .iter()
                        .map(|n| n.to_ascii_lowercase())
                        .collect(),
                });
            }
            if let Some(limit) = &entry.rate_limit {
                let rate = NonZeroU32::new(limit.requests_per_second).ok_or_else(|| {
                    format!("client {}: requestsPerSecond must be above 0", entry.name)
                })?;
                let burst = NonZeroU32::new(limit.burst).unwrap_or(rate);
                let limit = match &limit.global {
                    Some(global) => Limit::Global(Arc::new(GlobalLimit::new(
                        store.clone(),
                        &global.budget,
                        rate.get(),
                        burst.get(),
                        global.on_redis_failure,
                    ))),
                    None => Limit::Local(runtime.buckets.bucket(&BucketKey {
                        client: entry.name.clone(),
                        requests_per_second: rate,
                        burst,
                    })),
                };
                clients.limits.insert(entry.name.clone(), limit);
            }
            if let Some(max) = entry.max_in_flight {
                let key = InFlightKey::Client(entry.name.clone());
                let max = usize::try_from(max).unwrap_or(usize::MAX);
                clients
                    .concurrency
                    .insert(entry.name.clone(), runtime.in_flight.limit(&key, max));
            }
        }
        Ok(clients)
    }

    /// True when a client is recognised by its certificate: the request's connection must be
    /// asked for the certificate it presented.
    pub fn by_certificate(&self) -> bool {
        !self.certified.is_empty()
    }

    /// Who is calling: the client whose certificate the connection presented (`certificate`),
    /// or whose API key or JWT the request carries, else `fallback` (an EdgeService's client),
    /// else nobody. Refused when the table's clients can be recognised and the request
    /// carries no valid credential.
    pub fn recognise<'a>(
        &'a self,
        headers: &HeaderMap,
        certificate: Option<&PeerCertificate>,
        fallback: Option<&'a str>,
    ) -> Result<Option<&'a str>, Refusal> {
        if self.keyed.is_empty() && self.jwt.is_empty() && self.certified.is_empty() {
            return Ok(fallback);
        }
        let mut presented = false;
        if let Some(certificate) = certificate {
            presented = true;
            if let Some(client) = self.certified.iter().find(|c| c.owns(certificate)) {
                return Ok(Some(client.name.as_str()));
            }
        }
        for header in &self.headers {
            for value in headers.get_all(header) {
                presented = true;
                if let Some(client) = self.owner_of(header, value.as_bytes()) {
                    return Ok(Some(client));
                }
            }
        }
        if !self.jwt.is_empty()
            && let Some(token) = bearer_token(headers)
        {
            presented = true;
            if let Some(client) = self.jwt_owner(token) {
                return Ok(Some(client));
            }
        }
        Err(if presented {
            Refusal::UnknownCredential
        } else {
            Refusal::MissingCredential
        })
    }

    /// The client whose issuer signed `token` (for it, unexpired, for one of its audiences).
    fn jwt_owner(&self, token: &str) -> Option<&str> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        for client in &self.jwt {
            let keys = client
                .keys
                .iter()
                .filter(|key| header.kid.is_none() || key.id.is_none() || key.id == header.kid);
            for key in keys {
                // The key's own algorithm decides, never the token's choice alone.
                if key.algorithm.is_some_and(|alg| alg != header.alg) {
                    continue;
                }
                let mut validation = Validation::new(header.alg);
                validation.leeway = JWT_LEEWAY_SECONDS;
                validation.set_issuer(&[&client.issuer]);
                validation.set_required_spec_claims(&["exp", "iss"]);
                if client.audiences.is_empty() {
                    validation.validate_aud = false;
                } else {
                    validation.set_audience(&client.audiences);
                }
                let verified =
                    jsonwebtoken::decode::<serde::de::IgnoredAny>(token, &key.key, &validation);
                if verified.is_ok() {
                    return Some(client.name.as_str());
                }
            }
        }
        None
    }

    /// The headers API keys come in; the gateway does not pass them on to backends.
    pub fn key_headers(&self) -> &[HeaderName] {
        &self.headers
    }

    /// The client a key in `header` belongs to. Every key is compared, in constant time.
    fn owner_of(&self, header: &HeaderName, presented: &[u8]) -> Option<&str> {
        let mut owner = None;
        for client in self.keyed.iter().filter(|c| c.header == *header) {
            for key in &client.keys {
                if bool::from(key.as_slice().ct_eq(presented)) && owner.is_none() {
                    owner = Some(client.name.as_str());
                }
            }
        }
        owner
    }

    /// A permit for one more request of `client` (`Ok(None)`: no limit); `Err` when it has as
    /// many in flight as it may.
    pub fn enter(&self, client: Option<&str>) -> Result<Option<Permit>, Saturated> {
        match client.and_then(|name| self.concurrency.get(name)) {
            None => Ok(None),
            Some(limit) => limit.try_acquire().map(Some).ok_or(Saturated),
        }
    }

    /// Takes one request from `client`'s bucket (when it is empty, the wait until it is not),
    /// or says that its global limit must be asked.
    pub fn admit(&self, client: Option<&str>) -> Admission {
        match client.and_then(|name| self.limits.get(name)) {
            None => Admission::Admitted,
            Some(Limit::Local(bucket)) => match bucket.check() {
                Ok(()) => Admission::Admitted,
                Err(not_until) => {
                    Admission::Wait(not_until.wait_time_from(DefaultClock::default().now()))
                }
            },
            Some(Limit::Global(limit)) => Admission::Global(limit.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use gatehouse_api::route_table::{ApiKeyEntry, RateLimitEntry};
    use http::HeaderValue;

    use super::*;

    fn entry(name: &str, secret: Option<&str>, limit: Option<(u32, u32)>) -> ClientEntry {
        ClientEntry {
            name: name.to_owned(),
            api_key: secret.map(|s| ApiKeyEntry {
                secret: s.to_owned(),
                header: "x-api-key".to_owned(),
            }),
            jwt: None,
            certificate: None,
            max_in_flight: None,
            rate_limit: limit.map(|(rate, burst)| RateLimitEntry {
                requests_per_second: rate,
                burst,
                global: None,
            }),
        }
    }

    fn build(entries: &[ClientEntry], secrets: &SecretFiles) -> Result<Clients, String> {
        let mut warnings = Vec::new();
        let clients = Clients::build(entries, secrets, None, &Runtime::default(), &mut warnings)?;
        assert!(warnings.is_empty(), "{warnings:?}");
        Ok(clients)
    }

    fn secrets() -> SecretFiles {
        let mut files = SecretFiles::new();
        files.insert(
            "web-keys".to_owned(),
            [
                ("a".to_owned(), b"key-web-1\n".to_vec()),
                ("b".to_owned(), b"key-web-2".to_vec()),
            ]
            .into(),
        );
        files.insert(
            "partner-keys".to_owned(),
            [("k".to_owned(), b"key-partner".to_vec())].into(),
        );
        files
    }

    fn with_key(key: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_str(key).unwrap());
        headers
    }

    #[test]
    fn a_key_names_its_client_and_anything_else_is_refused() {
        let clients = build(
            &[
                entry("web", Some("web-keys"), None),
                entry("partner", Some("partner-keys"), None),
            ],
            &secrets(),
        )
        .unwrap();
        assert_eq!(
            clients.recognise(&with_key("key-web-2"), None, None),
            Ok(Some("web"))
        );
        assert_eq!(
            clients.recognise(&with_key("key-web-1"), None, None),
            Ok(Some("web"))
        );
        assert_eq!(
            clients.recognise(&with_key("key-partner"), None, None),
            Ok(Some("partner"))
        );
        assert_eq!(
            clients.recognise(&with_key("key-web"), None, None),
            Err(Refusal::UnknownCredential)
        );
        assert_eq!(
            clients.recognise(&HeaderMap::new(), None, None),
            Err(Refusal::MissingCredential)
        );
        assert!(
            !format!("{clients:?}").contains("key-web"),
            "Debug never shows keys"
        );
    }

    #[test]
    fn without_keyed_clients_every_request_is_the_fallback_client() {
        let clients = build(&[entry("mobile", None, None)], &secrets()).unwrap();
        assert_eq!(
            clients.recognise(&HeaderMap::new(), None, Some("mobile")),
            Ok(Some("mobile"))
        );
        assert_eq!(clients.recognise(&HeaderMap::new(), None, None), Ok(None));
    }

    #[test]
    fn a_certificate_names_its_client_by_authority_and_name_before_any_key() {
        use gatehouse_api::route_table::ClientCertificateEntry;
        let certified = |name: &str, ca: &str, names: &[&str]| ClientEntry {
            certificate: Some(ClientCertificateEntry {
                ca_secret: ca.to_owned(),
                names: names.iter().map(|n| (*n).to_owned()).collect(),
            }),
            ..entry(name, None, None)
        };
        let clients = build(
            &[
                certified("acme", "partners-ca", &["Gateway.ACME.example"]),
                certified("any-partner", "partners-ca", &[]),
                certified("internal", "internal-ca", &["spiffe://corp/billing"]),
                entry("web", Some("web-keys"), None),
            ],
            &secrets(),
        )
        .unwrap();
        assert!(clients.by_certificate());
        let peer = |authorities: &[&str], names: &[&str]| PeerCertificate {
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            authorities: authorities.iter().map(|a| (*a).to_owned()).collect(),
        };
        let none = HeaderMap::new();
        let acme = peer(&["partners-ca"], &["gateway.acme.example"]);
        assert_eq!(
            clients.recognise(&none, Some(&acme), None),
            Ok(Some("acme"))
        );
        // The certificate wins over a key the same request carries.
        let keyed = with_key("key-web-1");
        assert_eq!(
            clients.recognise(&keyed, Some(&acme), None),
            Ok(Some("acme"))
        );
        // Signed by the authority, another name: the client that takes any.
        let other = peer(&["partners-ca"], &["other.example"]);
        assert_eq!(
            clients.recognise(&none, Some(&other), None),
            Ok(Some("any-partner"))
        );
        // The right name, but the other authority does not vouch for it.
        let billing = peer(&["partners-ca"], &["spiffe://corp/billing"]);
        assert_eq!(
            clients.recognise(&none, Some(&billing), None),
            Ok(Some("any-partner"))
        );
        let billing = peer(&["internal-ca"], &["spiffe://corp/billing"]);
        assert_eq!(
            clients.recognise(&none, Some(&billing), None),
            Ok(Some("internal"))
        );
        // No authority vouches (its CA Secret broke since the handshake): a key still may.
        let stale = peer(&[], &["gateway.acme.example"]);
        assert_eq!(
            clients.recognise(&none, Some(&stale), None),
            Err(Refusal::UnknownCredential)
        );
        assert_eq!(
            clients.recognise(&keyed, Some(&stale), None),
            Ok(Some("web"))
        );
        assert_eq!(
            clients.recognise(&none, None, None),
            Err(Refusal::MissingCredential)
        );
    }

    #[test]
    fn a_client_whose_secret_is_missing_or_empty_is_recognised_by_nobody() {
        let mut files = secrets();
        files.insert(
            "blank".to_owned(),
            [("k".to_owned(), b"\n".to_vec())].into(),
        );
        let mut warnings = Vec::new();
        let clients = Clients::build(
            &[
                entry("gone", Some("missing"), None),
                entry("emptied", Some("blank"), None),
                entry("web", Some("web-keys"), None),
            ],
            &files,
            None,
            &Runtime::default(),
            &mut warnings,
        )
        .unwrap();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].contains("client gone: Secret missing does not exist"),
            "{warnings:?}"
        );
        assert!(
            warnings[1].contains("client emptied: Secret blank holds no key"),
            "{warnings:?}"
        );
        assert!(
            warnings[0].ends_with("refused with 401 until it is fixed"),
            "{warnings:?}"
        );
        assert_eq!(
            clients.recognise(&with_key("key-web-1"), None, None),
            Ok(Some("web")),
            "the other clients are served"
        );
        assert_eq!(
            clients.recognise(&with_key(""), None, None),
            Err(Refusal::UnknownCredential)
        );
        assert_eq!(
            clients.recognise(&HeaderMap::new(), None, None),
            Err(Refusal::MissingCredential)
        );
    }

    #[test]
    fn the_bucket_admits_the_burst_then_refuses_with_a_wait() {
        let clients = build(&[entry("web", None, Some((1, 3)))], &secrets()).unwrap();
        for _ in 0..3 {
            assert!(matches!(clients.admit(Some("web")), Admission::Admitted));
        }
        match clients.admit(Some("web")) {
            Admission::Wait(wait) => {
                assert!(
                    wait > Duration::ZERO && wait <= Duration::from_secs(1),
                    "{wait:?}"
                );
            }
            _ => panic!("expected a refusal with a wait"),
        }
        assert!(
            matches!(clients.admit(Some("other")), Admission::Admitted),
            "unlimited clients pass"
        );
        assert!(matches!(clients.admit(None), Admission::Admitted));
    }
}
