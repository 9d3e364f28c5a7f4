//! Account values, parsed at the edge: the rest of the role never sees an
//! unchecked string.

use std::collections::BTreeMap;

/// Field name → what is wrong with it.
pub type Problems = BTreeMap<String, String>;

/// 3-30 characters of `[a-z0-9_]`, compared and stored in lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(s: &str) -> Result<Self, String> {
        let lower = s.to_ascii_lowercase();
        if !(3..=30).contains(&lower.len()) {
            return Err("must be 3 to 30 characters".into());
        }
        if !lower
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err("may hold only letters a-z, digits and _".into());
        }
        Ok(Self(lower))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address, trimmed and in lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Self, String> {
        let normalized = s.trim().to_lowercase();
        let bad = || "is not an email address".to_owned();
        if normalized.len() > 254 || normalized.chars().any(char::is_whitespace) {
            return Err(bad());
        }
        let (local, domain) = normalized.split_once('@').ok_or_else(bad)?;
        let labels_ok = domain.split('.').count() >= 2
            && domain
                .split('.')
                .all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'));
        if local.is_empty() || local.len() > 64 || domain.contains('@') || !labels_ok {
            return Err(bad());
        }
        Ok(Self(normalized))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 8 to 256 characters. Never logged, never returned.
pub struct Password(String);

impl Password {
    pub fn parse(s: String) -> Result<Self, String> {
        let chars = s.chars().count();
        if chars < 8 {
            return Err("must be at least 8 characters".into());
        }
        if chars > 256 {
            return Err("must be at most 256 characters".into());
        }
        Ok(Self(s))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(****)")
    }
}

/// Free text of at most `max` characters, without control characters but
/// line breaks; blank means none.
pub fn text(s: &str, max: usize) -> Result<Option<String>, String> {
    let trimmed = s.trim();
    if trimmed.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if trimmed.chars().any(|c| c.is_control() && c != '\n') {
        return Err("may not hold control characters".into());
    }
    Ok((!trimmed.is_empty()).then(|| trimmed.to_owned()))
}

/// An http(s) URL of at most 200 characters; blank means none.
pub fn website(s: &str) -> Result<Option<String>, String> {
    let trimmed = s.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    let url = url::Url::parse(trimmed).map_err(|_| "is not a URL".to_owned())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http or https URL".into());
    }
    if url.as_str().len() > 200 {
        return Err("must be at most 200 characters".into());
    }
    Ok(Some(url.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lower_case_and_limited() {
        assert_eq!(Username::parse("Ada_99").map(|u| u.0), Ok("ada_99".into()));
        for bad in [
            "ab",
            "a".repeat(31).as_str(),
            "with space",
            "dash-ed",
            "émile",
        ] {
            assert!(Username::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails_are_normalized() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").map(|e| e.0),
            Ok("ada@example.com".into())
        );
        for bad in [
            "ada",
            "ada@",
            "@x.com",
            "ada@x",
            "a b@x.com",
            "a@b@x.com",
            "a@-x.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_are_long_enough_and_never_shown() {
        assert!(Password::parse("short".into()).is_err());
        let p = Password::parse("long enough".into()).expect("valid");
        assert_eq!(format!("{p:?}"), "Password(****)");
    }

    #[test]
    fn websites_are_http_urls() {
        assert_eq!(
            website(" https://ada.dev "),
            Ok(Some("https://ada.dev/".into()))
        );
        assert_eq!(website(""), Ok(None));
        assert!(website("javascript:alert(1)").is_err());
        assert!(website("ftp://x.org").is_err());
    }
}
