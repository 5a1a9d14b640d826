//! Which server the client commands talk to, and with which API key.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use anyhow::{Context, bail};
use kai_config::{Environment, Settings};
use url::Url;

use crate::client::{self, Client, Credential};
use crate::credentials::{self, Credentials};
use crate::output;

/// The server: `--url` or `client.url`, else the one `kai login` stored, else the local server
/// that `bind` describes.
pub(crate) fn server_url(settings: &Settings, stored: Option<&Credentials>) -> anyhow::Result<Url> {
    match (&settings.client.url, stored) {
        (Some(url), _) => Ok(url.clone()),
        (None, Some(stored)) => Ok(stored.url.clone()),
        (None, None) => local_url(settings.bind),
    }
}

/// The address a client on this machine reaches a server listening on `bind` at. An
/// unspecified address (`0.0.0.0`, `[::]`) means every interface to a server, but no client
/// can connect to it: loopback stands in.
pub(crate) fn local_url(bind: SocketAddr) -> anyhow::Result<Url> {
    let ip = match bind.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let address = SocketAddr::new(ip, bind.port());
    Url::parse(&format!("http://{address}"))
        .with_context(|| format!("cannot make a server URL of bind = {bind}"))
}

/// A client of the server with the key to use: `client.api_key`, else the one `kai login`
/// stored.
pub(crate) fn authenticated(settings: &Settings, env: &Environment) -> anyhow::Result<Client> {
    let stored = match credentials::path(env) {
        Some(path) => credentials::load(&path)?,
        None => None,
    };
    let url = server_url(settings, stored.as_ref())?;
    let credential = match (&settings.client.api_key, &stored) {
        (Some(key), _) => Credential::new(
            key.expose(),
            "check client.api_key (KAI_CLIENT_API_KEY), or unset it and run `kai login`",
        ),
        (None, Some(stored)) => {
            if stored.url != url {
                output::warning(&format!(
                    "sending the API key `kai login` got from {} to {}",
                    client::shown(&stored.url),
                    client::shown(&url)
                ));
            }
            Credential::new(stored.api_key.clone(), "run `kai login` again")
        }
        (None, None) => {
            bail!("not logged in: run `kai login` first (or set KAI_CLIENT_API_KEY to an API key)")
        }
    };
    Ok(Client::new(url)?.with(credential))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::PathBuf;

    use uuid::Uuid;

    use super::*;

    fn local(bind: &str) -> String {
        local_url(bind.parse().unwrap()).unwrap().to_string()
    }

    #[test]
    fn the_local_server_is_bind_with_loopback_for_any_address() {
        assert_eq!(local("127.0.0.1:8420"), "http://127.0.0.1:8420/");
        assert_eq!(local("0.0.0.0:9000"), "http://127.0.0.1:9000/");
        assert_eq!(local("[::]:9000"), "http://[::1]:9000/");
        assert_eq!(local("10.1.2.3:80"), "http://10.1.2.3/");
    }

    #[test]
    fn the_url_comes_from_flag_or_configuration_then_login_then_bind() {
        let mut settings = Settings::defaults(PathBuf::from("/d"));
        let stored = Credentials {
            url: "https://stored.example".parse().unwrap(),
            api_key: "kai_x".into(),
            key_id: Uuid::nil(),
        };
        assert_eq!(
            server_url(&settings, None).unwrap().as_str(),
            "http://127.0.0.1:8420/"
        );
        assert_eq!(
            server_url(&settings, Some(&stored)).unwrap().as_str(),
            "https://stored.example/"
        );
        settings.client.url = Some("https://configured.example".parse().unwrap());
        assert_eq!(
            server_url(&settings, Some(&stored)).unwrap().as_str(),
            "https://configured.example/"
        );
    }
}
