//! Signed, expiring URLs for blobs that the server itself serves (the local
//! store has no server of its own to presign for).

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PresignError {
    #[error("the link has expired")]
    Expired,
    #[error("the link's signature does not match")]
    BadSignature,
}

/// Signs `/blobs/{key}?expires=…&sig=…` URLs under a base URL.
#[derive(Clone)]
pub struct UrlSigner {
    base: url::Url,
    key: SecretString,
}

impl UrlSigner {
    pub fn new(base: url::Url, key: SecretString) -> Self {
        Self { base, key }
    }

    fn mac(&self, blob_key: &str, expires: i64) -> HmacSha256 {
        // HMAC accepts keys of any length.
        let mut mac = HmacSha256::new_from_slice(self.key.expose_secret().as_bytes())
            .unwrap_or_else(|_| unreachable!("hmac takes any key length"));
        mac.update(blob_key.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// HMAC-SHA256 of `message` under the signing key, hex-encoded (webhook
    /// signatures). Callers sign messages that cannot be mistaken for a link's
    /// `KEY\nEXPIRES` (which never holds `{` or a space).
    pub fn sign_message(&self, message: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(self.key.expose_secret().as_bytes())
            .unwrap_or_else(|_| unreachable!("hmac takes any key length"));
        mac.update(message);
        hex::encode(mac.finalize().into_bytes())
    }

    /// A URL for `blob_key` valid until `expires` (unix seconds).
    pub fn sign(&self, blob_key: &str, expires: i64) -> url::Url {
        let sig = hex::encode(self.mac(blob_key, expires).finalize().into_bytes());
        let mut url = self.base.clone();
        let path = format!("{}/blobs/{blob_key}", url.path().trim_end_matches('/'));
        url.set_path(&path);
        url.query_pairs_mut()
            .clear()
            .append_pair("expires", &expires.to_string())
            .append_pair("sig", &sig);
        url
    }

    /// Checks a signature made by [`UrlSigner::sign`] at time `now`.
    pub fn verify(
        &self,
        blob_key: &str,
        expires: i64,
        sig: &str,
        now: i64,
    ) -> Result<(), PresignError> {
        let sig = hex::decode(sig).map_err(|_| PresignError::BadSignature)?;
        self.mac(blob_key, expires)
            .verify_slice(&sig)
            .map_err(|_| PresignError::BadSignature)?;
        if now > expires {
            return Err(PresignError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> UrlSigner {
        UrlSigner::new(
            url::Url::parse("http://127.0.0.1:8080").expect("url"),
            SecretString::from("k".repeat(32)),
        )
    }

    #[test]
    fn signed_urls_verify_until_they_expire() {
        let s = signer();
        let url = s.sign("a/b.jpg", 1_000);
        assert_eq!(url.path(), "/blobs/a/b.jpg");
        let sig = url
            .query_pairs()
            .find(|(k, _)| k == "sig")
            .map(|(_, v)| v.into_owned())
            .expect("sig");
        assert_eq!(s.verify("a/b.jpg", 1_000, &sig, 999), Ok(()));
        assert_eq!(
            s.verify("a/b.jpg", 1_000, &sig, 1_001),
            Err(PresignError::Expired)
        );
        assert_eq!(
            s.verify("a/c.jpg", 1_000, &sig, 999),
            Err(PresignError::BadSignature)
        );
        assert_eq!(
            s.verify("a/b.jpg", 2_000, &sig, 999),
            Err(PresignError::BadSignature)
        );
    }
}
