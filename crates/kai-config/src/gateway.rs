//! The model gateway's configuration: providers (where models are served), models (the names
//! clients use, each routed over deployments), and prices. These are lists of tables in the
//! file (`[[providers]]`, `[[models]]`, `[[prices]]`), not single keys, so they come from the
//! file or, for admins, from the API; the router's tuning knobs are ordinary keys under
//! `[gateway]`.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

use crate::values::{Secret, duration};
use crate::{ConfigError, Environment, Origin};

/// The wire format a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    /// OpenAI's API (Chat Completions, Embeddings).
    Openai,
    /// Any server with an OpenAI-compatible API: vLLM, TGI, LM Studio, llama.cpp's server.
    OpenaiCompatible,
    /// Anthropic's Messages API.
    Anthropic,
    /// Google's Gemini API (generateContent, embedContent).
    Gemini,
    /// Cohere's v2 API (chat, embed).
    Cohere,
    /// Ollama's native API (/api/chat, /api/embed, /api/tags).
    Ollama,
    /// The models kai runs itself: the built-in provider named `local`, never configured.
    Local,
}

/// The name of the built-in provider of the models kai runs itself (`local.enabled`).
pub const LOCAL_PROVIDER: &str = "local";

impl ProviderKind {
    /// Every kind, for error messages.
    pub const ALL: [ProviderKind; 7] = [
        ProviderKind::Openai,
        ProviderKind::OpenaiCompatible,
        ProviderKind::Anthropic,
        ProviderKind::Gemini,
        ProviderKind::Cohere,
        ProviderKind::Ollama,
        ProviderKind::Local,
    ];

    /// The name written in configuration.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::OpenaiCompatible => "openai-compatible",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
            ProviderKind::Cohere => "cohere",
            ProviderKind::Ollama => "ollama",
            ProviderKind::Local => "local",
        }
    }

    /// Where the provider is when `base_url` is not given; `None` for kinds that have no
    /// standard address.
    #[must_use]
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            ProviderKind::Openai => Some("https://api.openai.com/v1"),
            ProviderKind::Anthropic => Some("https://api.anthropic.com"),
            ProviderKind::Gemini => Some("https://generativelanguage.googleapis.com"),
            ProviderKind::Cohere => Some("https://api.cohere.com"),
            ProviderKind::Ollama => Some("http://127.0.0.1:11434"),
            ProviderKind::OpenaiCompatible | ProviderKind::Local => None,
        }
    }

    /// Whether the provider refuses requests without a key.
    #[must_use]
    pub fn needs_api_key(self) -> bool {
        matches!(
            self,
            ProviderKind::Openai
                | ProviderKind::Anthropic
                | ProviderKind::Gemini
                | ProviderKind::Cohere
        )
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProviderKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProviderKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| {
                let all: Vec<_> = ProviderKind::ALL.iter().map(|k| k.as_str()).collect();
                format!(
                    "unknown provider kind `{s}`; expected one of {}",
                    all.join(", ")
                )
            })
    }
}

/// Where a credential is kept: never the credential itself, so configuration files and the
/// database can be shown and copied without leaking keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CredentialRef {
    /// `env:NAME`: the environment variable `NAME`.
    Env(String),
    /// `file:PATH`: the file's contents, surrounding whitespace trimmed.
    File(PathBuf),
    /// `vault:NAME`: the node's secret `NAME` in kai's vault (`kai secret set NAME`).
    Vault(String),
}

/// The node's secrets that `vault:NAME` credentials name, as whoever holds the vault read them
/// (this crate knows no vault): the values, or why there are none.
#[derive(Debug, Clone)]
pub enum VaultSecrets {
    /// The vault cannot be read: the reason, such as "the vault is locked".
    Unavailable(String),
    /// The secrets read, by name; a name missing here is not in the vault.
    Open(std::collections::BTreeMap<String, Secret>),
}

impl Default for VaultSecrets {
    fn default() -> Self {
        VaultSecrets::Unavailable("this process has no vault".into())
    }
}

impl CredentialRef {
    /// Reads the credential. The error says which variable, file or secret, never a value.
    pub fn resolve(&self, env: &Environment, vault: &VaultSecrets) -> Result<Secret, String> {
        match self {
            CredentialRef::Vault(name) => match vault {
                VaultSecrets::Open(secrets) => secrets.get(name).cloned().ok_or_else(|| {
                    format!("the vault has no node secret `{name}`; store it with `kai secret set {name}`")
                }),
                VaultSecrets::Unavailable(why) => Err(format!("cannot read vault:{name}: {why}")),
            },
            CredentialRef::Env(name) => env
                .get(name)
                .map(|value| Secret::new(value.trim().to_owned()))
                .ok_or_else(|| format!("environment variable {name} is not set")),
            CredentialRef::File(path) => match std::fs::read_to_string(path) {
                Ok(text) if !text.trim().is_empty() => Ok(Secret::new(text.trim().to_owned())),
                Ok(_) => Err(format!("{} is empty", path.display())),
                Err(err) => Err(format!("cannot read {}: {err}", path.display())),
            },
        }
    }
}

impl fmt::Display for CredentialRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialRef::Env(name) => write!(f, "env:{name}"),
            CredentialRef::File(path) => write!(f, "file:{}", path.display()),
            CredentialRef::Vault(name) => write!(f, "vault:{name}"),
        }
    }
}

impl FromStr for CredentialRef {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some(name) = s.strip_prefix("env:") {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(format!(
                    "`env:{name}` does not name an environment variable (letters, digits and _)"
                ));
            }
            return Ok(CredentialRef::Env(name.to_owned()));
        }
        if let Some(path) = s.strip_prefix("file:") {
            if path.is_empty() {
                return Err("`file:` needs a path, as in file:/run/secrets/openai".into());
            }
            return Ok(CredentialRef::File(PathBuf::from(path)));
        }
        if let Some(name) = s.strip_prefix("vault:") {
            let valid = (1..=128).contains(&name.len())
                && name.starts_with(|c: char| c.is_ascii_alphanumeric())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if !valid {
                return Err(format!(
                    "`vault:{name}` does not name a secret (1 to 128 letters, digits, `.`, `_` or `-`)"
                ));
            }
            return Ok(CredentialRef::Vault(name.to_owned()));
        }
        // Never echo what was given: it is probably the key itself.
        Err("must be a reference such as env:OPENAI_API_KEY, file:/path/to/key or vault:openai, never the key itself".into())
    }
}

impl Serialize for CredentialRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CredentialRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One provider: where a set of models is served, and how to reach it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSettings {
    /// The name deployments refer to it by.
    pub name: String,
    /// The wire format it speaks.
    pub kind: ProviderKind,
    /// Its address; defaults to the provider's public API for the commercial kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<Url>,
    /// Where its API key is kept (`env:NAME` or `file:PATH`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<CredentialRef>,
    /// How long to wait for a connection.
    #[serde(default = "defaults::connect_timeout", with = "duration")]
    pub connect_timeout: Duration,
    /// How long a whole answer (or, streaming, its first byte) may take.
    #[serde(default = "defaults::timeout", with = "duration")]
    pub timeout: Duration,
    /// How long a stream may stay silent before it counts as stalled.
    #[serde(default = "defaults::stream_idle_timeout", with = "duration")]
    pub stream_idle_timeout: Duration,
    /// Extra HTTP headers on every request (an organisation id, a proxy's token reference is
    /// not supported here: use `api_key`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

impl ProviderSettings {
    /// A provider of `kind` with every optional setting at its default.
    #[must_use]
    pub fn new(name: impl Into<String>, kind: ProviderKind) -> ProviderSettings {
        ProviderSettings {
            name: name.into(),
            kind,
            base_url: None,
            api_key: None,
            connect_timeout: defaults::connect_timeout(),
            timeout: defaults::timeout(),
            stream_idle_timeout: defaults::stream_idle_timeout(),
            headers: BTreeMap::new(),
        }
    }

    /// The address in effect: `base_url`, else the kind's default.
    #[must_use]
    pub fn effective_base_url(&self) -> Option<Url> {
        self.base_url.clone().or_else(|| {
            self.kind
                .default_base_url()
                .and_then(|url| Url::parse(url).ok())
        })
    }
}

/// How a model spreads requests over its deployments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// The first healthy deployment by priority; the next ones only when it fails.
    #[default]
    Priority,
    /// At random, in proportion to `weight`.
    Weighted,
    /// The one with the fewest requests in flight.
    LeastBusy,
    /// The one with the lowest moving average of time to first token.
    Latency,
}

impl Strategy {
    /// Every strategy.
    pub const ALL: [Strategy; 4] = [
        Strategy::Priority,
        Strategy::Weighted,
        Strategy::LeastBusy,
        Strategy::Latency,
    ];

    /// The name written in configuration.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Priority => "priority",
            Strategy::Weighted => "weighted",
            Strategy::LeastBusy => "least-busy",
            Strategy::Latency => "latency",
        }
    }
}

impl FromStr for Strategy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Strategy::ALL
            .into_iter()
            .find(|strategy| strategy.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown strategy `{s}`; expected priority, weighted, least-busy or latency"
                )
            })
    }
}

/// One place a model is served: a provider and its name for the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentSettings {
    /// The provider's name.
    pub provider: String,
    /// The model's name at that provider.
    pub model: String,
    /// Share of traffic under the `weighted` strategy.
    #[serde(default = "defaults::weight")]
    pub weight: u32,
    /// Order under the `priority` strategy, lowest first; defaults to the list order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    /// Requests per minute this deployment may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u32>,
    /// Tokens per minute this deployment may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
}

impl DeploymentSettings {
    /// `model` at `provider`, weight 1, default priority, no limits.
    #[must_use]
    pub fn new(provider: impl Into<String>, model: impl Into<String>) -> DeploymentSettings {
        DeploymentSettings {
            provider: provider.into(),
            model: model.into(),
            weight: defaults::weight(),
            priority: None,
            rpm: None,
            tpm: None,
        }
    }
}

/// A model name clients use, routed over one or more deployments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSettings {
    /// The name clients send as `model`.
    pub name: String,
    /// How requests are spread over the deployments.
    #[serde(default)]
    pub strategy: Strategy,
    /// Where it is served.
    pub deployments: Vec<DeploymentSettings>,
    /// Further attempts after the first fails with a transient error.
    #[serde(default = "defaults::retries")]
    pub retries: u32,
    /// Models to try, in order, when every deployment of this one failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<String>,
    /// Models to try when the prompt does not fit this one's context window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context_window_fallbacks: Vec<String>,
    /// Models to try when this one's provider refuses the content.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content_policy_fallbacks: Vec<String>,
}

impl ModelSettings {
    /// A model over `deployments` with every optional setting at its default.
    #[must_use]
    pub fn new(name: impl Into<String>, deployments: Vec<DeploymentSettings>) -> ModelSettings {
        ModelSettings {
            name: name.into(),
            strategy: Strategy::default(),
            deployments,
            retries: defaults::retries(),
            fallbacks: Vec::new(),
            context_window_fallbacks: Vec::new(),
            content_policy_fallbacks: Vec::new(),
        }
    }
}

/// What an upstream model costs, in US dollars per million tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceSettings {
    /// The upstream model name, or `provider/model` to price one provider's model only.
    pub model: String,
    /// Dollars per million input tokens.
    pub input: f64,
    /// Dollars per million output tokens.
    pub output: f64,
}

/// The router's tuning, the same for every model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySettings {
    /// The first retry's delay; each later one doubles, with jitter.
    #[serde(with = "duration")]
    pub retry_base_delay: Duration,
    /// The longest delay between retries, and the longest `Retry-After` kai will wait out.
    #[serde(with = "duration")]
    pub retry_max_delay: Duration,
    /// Consecutive failures after which a deployment is cooled down.
    pub cooldown_after: u32,
    /// How long the first cool-down lasts; repeated ones double up to ten times this.
    #[serde(with = "duration")]
    pub cooldown: Duration,
}

mod defaults {
    use std::time::Duration;

    pub(super) fn connect_timeout() -> Duration {
        Duration::from_secs(10)
    }
    pub(super) fn timeout() -> Duration {
        Duration::from_secs(600)
    }
    pub(super) fn stream_idle_timeout() -> Duration {
        Duration::from_secs(120)
    }
    pub(super) fn weight() -> u32 {
        1
    }
    pub(super) fn retries() -> u32 {
        2
    }
}

/// Checks a name used in URLs and references: 1–128 characters, no whitespace or control
/// characters.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 128 {
        return Err("must be 1 to 128 characters long".into());
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "`{name}` must not contain spaces or control characters"
        ));
    }
    Ok(())
}

/// Checks one provider on its own.
pub fn check_provider(provider: &ProviderSettings) -> Result<(), (&'static str, String)> {
    check_name(&provider.name).map_err(|m| ("name", m))?;
    if provider.kind == ProviderKind::Local {
        return Err((
            "kind",
            format!(
                "`local` is kai's built-in provider of the models it runs itself; name it in a \
                 deployment as provider = \"{LOCAL_PROVIDER}\" instead of defining it"
            ),
        ));
    }
    if provider.name == LOCAL_PROVIDER {
        return Err((
            "name",
            format!(
                "`{LOCAL_PROVIDER}` is the built-in provider of the models kai runs itself; \
                 choose another name"
            ),
        ));
    }
    match provider.effective_base_url() {
        None => {
            return Err((
                "base_url",
                format!(
                    "is required for kind `{}` (for example http://127.0.0.1:8000/v1)",
                    provider.kind
                ),
            ));
        }
        Some(url) if !matches!(url.scheme(), "http" | "https") => {
            return Err((
                "base_url",
                format!("must be an http:// or https:// URL, not {}", url.scheme()),
            ));
        }
        Some(url) if !url.username().is_empty() || url.password().is_some() => {
            return Err((
                "base_url",
                "must not carry credentials; put the key in api_key".into(),
            ));
        }
        Some(_) => {}
    }
    for (name, value) in &provider.headers {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(("headers", format!("`{name}` is not a valid header name")));
        }
        if ["authorization", "x-api-key", "x-goog-api-key", "api-key"]
            .contains(&name.to_ascii_lowercase().as_str())
        {
            return Err((
                "headers",
                format!("`{name}` carries a credential; put it in api_key as a reference"),
            ));
        }
        if value.chars().any(char::is_control) {
            return Err((
                "headers",
                format!("the value of `{name}` has control characters"),
            ));
        }
    }
    for (what, value) in [
        ("connect_timeout", provider.connect_timeout),
        ("timeout", provider.timeout),
        ("stream_idle_timeout", provider.stream_idle_timeout),
    ] {
        if value.is_zero() {
            return Err((what, "must be longer than zero".into()));
        }
    }
    Ok(())
}

/// Checks one model on its own; `provider_exists` answers for the names its deployments use.
pub fn check_model(
    model: &ModelSettings,
    provider_exists: impl Fn(&str) -> bool,
) -> Result<(), (String, String)> {
    check_name(&model.name).map_err(|m| ("name".to_owned(), m))?;
    if model.deployments.is_empty() {
        return Err((
            "deployments".into(),
            "needs at least one { provider = …, model = … }".into(),
        ));
    }
    if model.retries > 10 {
        return Err(("retries".into(), "must be at most 10".into()));
    }
    for (i, deployment) in model.deployments.iter().enumerate() {
        let field = |name: &str| format!("deployments[{i}].{name}");
        if !provider_exists(&deployment.provider) {
            return Err((
                field("provider"),
                format!("no provider is named `{}`", deployment.provider),
            ));
        }
        if deployment.model.trim().is_empty() {
            return Err((field("model"), "must name the provider's model".into()));
        }
        if deployment.weight == 0 {
            return Err((field("weight"), "must be at least 1".into()));
        }
        if deployment.rpm == Some(0) {
            return Err((
                field("rpm"),
                "must be at least 1 (leave it out for no limit)".into(),
            ));
        }
        if deployment.tpm == Some(0) {
            return Err((
                field("tpm"),
                "must be at least 1 (leave it out for no limit)".into(),
            ));
        }
    }
    for (field, list) in [
        ("fallbacks", &model.fallbacks),
        ("context_window_fallbacks", &model.context_window_fallbacks),
        ("content_policy_fallbacks", &model.content_policy_fallbacks),
    ] {
        if list.iter().any(|name| name == &model.name) {
            return Err((field.into(), "must not name the model itself".into()));
        }
    }
    Ok(())
}

/// Checks a price.
pub fn check_price(price: &PriceSettings) -> Result<(), (&'static str, String)> {
    check_name(&price.model).map_err(|m| ("model", m))?;
    for (what, value) in [("input", price.input), ("output", price.output)] {
        if !value.is_finite() || value < 0.0 {
            return Err((what, "must be a price of zero or more dollars".into()));
        }
    }
    Ok(())
}

/// Checks the lists together: unique names, deployments that name a provider, fallbacks that
/// name a model.
pub(crate) fn validate(
    providers: &[ProviderSettings],
    models: &[ModelSettings],
    prices: &[PriceSettings],
    origin: &Origin,
) -> Result<(), ConfigError> {
    let invalid = |key: String, message: String| ConfigError::Invalid {
        key,
        origin: origin.clone(),
        message,
    };
    let mut seen = HashSet::new();
    for (i, provider) in providers.iter().enumerate() {
        check_provider(provider)
            .map_err(|(field, message)| invalid(format!("providers[{i}].{field}"), message))?;
        if !seen.insert(provider.name.as_str()) {
            return Err(invalid(
                format!("providers[{i}].name"),
                format!("`{}` is used by another provider", provider.name),
            ));
        }
    }
    let mut model_names = HashSet::new();
    for (i, model) in models.iter().enumerate() {
        check_model(model, |name| name == LOCAL_PROVIDER || seen.contains(name))
            .map_err(|(field, message)| invalid(format!("models[{i}].{field}"), message))?;
        if !model_names.insert(model.name.as_str()) {
            return Err(invalid(
                format!("models[{i}].name"),
                format!("`{}` is used by another model", model.name),
            ));
        }
    }
    for (i, model) in models.iter().enumerate() {
        for (field, list) in [
            ("fallbacks", &model.fallbacks),
            ("context_window_fallbacks", &model.context_window_fallbacks),
            ("content_policy_fallbacks", &model.content_policy_fallbacks),
        ] {
            if let Some(unknown) = list
                .iter()
                .find(|name| !model_names.contains(name.as_str()))
            {
                return Err(invalid(
                    format!("models[{i}].{field}"),
                    format!("no model is named `{unknown}`"),
                ));
            }
        }
    }
    for (i, price) in prices.iter().enumerate() {
        check_price(price)
            .map_err(|(field, message)| invalid(format!("prices[{i}].{field}"), message))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_references_parse_and_never_echo_a_key() {
        assert_eq!(
            "env:OPENAI_API_KEY".parse::<CredentialRef>(),
            Ok(CredentialRef::Env("OPENAI_API_KEY".into()))
        );
        assert_eq!(
            "file:/run/key".parse::<CredentialRef>(),
            Ok(CredentialRef::File("/run/key".into()))
        );
        let err = "sk-live-123456".parse::<CredentialRef>().unwrap_err();
        assert!(err.contains("never the key itself"), "{err}");
        assert!(!err.contains("sk-live"), "{err}");
        assert!("env:BAD NAME".parse::<CredentialRef>().is_err());
        assert_eq!(
            "vault:openai".parse::<CredentialRef>(),
            Ok(CredentialRef::Vault("openai".into()))
        );
        for bad in ["vault:", "vault:a b", "vault:-x", "vault:a/b"] {
            assert!(bad.parse::<CredentialRef>().is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_resolve_from_the_environment_and_files() {
        let env: Environment = [("KEY", " abc ")].into_iter().collect();
        let none = VaultSecrets::default();
        assert_eq!(
            CredentialRef::Env("KEY".into())
                .resolve(&env, &none)
                .unwrap()
                .expose(),
            "abc"
        );
        let missing = CredentialRef::Env("NOPE".into())
            .resolve(&env, &none)
            .unwrap_err();
        assert!(missing.contains("NOPE is not set"), "{missing}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "from-file\n").unwrap();
        assert_eq!(
            CredentialRef::File(path)
                .resolve(&env, &none)
                .unwrap()
                .expose(),
            "from-file"
        );
        // vault: names a node secret; the error says why it cannot be read, never a value.
        let open = VaultSecrets::Open([("openai".to_owned(), Secret::new("sk-1".into()))].into());
        let openai = CredentialRef::Vault("openai".into());
        assert_eq!(openai.resolve(&env, &open).unwrap().expose(), "sk-1");
        let missing = CredentialRef::Vault("other".into())
            .resolve(&env, &open)
            .unwrap_err();
        assert!(missing.contains("kai secret set other"), "{missing}");
        let locked = VaultSecrets::Unavailable("the vault is locked".into());
        let err = openai.resolve(&env, &locked).unwrap_err();
        assert!(
            err.contains("vault:openai") && err.contains("locked"),
            "{err}"
        );
    }

    #[test]
    fn kinds_parse_by_their_configured_names() {
        assert_eq!(
            "openai-compatible".parse::<ProviderKind>(),
            Ok(ProviderKind::OpenaiCompatible)
        );
        assert!(
            "azure"
                .parse::<ProviderKind>()
                .unwrap_err()
                .contains("ollama")
        );
    }
}
