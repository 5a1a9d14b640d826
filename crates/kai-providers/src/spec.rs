//! What an adapter is built from: a provider's settings with its credential resolved, and the
//! proxies the environment names.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use kai_config::{Environment, ProviderKind, ProviderSettings, Secret, VaultSecrets};
use url::Url;

/// Everything an adapter needs, credential resolved.
#[derive(Clone)]
pub struct ProviderSpec {
    /// The provider's name in kai.
    pub name: String,
    /// Its wire format.
    pub kind: ProviderKind,
    /// Where it is.
    pub base_url: Url,
    /// Its API key, if it takes one.
    pub api_key: Option<Secret>,
    /// How long to wait for a connection.
    pub connect_timeout: Duration,
    /// How long an answer (streaming: its head) may take.
    pub timeout: Duration,
    /// How long a stream may stay silent.
    pub stream_idle_timeout: Duration,
    /// Extra headers on every request.
    pub headers: BTreeMap<String, String>,
    /// The proxies the environment names; the one for `base_url`, if any, carries every
    /// request.
    pub proxies: Proxies,
}

/// Proxies named by the environment, read as curl reads them: `HTTPS_PROXY` for `https:`
/// addresses, `HTTP_PROXY` for `http:` ones (ignored in a CGI script's environment, where a
/// client controls it), `ALL_PROXY` for both, each also in lower case, and `NO_PROXY` for the
/// hosts and networks that go direct. [`Proxies::default`] is none.
#[derive(Clone, Default)]
pub struct Proxies(Option<Arc<hyper_util::client::proxy::matcher::Matcher>>);

impl Proxies {
    /// The proxies `env` names, if any.
    #[must_use]
    pub fn from_env(env: &Environment) -> Proxies {
        let var = |names: [&str; 2]| names.iter().find_map(|name| env.get(name)).unwrap_or("");
        let http = if env.get("REQUEST_METHOD").is_some() {
            env.get("http_proxy").unwrap_or("")
        } else {
            var(["http_proxy", "HTTP_PROXY"])
        };
        let (all, https) = (
            var(["all_proxy", "ALL_PROXY"]),
            var(["https_proxy", "HTTPS_PROXY"]),
        );
        if [all, http, https].iter().all(|value| value.is_empty()) {
            return Proxies(None);
        }
        let matcher = hyper_util::client::proxy::matcher::Matcher::builder()
            .all(all.to_owned())
            .http(http.to_owned())
            .https(https.to_owned())
            .no(var(["no_proxy", "NO_PROXY"]).to_owned())
            .build();
        Proxies(Some(Arc::new(matcher)))
    }

    /// The proxy for requests to `url`, if one applies.
    pub(crate) fn intercept(
        &self,
        url: &http::Uri,
    ) -> Option<hyper_util::client::proxy::matcher::Intercept> {
        self.0.as_ref()?.intercept(url)
    }
}

impl fmt::Debug for Proxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The addresses may hold credentials.
        f.write_str(if self.0.is_some() {
            "Proxies(..)"
        } else {
            "Proxies(none)"
        })
    }
}

impl fmt::Debug for ProviderSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderSpec")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("base_url", &self.base_url.as_str())
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl ProviderSpec {
    /// The spec for configured settings, reading the credential its reference names from `env`,
    /// a file or the node's `vault` secrets. The error names the provider and the reference,
    /// never a value.
    pub fn from_settings(
        settings: &ProviderSettings,
        env: &Environment,
        vault: &VaultSecrets,
    ) -> Result<ProviderSpec, String> {
        let base_url = settings.effective_base_url().ok_or_else(|| {
            format!(
                "provider `{}`: base_url is required for kind `{}`",
                settings.name, settings.kind
            )
        })?;
        let api_key = match &settings.api_key {
            Some(reference) => Some(reference.resolve(env, vault).map_err(|why| {
                format!(
                    "provider `{}`: cannot read its api_key ({reference}): {why}",
                    settings.name
                )
            })?),
            None if settings.kind.needs_api_key() => {
                return Err(format!(
                    "provider `{}`: kind `{}` needs an api_key, such as env:{}_API_KEY",
                    settings.name,
                    settings.kind,
                    settings
                        .kind
                        .as_str()
                        .to_ascii_uppercase()
                        .replace('-', "_")
                ));
            }
            None => None,
        };
        Ok(ProviderSpec {
            name: settings.name.clone(),
            kind: settings.kind,
            base_url,
            api_key,
            connect_timeout: settings.connect_timeout,
            timeout: settings.timeout,
            stream_idle_timeout: settings.stream_idle_timeout,
            headers: settings.headers.clone(),
            proxies: Proxies::from_env(env),
        })
    }
}
