//! Signed, expiring URLs for blobs that the server itself serves (the local
//! store has no server of its own to presign for), and the validity window
//! every link is made for.

use std::time::Duration;

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

/// Links are made for whole buckets of time: every link to one key asked
/// within one bucket is the same URL, so that caches (nginx, browsers) keep
/// one copy of the blob for everybody holding the link.
pub const LINK_BUCKET: Duration = Duration::from_secs(3600);

/// The validity of a link asked at `now` (unix seconds) for at least `ttl`:
/// `(start, expires)`, from the start of `now`'s bucket to a bucket and `ttl`
/// later. The same for every `now` in one bucket; `expires - now` is more
/// than `ttl` and at most `ttl` plus a bucket.
pub fn link_window(now: i64, ttl: Duration) -> (i64, i64) {
    let bucket = LINK_BUCKET.as_secs() as i64;
    let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 4);
    let start = now - now.rem_euclid(bucket);
    (start, start.saturating_add(bucket).saturating_add(ttl))
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
        self.sign_at("/blobs", blob_key, expires)
    }

    /// A URL for `blob_key` under another of the server's routes (`/t`,
    /// where the thumbnails role makes a derivative on its first request),
    /// valid until `expires` and signed as blob links are:
    /// `{route}/{key}?expires=…&sig=…`.
    pub fn sign_at(&self, route: &str, blob_key: &str, expires: i64) -> url::Url {
        let sig = hex::encode(self.mac(blob_key, expires).finalize().into_bytes());
        let mut url = self.base.clone();
        let path = format!(
            "{}{}/{blob_key}",
            url.path().trim_end_matches('/'),
            route.trim_end_matches('/')
        );
        url.set_path(&path);
        url.query_pairs_mut()
            .clear()
            .append_pair("expires", &expires.to_string())
            .append_pair("sig", &sig);
        url
    }

    /// A link to `blob_key` asked at `now` (unix seconds), valid for at
    /// least `ttl`: the same URL for every `now` in one [`LINK_BUCKET`]
    /// (see [`link_window`]).
    pub fn link(&self, blob_key: &str, ttl: Duration, now: i64) -> url::Url {
        self.sign(blob_key, link_window(now, ttl).1)
    }

    /// [`UrlSigner::link`] under `route` (see [`UrlSigner::sign_at`]).
    pub fn link_at(&self, route: &str, blob_key: &str, ttl: Duration, now: i64) -> url::Url {
        self.sign_at(route, blob_key, link_window(now, ttl).1)
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

    #[test]
    fn links_under_another_route_carry_the_same_signature() {
        let s = UrlSigner::new(
            url::Url::parse("https://photos.example/base/").expect("url"),
            SecretString::from("k".repeat(32)),
        );
        let blob = s.sign("derivatives/ab/x/w2048.jpg", 1_000);
        let made = s.sign_at("/t", "derivatives/ab/x/w2048.jpg", 1_000);
        assert_eq!(blob.path(), "/base/blobs/derivatives/ab/x/w2048.jpg");
        assert_eq!(made.path(), "/base/t/derivatives/ab/x/w2048.jpg");
        assert_eq!(blob.query(), made.query());
        let sig = made
            .query_pairs()
            .find(|(k, _)| k == "sig")
            .map(|(_, v)| v.into_owned())
            .expect("sig");
        assert_eq!(
            s.verify("derivatives/ab/x/w2048.jpg", 1_000, &sig, 999),
            Ok(())
        );
    }

    fn expires(url: &url::Url) -> i64 {
        url.query_pairs()
            .find(|(k, _)| k == "expires")
            .and_then(|(_, v)| v.parse().ok())
            .expect("expires")
    }

    #[test]
    fn links_are_stable_within_a_bucket_and_valid_for_the_ttl() {
        let s = signer();
        let ttl = Duration::from_secs(24 * 3600);
        let bucket = LINK_BUCKET.as_secs() as i64;
        let start = 1_800_000_000 - 1_800_000_000 % bucket;
        // Moments apart, anywhere in the bucket: the same link.
        for (a, b) in [
            (start, start + 1),
            (start + 17, start + 30),
            (start + bucket - 2, start + bucket - 1),
        ] {
            let (first, second) = (s.link("d/x.webp", ttl, a), s.link("d/x.webp", ttl, b));
            assert_eq!(first, second, "{a} {b}");
            assert!(expires(&second) - b >= ttl.as_secs() as i64);
            assert!(expires(&first) - a <= ttl.as_secs() as i64 + bucket);
        }
        // The next bucket makes the next link, still valid for the ttl.
        let next = s.link("d/x.webp", ttl, start + bucket);
        assert_ne!(next, s.link("d/x.webp", ttl, start + bucket - 1));
        assert!(expires(&next) - (start + bucket) >= ttl.as_secs() as i64);
        // Another key, another link.
        assert_ne!(
            s.link("d/y.webp", ttl, start),
            s.link("d/x.webp", ttl, start)
        );
    }

    #[test]
    fn windows_start_at_the_bucket_and_outlast_the_ttl() {
        let bucket = LINK_BUCKET.as_secs() as i64;
        let now = 10 * bucket + 5;
        assert_eq!(
            link_window(now, Duration::from_secs(60)),
            (10 * bucket, 11 * bucket + 60)
        );
        assert_eq!(
            link_window(10 * bucket, Duration::ZERO),
            (10 * bucket, 11 * bucket)
        );
    }
}
