//! The client behind `http_request`: the web, for agents, without kai's own machine and
//! network. Every address a
//! request connects to (after DNS, and after each redirect) is checked: private, loopback,
//! link-local and other non-public addresses are refused unless `agents.http_allow` names
//! them. Checking the resolved address rather than the name is what stops a name that resolves
//! to 127.0.0.1 (or changes its answer between a check and the connection) from reaching in.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde_json::Value;

/// The largest answer read from a hook.
const MAX_HOOK_ANSWER: usize = 64 * 1024;

/// The most redirects one request follows.
const MAX_REDIRECTS: usize = 5;
/// The longest a whole request may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// What `agents.http_allow` lets through although it is not public.
#[derive(Debug, Clone, Default)]
pub(super) struct Allowed {
    hosts: Vec<String>,
    networks: Vec<(IpAddr, u8)>,
}

impl Allowed {
    fn parse(list: &str) -> Result<Allowed, String> {
        let mut allowed = Allowed::default();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if let Some((ip, bits)) = entry.split_once('/') {
                let ip: IpAddr = ip
                    .parse()
                    .map_err(|_| format!("agents.http_allow: `{entry}` is not a network"))?;
                let max = if ip.is_ipv4() { 32 } else { 128 };
                let bits: u8 = bits.parse().ok().filter(|b| *b <= max).ok_or_else(|| {
                    format!("agents.http_allow: `{entry}` has a bad prefix length")
                })?;
                allowed.networks.push((ip, bits));
            } else if let Ok(ip) = entry.parse::<IpAddr>() {
                allowed
                    .networks
                    .push((ip, if ip.is_ipv4() { 32 } else { 128 }));
            } else {
                allowed.hosts.push(entry.to_ascii_lowercase());
            }
        }
        Ok(allowed)
    }

    fn host(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    fn address(&self, ip: IpAddr) -> bool {
        self.networks
            .iter()
            .any(|(network, bits)| in_network(ip, *network, *bits))
    }
}

fn in_network(ip: IpAddr, network: IpAddr, bits: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(network)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(network)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

/// Whether `ip` is an address on the public internet.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                // Shared address space (carrier-grade NAT), and 0.0.0.0/8.
                || (a == 100 && (64..128).contains(&b))
                || a == 0
                // Reserved for future use and benchmarking.
                || a >= 240
                || (a == 198 && (b == 18 || b == 19)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // Unique local (fc00::/7) and link-local (fe80::/10).
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

fn refused(host: &str, ip: IpAddr) -> String {
    format!(
        "`{host}` is at {ip}, a private or local address that agents may not reach; an admin \
         can allow it in agents.http_allow"
    )
}

/// Resolves names, keeping only the addresses agents may reach.
struct GuardedResolver {
    allowed: Arc<Allowed>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allowed = self.allowed.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|err| format!("cannot resolve `{host}`: {err}"))?
                .collect();
            let host_allowed = allowed.host(&host);
            let usable: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|addr| host_allowed || is_public(addr.ip()) || allowed.address(addr.ip()))
                .collect();
            match (usable.is_empty(), found.first()) {
                (true, Some(addr)) => Err(refused(&host, addr.ip()).into()),
                (true, None) => Err(format!("`{host}` has no address").into()),
                (false, _) => Ok(Box::new(usable.into_iter()) as Addrs),
            }
        })
    }
}

/// The client agents' HTTP requests go through.
#[derive(Clone)]
pub struct Web {
    pub(super) client: reqwest::Client,
    pub(super) allowed: Arc<Allowed>,
}

impl std::fmt::Debug for Web {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Web").finish_non_exhaustive()
    }
}

/// Checks a URL before it is requested or followed: http or https, and a host that, when it is
/// an address, agents may reach (names are checked when they resolve).
pub(super) fn check_url(url: &reqwest::Url, allowed: &Allowed) -> Result<(), String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{url}` is not an http:// or https:// URL"));
    }
    let host = url
        .host_str()
        .ok_or_else(|| format!("`{url}` has no host"))?;
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>()
        && !is_public(ip)
        && !allowed.address(ip)
        && !allowed.host(literal)
    {
        return Err(refused(host, ip));
    }
    Ok(())
}

impl Web {
    /// A client that may reach what `http_allow` (`agents.http_allow`) names besides the
    /// public internet.
    pub fn new(http_allow: &str) -> Result<Web, String> {
        kai_providers::install_tls_provider();
        let allowed = Arc::new(Allowed::parse(http_allow)?);
        let for_redirects = allowed.clone();
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("kai-agent/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver {
                allowed: allowed.clone(),
            }))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= MAX_REDIRECTS {
                    return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
                }
                match check_url(attempt.url(), &for_redirects) {
                    Ok(()) => attempt.follow(),
                    Err(reason) => attempt.error(format!("a redirect went astray: {reason}")),
                }
            }))
            .build()
            .map_err(|err| format!("cannot make the HTTP client: {err}"))?;
        Ok(Web { client, allowed })
    }

    /// POSTs `body` as JSON to `url` and reads a JSON answer (an empty one reads as `{}`);
    /// the error says what went wrong, for a hook's record.
    pub(crate) async fn post_json(
        &self,
        url: &str,
        body: &Value,
        timeout: Duration,
    ) -> Result<Value, String> {
        let parsed =
            reqwest::Url::parse(url).map_err(|err| format!("`{url}` is not a URL: {err}"))?;
        check_url(&parsed, &self.allowed)?;
        let response = self
            .client
            .post(parsed)
            .json(body)
            .timeout(timeout)
            .send()
            .await
            .map_err(|err| {
                if err.is_timeout() {
                    format!("no answer within {}", humantime::format_duration(timeout))
                } else {
                    format!("cannot reach it: {err}")
                }
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("it answered {status}"));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|err| format!("its answer broke off: {err}"))?;
        if bytes.len() > MAX_HOOK_ANSWER {
            return Err(format!("its answer is over {MAX_HOOK_ANSWER} bytes"));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Object(serde_json::Map::new()));
        }
        serde_json::from_slice(&bytes).map_err(|err| format!("its answer is not JSON: {err}"))
    }

    /// The host a call's URL names, for consent asked per host; `None` when it does not parse.
    #[must_use]
    pub fn host_of(arguments: &Value) -> Option<String> {
        let url = reqwest::Url::parse(arguments["url"].as_str()?).ok()?;
        url.host_str().map(str::to_ascii_lowercase)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass_unless_allowed() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["1.1.1.1", "93.184.216.34", "2606:4700:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        let allowed = Allowed::parse("nas.local, 192.168.1.0/24, ::1").unwrap();
        assert!(allowed.address("192.168.1.77".parse().unwrap()));
        assert!(!allowed.address("192.168.2.1".parse().unwrap()));
        assert!(allowed.address("::1".parse().unwrap()));
        assert!(allowed.host("NAS.local"));
        for bad in ["10.0.0.0/33", "x/8"] {
            assert!(Allowed::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_are_checked_before_they_are_requested() {
        let none = Allowed::default();
        let check = |url: &str| check_url(&reqwest::Url::parse(url).unwrap(), &none);
        assert!(check("https://example.com/x").is_ok());
        for url in [
            "http://127.0.0.1:8420/api",
            "http://[::1]/",
            "http://169.254.169.254/",
        ] {
            let err = check(url).unwrap_err();
            assert!(err.contains("agents.http_allow"), "{url}: {err}");
        }
        assert!(
            check("file:///etc/passwd")
                .unwrap_err()
                .contains("not an http")
        );
    }
}
