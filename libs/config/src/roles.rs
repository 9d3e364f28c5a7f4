//! Where the roles other roles call are served, when not in this process.

use std::fmt;

use crate::mask_url;

/// The roles other roles call (those with an `/internal/v1` API).
pub const CALLED_ROLES: &[&str] = &["users", "images", "search"];

/// `PINHOLE_ROLE_URLS`: the base URL of each called role served by another
/// process (one load-balancer address may serve several).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleUrls {
    pub users: Option<url::Url>,
    pub images: Option<url::Url>,
    pub search: Option<url::Url>,
}

impl RoleUrls {
    /// Parses `role=URL[,role=URL…]`; empty: none.
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let mut urls = Self::default();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let Some((role, address)) = item.split_once('=') else {
                return Err(format!("`{}` is not ROLE=URL", mask_url(item)));
            };
            let (role, address) = (role.trim(), address.trim());
            let slot = match role {
                "users" => &mut urls.users,
                "images" => &mut urls.images,
                "search" => &mut urls.search,
                other => {
                    return Err(format!(
                        "`{other}` is not a role other roles call (those are: {})",
                        CALLED_ROLES.join(", ")
                    ));
                }
            };
            if slot.is_some() {
                return Err(format!("`{role}` is given twice"));
            }
            let url = url::Url::parse(address)
                .map_err(|e| format!("`{}` for `{role}`: {e}", mask_url(address)))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(format!(
                    "`{}` for `{role}`: scheme `{}` is not served",
                    mask_url(address),
                    url.scheme()
                ));
            }
            if url.host_str().is_none_or(str::is_empty)
                || url.query().is_some()
                || url.fragment().is_some()
            {
                return Err(format!(
                    "`{}` for `{role}` is not a base URL (a host, no query)",
                    mask_url(address)
                ));
            }
            *slot = Some(url);
        }
        Ok(urls)
    }

    /// The base URL of `role`, when another process serves it.
    pub fn get(&self, role: &str) -> Option<&url::Url> {
        match role {
            "users" => self.users.as_ref(),
            "images" => self.images.as_ref(),
            "search" => self.search.as_ref(),
            _ => None,
        }
    }
}

impl fmt::Display for RoleUrls {
    /// `users=URL,images=URL` with credentials masked.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = CALLED_ROLES
            .iter()
            .filter_map(|role| {
                self.get(role)
                    .map(|url| format!("{role}={}", mask_url(url.as_str())))
            })
            .collect();
        f.write_str(&items.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_urls_parse_strictly() {
        let urls = RoleUrls::parse(" users=http://lb:8080 , images=https://lb:8443/pinhole ")
            .expect("two roles");
        assert_eq!(
            urls.get("users").map(url::Url::as_str),
            Some("http://lb:8080/")
        );
        assert_eq!(
            urls.get("images").map(url::Url::as_str),
            Some("https://lb:8443/pinhole")
        );
        assert_eq!(RoleUrls::parse("").expect("none"), RoleUrls::default());
        for (bad, says) in [
            ("photos=http://x", "photos"),
            ("thumbnails=http://x", "users, images, search"),
            ("users", "ROLE=URL"),
            ("users=lb:8080", "scheme"),
            ("users=ftp://x", "scheme"),
            ("users=not a url", "users"),
            ("users=http://a,users=http://b", "twice"),
            ("users=http://a?x=1", "base URL"),
        ] {
            let err = RoleUrls::parse(bad).expect_err(bad);
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
