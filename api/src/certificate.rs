//! What a `kubernetes.io/tls` Secret must hold to serve HTTPS: a PEM certificate chain in
//! `tls.crt` and, in `tls.key`, the PEM private key of its first certificate, in a form rustls
//! signs with. One check for both sides: the operator reports a Secret that fails it in the
//! resource's status, and the proxy serves exactly the certificates that pass it.
//!
//! The same for a client-certificate authority's Secret: PEM certificates in `ca.crt`, each a
//! usable trust anchor.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// Data key of the certificate chain (PEM, leaf first).
pub const CERTIFICATE_KEY: &str = "tls.crt";
/// Data key of the private key (PEM: PKCS#8, PKCS#1 or SEC1).
pub const PRIVATE_KEY_KEY: &str = "tls.key";

/// Data key of the certificate authorities of a CA bundle Secret (PEM).
pub const AUTHORITIES_KEY: &str = "ca.crt";
/// The data key of a Redis password Secret.
pub const PASSWORD_KEY: &str = "password";

/// Why a Secret gives no certificate. Names the Secret, never carries key material.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, thiserror::Error)]
pub enum CertificateError {
    /// The Secret does not exist (or was not delivered).
    #[error("TLS Secret {secret:?} is missing")]
    MissingSecret {
        /// Secret name.
        secret: String,
    },
    /// The Secret lacks a data key.
    #[error("TLS Secret {secret:?} has no {key:?}")]
    MissingKey {
        /// Secret name.
        secret: String,
        /// `tls.crt` or `tls.key`.
        key: &'static str,
    },
    /// `tls.crt` holds no PEM certificate.
    #[error("TLS Secret {secret:?}: tls.crt holds no PEM certificate ({reason})")]
    Certificate {
        /// Secret name.
        secret: String,
        /// What the PEM reader said.
        reason: String,
    },
    /// `tls.key` holds no PEM private key, or one rustls cannot sign with.
    #[error("TLS Secret {secret:?}: tls.key holds no usable PEM private key ({reason})")]
    PrivateKey {
        /// Secret name.
        secret: String,
        /// What the PEM reader or the key loader said.
        reason: String,
    },
    /// A client-certificate authorities' Secret does not exist (or was not delivered).
    #[error("CA Secret {secret:?} is missing")]
    MissingAuthorities {
        /// Secret name.
        secret: String,
    },
    /// `ca.crt` is absent, holds no PEM certificate, or one that is no usable authority.
    #[error("CA Secret {secret:?}: ca.crt holds no usable PEM certificate ({reason})")]
    Authorities {
        /// Secret name.
        secret: String,
        /// What was wrong.
        reason: String,
    },
    /// A Redis password Secret does not exist, or holds no usable `password`.
    #[error("Redis password Secret {secret:?} {reason}")]
    Password {
        /// Secret name.
        secret: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The private key is not the certificate's.
    #[error(
        "TLS Secret {secret:?}: the private key in tls.key does not match the certificate in tls.crt"
    )]
    Mismatch {
        /// Secret name.
        secret: String,
    },
}

/// Checks that Secret `secret` (its data, `None` when it does not exist) holds a Redis password:
/// a non-empty UTF-8 [`PASSWORD_KEY`].
pub fn redis_password(
    secret: &str,
    data: Option<&BTreeMap<String, Vec<u8>>>,
) -> Result<(), CertificateError> {
    let problem = |reason| CertificateError::Password {
        secret: secret.to_owned(),
        reason,
    };
    let data = data.ok_or_else(|| problem("is missing"))?;
    match data.get(PASSWORD_KEY).map(|p| std::str::from_utf8(p)) {
        None => Err(problem("has no \"password\"")),
        Some(Err(_)) => Err(problem("holds a \"password\" that is not UTF-8")),
        Some(Ok("")) => Err(problem("holds an empty \"password\"")),
        Some(Ok(_)) => Ok(()),
    }
}

/// The crypto provider TLS uses (ring, as the Kubernetes client's).
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The certificate chain and signing key of Secret `secret` (its data, `None` when it does not
/// exist), checked to belong together.
pub fn certified_key(
    secret: &str,
    data: Option<&BTreeMap<String, Vec<u8>>>,
) -> Result<Arc<CertifiedKey>, CertificateError> {
    let name = || secret.to_owned();
    let data = data.ok_or_else(|| CertificateError::MissingSecret { secret: name() })?;
    let value = |key: &'static str| {
        data.get(key).ok_or_else(|| CertificateError::MissingKey {
            secret: name(),
            key,
        })
    };
    let chain = CertificateDer::pem_slice_iter(value(CERTIFICATE_KEY)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CertificateError::Certificate {
            secret: name(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(CertificateError::Certificate {
            secret: name(),
            reason: "no CERTIFICATE block".to_owned(),
        });
    }
    let private_key = |reason: String| CertificateError::PrivateKey {
        secret: name(),
        reason,
    };
    let key = PrivateKeyDer::from_pem_slice(value(PRIVATE_KEY_KEY)?)
        .map_err(|e| private_key(e.to_string()))?;
    let signing_key = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| private_key(e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(Arc::new(certified))
        }
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(CertificateError::Mismatch { secret: name() })
        }
        Err(e) => Err(CertificateError::Certificate {
            secret: name(),
            reason: e.to_string(),
        }),
    }
}

impl CertificateError {
    /// True for a problem with a client-certificate authorities' Secret.
    pub fn is_authorities(&self) -> bool {
        matches!(
            self,
            Self::MissingAuthorities { .. } | Self::Authorities { .. }
        )
    }
}

/// The certificate authorities of Secret `secret` (its data, `None` when it does not exist):
/// every PEM certificate of its `ca.crt`, each a usable trust anchor, at least one.
pub fn certificate_authorities(
    secret: &str,
    data: Option<&BTreeMap<String, Vec<u8>>>,
) -> Result<RootCertStore, CertificateError> {
    let problem = |reason: String| CertificateError::Authorities {
        secret: secret.to_owned(),
        reason,
    };
    let data = data.ok_or_else(|| CertificateError::MissingAuthorities {
        secret: secret.to_owned(),
    })?;
    let pem = data
        .get(AUTHORITIES_KEY)
        .ok_or_else(|| problem(format!("there is no {AUTHORITIES_KEY}")))?;
    let mut roots = RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(pem) {
        let certificate = certificate.map_err(|e| problem(e.to_string()))?;
        roots.add(certificate).map_err(|e| problem(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(problem("no CERTIFICATE block".to_owned()));
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redis_password_secret_needs_a_non_empty_utf8_password() {
        let data = |value: &[u8]| BTreeMap::from([(PASSWORD_KEY.to_owned(), value.to_vec())]);
        assert!(redis_password("auth", Some(&data(b"s3cret"))).is_ok());
        let message = |data: Option<&BTreeMap<String, Vec<u8>>>| {
            redis_password("auth", data).unwrap_err().to_string()
        };
        assert_eq!(message(None), "Redis password Secret \"auth\" is missing");
        assert_eq!(
            message(Some(&BTreeMap::new())),
            "Redis password Secret \"auth\" has no \"password\""
        );
        assert_eq!(
            message(Some(&data(b""))),
            "Redis password Secret \"auth\" holds an empty \"password\""
        );
        assert!(message(Some(&data(&[0xff]))).ends_with("that is not UTF-8"));
    }
}
