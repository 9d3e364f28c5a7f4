//! Hiding credentials in URLs before they are logged or printed.

const SECRET_PARAMS: &[&str] = &[
    "password",
    "secret",
    "secret_access_key",
    "token",
    "key",
    "sig",
];

/// `url` with any password and secret-looking query values replaced by
/// `****`. Strings that are not URLs are returned unchanged.
pub fn mask_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_owned();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("****"));
    }
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let secret = SECRET_PARAMS.iter().any(|s| k.eq_ignore_ascii_case(s));
                let v = if secret {
                    "****".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

#[cfg(test)]
mod tests {
    use super::mask_url;

    #[test]
    fn passwords_and_secret_params_are_masked() {
        assert_eq!(
            mask_url("postgres://app:hunter2@db:5432/pinhole"),
            "postgres://app:****@db:5432/pinhole"
        );
        assert_eq!(
            mask_url("s3://bucket?endpoint=http://x&secret_access_key=abc"),
            "s3://bucket?endpoint=http%3A%2F%2Fx&secret_access_key=****"
        );
        assert_eq!(mask_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(mask_url("embedded"), "embedded");
    }
}
