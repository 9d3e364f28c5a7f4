//! The blob store conformance suite, against local disk and a real S3
//! server (moto, started by `infra/stack.sh up`). Test names say which
//! backend ran.

use std::sync::Arc;
use std::time::Duration;

use anyhow::ensure;
use futures::StreamExt;
use pinhole_blob::{
    BlobError, BlobStore, ByteRange, LINK_BUCKET, LocalStore, PresignError, S3Store, ServerLinks,
    UrlSigner, put_bytes,
};
use pinhole_testkit::unique;
use secrecy::SecretString;

enum Harness {
    Local(tempfile::TempDir),
    S3(String),
}

fn signer() -> UrlSigner {
    UrlSigner::new(
        url::Url::parse("http://127.0.0.1:8080").expect("static url"),
        SecretString::from("test-signing-key-of-at-least-32-chars".to_owned()),
    )
}

impl Harness {
    fn local() -> anyhow::Result<Self> {
        Ok(Self::Local(tempfile::tempdir()?))
    }

    fn s3() -> Self {
        Self::S3(unique("conformance"))
    }

    async fn store(&self) -> anyhow::Result<Arc<dyn BlobStore>> {
        Ok(match self {
            Self::Local(dir) => {
                Arc::new(LocalStore::open(dir.path().join("blobs"), signer()).await?)
            }
            Self::S3(bucket) => {
                let store = S3Store::new(&pinhole_testkit::s3_settings(bucket));
                store.ensure_bucket().await?;
                Arc::new(store)
            }
        })
    }
}

async fn put_get_head_delete_list(h: Harness) -> anyhow::Result<()> {
    let store = store_of(&h).await?;
    let meta = put_bytes(store.as_ref(), "originals/ab/one.jpg", &b"first blob"[..]).await?;
    ensure!(meta.size == 10);
    put_bytes(store.as_ref(), "originals/ab/two.jpg", &b"second"[..]).await?;
    put_bytes(store.as_ref(), "derived/x.webp", &b"other"[..]).await?;

    let body = store.get("originals/ab/one.jpg", None).await?;
    ensure!(body.meta.size == 10 && body.span == (0, 10));
    ensure!(body.bytes().await?.as_ref() == b"first blob");

    let head = store.head("originals/ab/two.jpg").await?;
    ensure!(head.map(|m| m.size) == Some(6));
    ensure!(store.head("originals/ab/none.jpg").await?.is_none());

    let listed: Vec<(String, u64)> = store
        .list("originals/")
        .await?
        .into_iter()
        .map(|m| (m.key, m.size))
        .collect();
    ensure!(
        listed
            == vec![
                ("originals/ab/one.jpg".into(), 10),
                ("originals/ab/two.jpg".into(), 6)
            ],
        "{listed:?}"
    );
    ensure!(store.list("").await?.len() == 3);

    // Replacing keeps one blob with the new bytes.
    put_bytes(store.as_ref(), "originals/ab/one.jpg", &b"replaced"[..]).await?;
    ensure!(
        store
            .get("originals/ab/one.jpg", None)
            .await?
            .bytes()
            .await?
            .as_ref()
            == b"replaced"
    );

    store.delete("originals/ab/one.jpg").await?;
    ensure!(store.head("originals/ab/one.jpg").await?.is_none());
    ensure!(matches!(
        store.get("originals/ab/one.jpg", None).await,
        Err(BlobError::NotFound(_))
    ));
    // Deleting what is not there is fine.
    store.delete("originals/ab/one.jpg").await?;
    ensure!(store.list("originals/").await?.len() == 1);
    Ok(())
}

async fn ranged_get(h: Harness) -> anyhow::Result<()> {
    let store = store_of(&h).await?;
    let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    put_bytes(store.as_ref(), "r/blob.bin", data.clone()).await?;

    let middle = store
        .get(
            "r/blob.bin",
            Some(ByteRange {
                start: 1000,
                end: Some(1100),
            }),
        )
        .await?;
    ensure!(middle.span == (1000, 100) && middle.meta.size == 10_000);
    ensure!(middle.bytes().await?.as_ref() == &data[1000..1100]);

    let tail = store
        .get(
            "r/blob.bin",
            Some(ByteRange {
                start: 9_990,
                end: None,
            }),
        )
        .await?;
    ensure!(tail.bytes().await?.as_ref() == &data[9_990..]);

    let beyond = store
        .get(
            "r/blob.bin",
            Some(ByteRange {
                start: 10_000,
                end: None,
            }),
        )
        .await;
    ensure!(matches!(beyond, Err(BlobError::InvalidRange { .. })));
    Ok(())
}

async fn bad_keys_are_refused(h: Harness) -> anyhow::Result<()> {
    let store = store_of(&h).await?;
    for key in ["../escape", "/abs", "a//b", "spaces are bad", ""] {
        let result = put_bytes(store.as_ref(), key, &b"x"[..]).await;
        ensure!(matches!(result, Err(BlobError::InvalidKey(_))), "{key}");
    }
    Ok(())
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `make` twice, a clock second apart (links used to change every second)
/// but within one link bucket (made again when the bucket ended in
/// between): both results, and when the second was made.
async fn twice<T, F, Fut>(mut make: F) -> anyhow::Result<(T, T, i64)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let bucket = LINK_BUCKET.as_secs() as i64;
    loop {
        let before = unix_now();
        let first = make().await?;
        pinhole_testkit::wait_for(Duration::from_secs(5), "the next second", || async {
            (unix_now() > before).then_some(())
        })
        .await?;
        let second = make().await?;
        let after = unix_now();
        if before / bucket == after / bucket {
            return Ok((first, second, after));
        }
    }
}

fn query(url: &url::Url, name: &str) -> anyhow::Result<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| anyhow::anyhow!("no {name} in {url}"))
}

/// Until when a presigned S3 URL is valid (unix seconds).
fn s3_expiry(url: &url::Url) -> anyhow::Result<i64> {
    let signed =
        chrono::NaiveDateTime::parse_from_str(&query(url, "X-Amz-Date")?, "%Y%m%dT%H%M%SZ")?;
    Ok(signed.and_utc().timestamp() + query(url, "X-Amz-Expires")?.parse::<i64>()?)
}

async fn presigned_get(h: Harness) -> anyhow::Result<()> {
    let store = store_of(&h).await?;
    put_bytes(store.as_ref(), "p/photo.jpg", &b"presigned bytes"[..]).await?;
    let ttl = Duration::from_secs(300);
    // Links made moments apart are the same URL (caches keep one copy),
    // valid for at least the ttl.
    let (url, again, made) =
        twice(|| async { Ok(store.presign_get("p/photo.jpg", ttl).await?) }).await?;
    ensure!(url == again, "{url} then {again}");
    let expires = match &h {
        Harness::S3(_) => s3_expiry(&url)?,
        Harness::Local(_) => query(&url, "expires")?.parse()?,
    };
    ensure!(
        expires - made >= 300,
        "{url} expires at {expires}, made at {made}"
    );
    // The server serves the bytes of a plain store's links itself.
    ensure!(store.redirect_get("p/photo.jpg", ttl).await?.is_none());
    match &h {
        Harness::S3(_) => {
            let response = reqwest::get(url.clone()).await?;
            ensure!(response.status() == 200, "{}", response.status());
            ensure!(response.bytes().await?.as_ref() == b"presigned bytes");
        }
        // The server's /blobs route checks these links (tested with the whole
        // app in tests/); here, that the link carries a valid signature.
        Harness::Local(_) => {
            ensure!(url.path() == "/blobs/p/photo.jpg");
            let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
            let expires: i64 = query["expires"].parse()?;
            let now = expires - 300;
            ensure!(
                signer()
                    .verify("p/photo.jpg", expires, &query["sig"], now)
                    .is_ok()
            );
            ensure!(
                signer().verify("p/photo.jpg", expires, &query["sig"], expires + 1)
                    == Err(PresignError::Expired)
            );
        }
    }
    Ok(())
}

/// S3 behind the server's links: clients get the server's signed `/blobs/`
/// links; with `redirect`, the server sends them on to presigned S3 URLs.
#[tokio::test]
async fn s3_behind_server_links() -> anyhow::Result<()> {
    let bucket = unique("links");
    let s3 = || S3Store::new(&pinhole_testkit::s3_settings(&bucket));
    s3().ensure_bucket().await?;
    let ttl = Duration::from_secs(300);
    for store in [
        ServerLinks::proxy(s3(), signer()),
        ServerLinks::redirect(s3(), signer()),
    ] {
        ensure!(store.kind() == "s3");
        put_bytes(&store, "p/photo.jpg", &b"linked bytes"[..]).await?;
        ensure!(
            store
                .get("p/photo.jpg", None)
                .await?
                .bytes()
                .await?
                .as_ref()
                == b"linked bytes"
        );
        let (url, again, made) =
            twice(|| async { Ok(store.presign_get("p/photo.jpg", ttl).await?) }).await?;
        ensure!(url == again, "{url} then {again}");
        ensure!(
            url.as_str()
                .starts_with("http://127.0.0.1:8080/blobs/p/photo.jpg?"),
            "{url}"
        );
        let expires: i64 = query(&url, "expires")?.parse()?;
        ensure!(expires - made >= 300, "{url}");
        ensure!(
            signer()
                .verify("p/photo.jpg", expires, &query(&url, "sig")?, made)
                .is_ok()
        );
    }

    let proxy = ServerLinks::proxy(s3(), signer());
    ensure!(proxy.redirect_get("p/photo.jpg", ttl).await?.is_none());
    let redirect = ServerLinks::redirect(s3(), signer());
    let (target, again, made) = twice(|| async {
        redirect
            .redirect_get("p/photo.jpg", ttl)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no redirect"))
    })
    .await?;
    ensure!(target == again, "{target:?} then {again:?}");
    ensure!(
        target.expires - made >= 300 && s3_expiry(&target.url)? == target.expires,
        "{target:?}"
    );
    ensure!(
        target
            .url
            .as_str()
            .starts_with(&pinhole_testkit::s3_endpoint()),
        "{target:?}"
    );
    let response = reqwest::get(target.url).await?;
    ensure!(response.status() == 200, "{}", response.status());
    ensure!(response.bytes().await?.as_ref() == b"linked bytes");
    Ok(())
}

/// A body that gives `good` bytes, then fails (a client that went away).
fn broken_body(good: usize) -> pinhole_blob::ByteStream {
    let chunks = (0..good / 65_536)
        .map(|_| Ok(bytes::Bytes::from(vec![7u8; 65_536])))
        .chain(std::iter::once(Err(std::io::Error::other(
            "client went away",
        ))));
    Box::pin(futures::stream::iter(chunks))
}

/// An upload that fails or is abandoned half-way leaves nothing behind:
/// no blob, no temporary file, no unfinished multipart upload.
async fn failed_uploads_leave_nothing(h: Harness) -> anyhow::Result<()> {
    let store = store_of(&h).await?;
    // Past one multipart part on S3.
    let failed = store
        .put("u/broken.bin", broken_body(9 * 1024 * 1024))
        .await;
    ensure!(failed.is_err());
    // Abandoned: the body never ends and the request is dropped.
    let pending = futures::stream::iter([Ok(bytes::Bytes::from(vec![1u8; 9 * 1024 * 1024]))])
        .chain(futures::stream::pending());
    let abandoned = tokio::time::timeout(
        Duration::from_millis(500),
        store.put("u/abandoned.bin", Box::pin(pending)),
    )
    .await;
    ensure!(abandoned.is_err(), "the upload was still running");
    ensure!(store.list("").await?.is_empty());
    match &h {
        Harness::Local(dir) => {
            let leftovers = std::fs::read_dir(dir.path().join("blobs/.tmp"))?.count();
            ensure!(leftovers == 0, "{leftovers} temporary files left");
        }
        Harness::S3(bucket) => {
            let store = S3Store::new(&pinhole_testkit::s3_settings(bucket));
            pinhole_testkit::wait_for(Duration::from_secs(10), "uploads to be aborted", || async {
                let uploads = store
                    .client()
                    .list_multipart_uploads()
                    .bucket(store.bucket())
                    .send()
                    .await
                    .ok()?;
                uploads.uploads().is_empty().then_some(())
            })
            .await?;
        }
    }
    Ok(())
}

/// A file is stored under a key with its bytes, small or past one S3
/// part; the caller's file stays as it was, and removing it (as a spool
/// does) leaves the blob intact. No temporary file is left.
async fn put_file_stores_a_copy(h: Harness) -> anyhow::Result<()> {
    let store = store_of(&h).await?;
    let dir = tempfile::tempdir()?;
    for (key, len) in [
        ("originals/f/small.bin", 1000usize),
        ("originals/f/big.bin", 9 << 20),
    ] {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let source = dir.path().join("body");
        std::fs::write(&source, &bytes)?;
        let meta = store.put_file(key, &source).await?;
        ensure!(meta.size == len as u64, "{key}: {meta:?}");
        ensure!(std::fs::read(&source)? == bytes, "the source was changed");
        std::fs::remove_file(&source)?;
        let stored = store.get(key, None).await?.bytes().await?;
        ensure!(
            stored.as_ref() == bytes.as_slice(),
            "{key}: other bytes stored"
        );
    }
    let missing = store
        .put_file("originals/f/none.bin", &dir.path().join("absent"))
        .await;
    ensure!(missing.is_err(), "a missing file was stored");
    ensure!(store.head("originals/f/none.bin").await?.is_none());
    if let Harness::Local(root) = &h {
        let leftovers = std::fs::read_dir(root.path().join("blobs/.tmp"))?.count();
        ensure!(leftovers == 0, "{leftovers} temporary files left");
    }
    Ok(())
}

async fn store_of(h: &Harness) -> anyhow::Result<Arc<dyn BlobStore>> {
    h.store().await
}

macro_rules! conformance {
    ($harness:expr, $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() -> anyhow::Result<()> {
                super::$name($harness).await
            }
        )*
    };
}

mod local {
    use super::Harness;
    conformance!(
        Harness::local()?,
        put_get_head_delete_list,
        ranged_get,
        bad_keys_are_refused,
        presigned_get,
        failed_uploads_leave_nothing,
        put_file_stores_a_copy,
    );
}

mod s3 {
    use super::Harness;
    conformance!(
        Harness::s3(),
        put_get_head_delete_list,
        ranged_get,
        bad_keys_are_refused,
        presigned_get,
        failed_uploads_leave_nothing,
        put_file_stores_a_copy,
    );
}
