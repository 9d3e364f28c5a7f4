//! Which callback URLs tasks may be given: public http(s) targets only,
//! unless `callback_allow_private` is set (checked when a task is made, and
//! again on the address connected to when it is delivered).

use std::net::IpAddr;

/// Whether an address is one callbacks must not reach by default.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared (CGNAT)
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
                || a >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4() {
                // Mapped (::ffff:a.b.c.d) and compatible (::a.b.c.d) forms.
                return is_internal(IpAddr::V4(v4)) || v6.is_loopback() || v6.is_unspecified();
            }
            let first = v6.segments()[0];
            // Only global unicast (2000::/3) is public.
            (first & 0xe000) != 0x2000
                || v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first & 0xffc0) == 0xfec0 // site-local
                || first == 0x2001 && v6.segments()[1] == 0x0db8 // documentation
                || first == 0x0064 // NAT64 (64:ff9b::/96, 64:ff9b:1::/48)
        }
    }
}

/// Checks a callback URL as given: http(s), a host, no credentials, and not
/// an internal address literal or `localhost` (unless allowed).
pub fn check_url(raw: &str, allow_private: bool) -> Result<url::Url, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".into());
    }
    let internal = match url.host() {
        None => return Err("must name a host".into()),
        Some(url::Host::Ipv4(ip)) => is_internal(ip.into()),
        Some(url::Host::Ipv6(ip)) => is_internal(ip.into()),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost"
                || d.ends_with(".localhost")
                || d.ends_with(".internal")
                || d.ends_with(".local")
        }
    };
    if internal && !allow_private {
        return Err(
            "must point at a public address (private, loopback and link-local ones are refused)"
                .into(),
        );
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_targets_are_refused_unless_allowed() {
        for bad in [
            "http://127.0.0.1/x",
            "http://10.1.2.3/",
            "http://192.168.0.10:8080/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://localhost:3000/",
            "http://0.0.0.0/",
            "http://100.64.0.1/",
            "http://[::7f00:1]/",
            "http://[64:ff9b:1::a00:1]/",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
            assert!(check_url(bad, true).is_ok(), "{bad}");
        }
        assert!(check_url("https://hooks.example.com/pinhole", false).is_ok());
        assert!(check_url("http://93.184.216.34/", false).is_ok());
        assert!(check_url("ftp://example.com/", true).is_err());
        assert!(check_url("https://user:pw@example.com/", true).is_err());
        assert!(check_url("not a url", true).is_err());
    }
}
