//! The guard on outbound requests (webhook deliveries): they never reach
//! private, loopback, link-local or metadata addresses unless the operator
//! allowlists them (`GENSAIL_WEBHOOK_ALLOWLIST`: comma-separated host names,
//! IP addresses or CIDRs). URLs are checked when configured and again before
//! every send, since a name can resolve elsewhere later (DNS rebinding).

use std::net::IpAddr;

use ipnet::IpNet;
use url::Url;

/// Checks outbound URLs against the address rules and the allowlist.
#[derive(Debug, Clone, Default)]
pub struct OutboundGuard {
    hosts: Vec<String>,
    nets: Vec<IpNet>,
}

impl OutboundGuard {
    /// Parses an allowlist: `hooks.internal, 10.0.0.0/8, 127.0.0.1`.
    pub fn parse(list: &str) -> anyhow::Result<Self> {
        let mut guard = Self::default();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if let Ok(net) = item.parse::<IpNet>() {
                guard.nets.push(net);
            } else if let Ok(ip) = item.parse::<IpAddr>() {
                guard.nets.push(IpNet::from(ip));
            } else if item.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-') {
                guard.hosts.push(item.to_ascii_lowercase());
            } else {
                anyhow::bail!(
                    "GENSAIL_WEBHOOK_ALLOWLIST entry {item:?} is neither a host name, an IP address nor a CIDR"
                );
            }
        }
        Ok(guard)
    }

    /// Validates a webhook URL: http(s), no credentials in it, and every
    /// address its host resolves to allowed. The error says what to change.
    pub async fn check(&self, raw: &str) -> Result<Url, String> {
        let url = Url::parse(raw).map_err(|e| format!("url is not a valid URL ({e}): give an absolute http(s) URL"))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(format!("url must use https (or http), not {}", url.scheme()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("url must not carry credentials: configure them with PUT .../webhook-credential".into());
        }
        let host = url
            .host_str()
            .ok_or("url has no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if self.hosts.contains(&host) {
            return Ok(url);
        }
        let port = url.port_or_known_default().unwrap_or(443);
        let addresses: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| format!("url host {host} does not resolve: {e}"))?
                .map(|a| a.ip())
                .collect(),
        };
        if addresses.is_empty() {
            return Err(format!("url host {host} does not resolve"));
        }
        for ip in addresses {
            if let Some(kind) = forbidden(ip)
                && !self.nets.iter().any(|n| n.contains(&ip))
            {
                return Err(format!(
                    "url host {host} resolves to {ip}, a {kind} address; webhooks may not reach private, loopback, link-local or metadata addresses unless the operator allowlists them (GENSAIL_WEBHOOK_ALLOWLIST)"
                ));
            }
        }
        Ok(url)
    }
}

/// Why an address is off limits, if it is.
fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_private() {
                Some("private")
            } else if v4.is_link_local() {
                Some("link-local (cloud metadata)")
            } else if a == 100 && (64..128).contains(&b) {
                Some("carrier-grade NAT")
            } else if v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast() || a == 0 {
                Some("non-routable")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("loopback")
            } else if first & 0xfe00 == 0xfc00 {
                Some("private (unique local)")
            } else if first & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if v6.is_unspecified() || v6.is_multicast() {
                Some("non-routable")
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_internal_addresses_unless_allowlisted() {
        let guard = OutboundGuard::default();
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://10.1.2.3/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/hook",
            "http://[fd00:ec2::254]/",
            "http://[::ffff:192.168.1.1]/",
            "http://100.64.0.1/",
            "http://localhost:9/hook",
        ] {
            let err = guard.check(url).await.unwrap_err();
            assert!(err.contains("GENSAIL_WEBHOOK_ALLOWLIST"), "{url}: {err}");
        }
        assert!(guard.check("https://93.184.216.34/hook").await.is_ok());
        let allow = OutboundGuard::parse("127.0.0.1/32, hooks.internal").unwrap();
        assert!(allow.check("http://127.0.0.1:9/hook").await.is_ok());
        assert!(allow.check("http://hooks.internal/x").await.is_ok());
        assert!(allow.check("http://127.0.0.2/hook").await.is_err());
    }

    #[tokio::test]
    async fn url_shape() {
        let guard = OutboundGuard::parse("127.0.0.1").unwrap();
        assert!(guard.check("ftp://127.0.0.1/x").await.unwrap_err().contains("https"));
        assert!(
            guard
                .check("http://u:p@127.0.0.1/x")
                .await
                .unwrap_err()
                .contains("credentials")
        );
        assert!(guard.check("not a url").await.unwrap_err().contains("absolute"));
        assert!(OutboundGuard::parse("a b").is_err());
    }
}
