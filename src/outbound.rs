//! The guard on outbound requests (webhook deliveries): they never reach an
//! address that is not globally reachable (loopback, private, link-local,
//! cloud metadata, and every other special-purpose range of the IANA IPv4 and
//! IPv6 registries, IPv4 embedded in IPv6 included) unless the operator
//! allowlists it (`GENSAIL_WEBHOOK_ALLOWLIST`: comma-separated host names, IP
//! addresses or CIDRs).
//!
//! URLs are checked when configured, for a clear error. What protects a send
//! is [`OutboundGuard::resolver`]: the webhook client resolves names only
//! through it, and it hands the connector only addresses that pass, so the
//! address connected to is the address checked (a DNS server that answers
//! differently the second time cannot rebind it). The client uses no proxy,
//! which would resolve names itself.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, LazyLock};

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
            if let Some(kind) = self.refusal(ip) {
                return Err(format!(
                    "url host {host} resolves to {ip}, {kind}; webhooks may reach only globally reachable addresses unless the operator allowlists them (GENSAIL_WEBHOOK_ALLOWLIST)"
                ));
            }
        }
        Ok(url)
    }

    /// Why `ip` may not be reached, if it may not: off limits and not allowlisted.
    fn refusal(&self, ip: IpAddr) -> Option<&'static str> {
        forbidden(ip).filter(|_| !self.nets.iter().any(|n| n.contains(&ip)))
    }

    /// The resolver the webhook client connects through: a name allowlisted
    /// by the operator resolves as usual; any other resolves to the addresses
    /// that pass the rules, and fails when none does.
    pub fn resolver(&self) -> Arc<GuardedResolver> {
        Arc::new(GuardedResolver { guard: self.clone() })
    }
}

/// A DNS resolver that hands the connector only allowed addresses (see the
/// module docs).
#[derive(Debug)]
pub struct GuardedResolver {
    guard: OutboundGuard,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.guard.clone();
        let host = name.as_str().to_ascii_lowercase();
        Box::pin(async move {
            // The port is the connector's to set; 0 is replaced by it.
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if guard.hosts.contains(&host) {
                return Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs);
            }
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| guard.refusal(a.ip()).is_none())
                .collect();
            if allowed.is_empty() {
                let refused: Vec<String> = found.iter().map(|a| a.ip().to_string()).collect();
                return Err(format!(
                    "{host} resolves only to addresses webhooks may not reach ({})",
                    refused.join(", ")
                )
                .into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The special-purpose ranges of the IANA IPv4 and IPv6 address registries
/// that are not globally reachable, with what they are. Where a range holds a
/// few global addresses (192.0.0.0/24, 2001::/23), the whole range is refused:
/// no webhook receiver lives there.
static OFF_LIMITS: LazyLock<Vec<(IpNet, &'static str)>> = LazyLock::new(|| {
    [
        ("0.0.0.0/8", "a \"this network\" address"),
        ("10.0.0.0/8", "a private address"),
        ("100.64.0.0/10", "a carrier-grade NAT address"),
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local (cloud metadata) address"),
        ("172.16.0.0/12", "a private address"),
        ("192.0.0.0/24", "an IETF protocol assignment"),
        ("192.0.2.0/24", "a documentation address"),
        ("192.88.99.0/24", "a deprecated 6to4 relay address"),
        ("192.168.0.0/16", "a private address"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", "a reserved address"),
        ("::/128", "the unspecified address"),
        ("::1/128", "a loopback address"),
        ("::/96", "an IPv4-compatible (deprecated) address"),
        ("64:ff9b:1::/48", "a local-use NAT64 address"),
        ("100::/64", "a discard-only address"),
        ("2001::/23", "an IETF protocol assignment (Teredo included)"),
        ("2001:db8::/32", "a documentation address"),
        ("2002::/16", "a 6to4 (deprecated) address"),
        ("3fff::/20", "a documentation address"),
        ("5f00::/16", "a segment routing (SRv6) address"),
        ("fc00::/7", "a private (unique local) address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local (deprecated) address"),
        ("ff00::/8", "a multicast address"),
    ]
    .into_iter()
    .filter_map(|(net, what)| Some((net.parse().ok()?, what)))
    .collect()
});

/// Why an address is off limits, if it is. IPv4 carried inside IPv6 (mapped
/// `::ffff:0:0/96`, or NAT64 `64:ff9b::/96`, which an IPv6-only host uses to
/// reach IPv4) is judged as the IPv4 address it reaches.
fn forbidden(ip: IpAddr) -> Option<&'static str> {
    if let IpAddr::V6(v6) = ip
        && let Some(v4) = embedded_ipv4(v6)
    {
        return forbidden(IpAddr::V4(v4));
    }
    if ip == IpAddr::V4(Ipv4Addr::BROADCAST) {
        return Some("the broadcast address");
    }
    OFF_LIMITS
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, what)| *what)
}

/// The IPv4 address an IPv4-mapped or NAT64 (well-known prefix) address reaches.
fn embedded_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]).then(|| {
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every spelling tried by an attacker: each is refused with the guard's
    /// message (the host's own resolver parses the odd IPv4 spellings).
    #[tokio::test]
    async fn refuses_every_address_that_is_not_globally_reachable() {
        let guard = OutboundGuard::default();
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://10.1.2.3/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/hook",
            "http://[fd00:ec2::254]/",
            "http://[::ffff:192.168.1.1]/",
            "http://[::ffff:7f00:1]/",
            "http://100.64.0.1/",
            "http://localhost:9/hook",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[64:ff9b::7f00:1]/",
            "http://[64:ff9b:1::1]/",
            "http://[::a9fe:a9fe]/",
            "http://[::127.0.0.1]/",
            "http://[2002:7f00:1::]/",
            "http://[2002:5db8:d822::]/",
            "http://[2001:0:4136:e378::1]/",
            "http://[2001:db8::1]/",
            "http://[fec0::1]/",
            "http://[fe80::1]/",
            "http://[ff02::1]/",
            "http://[::]/",
            "http://198.18.0.1/",
            "http://198.19.255.255/",
            "http://192.0.0.170/",
            "http://192.0.2.1/",
            "http://240.0.0.1/",
            "http://255.255.255.255/",
            "http://224.0.0.1/",
            "http://0.0.0.0/",
        ] {
            let err = guard.check(url).await.unwrap_err();
            assert!(err.contains("GENSAIL_WEBHOOK_ALLOWLIST"), "{url}: {err}");
        }
        for global in [
            "https://93.184.216.34/hook",
            "https://[2606:2800:220:1:248:1893:25c8:1946]/",
            "https://[64:ff9b::5db8:d822]/",
            "https://198.20.0.1/",
        ] {
            assert!(guard.check(global).await.is_ok(), "{global}");
        }
        let allow = OutboundGuard::parse("127.0.0.1/32, hooks.internal").unwrap();
        assert!(allow.check("http://127.0.0.1:9/hook").await.is_ok());
        assert!(allow.check("http://hooks.internal/x").await.is_ok());
        assert!(allow.check("http://127.0.0.2/hook").await.is_err());
    }

    /// The resolver the client connects through drops refused addresses, so
    /// a name that resolves to an internal address cannot be connected to
    /// whatever an earlier lookup said.
    #[tokio::test]
    async fn the_client_resolver_hands_out_only_allowed_addresses() {
        use reqwest::dns::Resolve;
        let guard = OutboundGuard::default();
        let err = guard
            .resolver()
            .resolve("localhost".parse().unwrap())
            .await
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .contains("resolves only to addresses webhooks may not reach"),
            "{err}"
        );
        let allow = OutboundGuard::parse("127.0.0.0/8").unwrap();
        let addrs: Vec<SocketAddr> = allow
            .resolver()
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(
            addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty(),
            "{addrs:?}"
        );
        let by_name = OutboundGuard::parse("localhost").unwrap();
        assert!(by_name.resolver().resolve("localhost".parse().unwrap()).await.is_ok());
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
