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
/// `****`. When `url` does not parse, everything between `://` and the last
/// `@` (where credentials would be) and any query is hidden.
pub fn mask_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return mask_unparsed(url);
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

fn mask_unparsed(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let rest = match rest.rsplit_once('@') {
        Some((_, host)) => format!("****@{host}"),
        None => rest.to_owned(),
    };
    let rest = match rest.split_once('?') {
        Some((path, _)) => format!("{path}?****"),
        None => rest,
    };
    format!("{scheme}://{rest}")
}

#[cfg(test)]
mod tests {
    use super::mask_url;

    #[test]
    fn unparsable_urls_hide_where_credentials_would_be() {
        assert_eq!(
            mask_url("postgres://app:hun#ter2@db:54x2/p"),
            "postgres://****@db:54x2/p"
        );
        assert_eq!(
            mask_url("kafka://u:pw@h:9092,h2:9092"),
            "kafka://****@h:9092,h2:9092"
        );
    }

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
