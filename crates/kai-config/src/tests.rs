use std::time::Duration;

use super::*;

fn env(vars: &[(&str, &str)]) -> Environment {
    vars.iter().map(|(k, v)| (*k, *v)).collect()
}

fn load_with(vars: &[(&str, &str)], file: Option<&str>) -> Result<Loaded, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let config_file = file.map(|text| {
        let path = dir.path().join("kai.toml");
        std::fs::write(&path, text).unwrap();
        path
    });
    let mut all = vec![("HOME", "/home/test")];
    all.extend_from_slice(vars);
    load(&Sources {
        config_file,
        env: env(&all),
        flags: vec![],
    })
}

#[test]
fn defaults_work_with_nothing_set() {
    let loaded = load_with(&[], None).unwrap();
    let s = loaded.settings;
    assert_eq!(loaded.file, None);
    assert_eq!(s.bind.to_string(), "127.0.0.1:8420");
    assert_eq!(s.data_dir, PathBuf::from("/home/test/.local/share/kai"));
    assert_eq!(s.database_url.kind(), DatabaseKind::Sqlite);
    assert_eq!(
        s.database_url.expose(),
        "sqlite:///home/test/.local/share/kai/kai.db"
    );
    assert_eq!(s.auth.access_token_ttl, Duration::from_secs(900));
    assert_eq!(s.log.format, LogFormat::Pretty);
}

#[test]
fn xdg_variables_place_data_and_config() {
    let dir = tempfile::tempdir().unwrap();
    let config_home = dir.path().join("config");
    std::fs::create_dir_all(config_home.join("kai")).unwrap();
    std::fs::write(
        config_home.join("kai/kai.toml"),
        "bind = \"127.0.0.1:9000\"\n",
    )
    .unwrap();
    let vars = env(&[
        ("XDG_CONFIG_HOME", config_home.to_str().unwrap()),
        ("XDG_DATA_HOME", "/srv/data"),
    ]);
    let loaded = load(&Sources {
        env: vars,
        ..Sources::default()
    })
    .unwrap();
    assert_eq!(loaded.file, Some(config_home.join("kai/kai.toml")));
    assert_eq!(loaded.settings.bind.port(), 9000);
    assert_eq!(loaded.settings.data_dir, PathBuf::from("/srv/data/kai"));
}

#[test]
fn layers_override_in_order() {
    let file =
        "bind = \"127.0.0.1:1000\"\n[http]\nmax_body_size = \"64 KiB\"\nrequest_timeout = \"5s\"\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kai.toml");
    std::fs::write(&path, file).unwrap();
    let sources = Sources {
        config_file: Some(path),
        env: env(&[
            ("HOME", "/h"),
            ("KAI_BIND", "127.0.0.1:2000"),
            ("KAI_HTTP_REQUEST_TIMEOUT", "1m"),
        ]),
        flags: vec![Flag {
            key: "bind",
            flag: "--bind",
            value: "127.0.0.1:3000".into(),
        }],
    };
    let s = load(&sources).unwrap().settings;
    assert_eq!(s.bind.port(), 3000, "flags beat the environment");
    assert_eq!(
        s.http.request_timeout,
        Duration::from_secs(60),
        "the environment beats the file"
    );
    assert_eq!(
        s.http.max_body_size.as_u64(),
        64 * 1024,
        "the file beats the defaults"
    );
}

#[test]
fn data_dir_moves_the_default_database() {
    let s = load_with(&[("KAI_DATA_DIR", "~/kai-data")], None)
        .unwrap()
        .settings;
    assert_eq!(s.data_dir, PathBuf::from("/home/test/kai-data"));
    assert_eq!(
        s.database_url.expose(),
        "sqlite:///home/test/kai-data/kai.db"
    );
}

#[test]
fn unknown_file_keys_are_refused_with_a_suggestion() {
    let err = load_with(&[], Some("[http]\nmax_bdy_size = \"1 MiB\"\n")).unwrap_err();
    let line = err.to_string();
    assert!(matches!(err, ConfigError::UnknownKey { .. }), "{line}");
    assert!(line.contains("`http.max_bdy_size`"), "{line}");
    assert!(line.contains("did you mean `http.max_body_size`"), "{line}");
    assert!(!line.contains('\n'));

    let err = load_with(&[], Some("[htttp]\nx = 1\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`htttp`"), "{err}");
}

#[test]
fn empty_variables_count_as_unset() {
    let s = load_with(&[("KAI_BIND", ""), ("KAI_AUTH_TOKEN_SECRET", " ")], None)
        .unwrap()
        .settings;
    assert_eq!(s.bind.port(), 8420);
    assert!(s.auth.token_secret.is_none());
}

#[test]
fn unknown_variables_are_refused() {
    let err = load_with(&[("KAI_DATABSE_URL", "postgres://x")], None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("KAI_DATABSE_URL"), "{err}");
    assert!(err.contains("did you mean `KAI_DATABASE_URL`"), "{err}");
    // Tooling variables are not configuration.
    load_with(
        &[
            ("KAI_TEST_DATABASE_URL", "postgres://x"),
            ("KAI_CI_CACHE", "/c"),
        ],
        None,
    )
    .unwrap();
}

#[test]
fn wrong_types_name_the_key_and_origin() {
    let err = load_with(&[], Some("[database]\nmax_connections = \"many\"\n")).unwrap_err();
    let line = err.to_string();
    assert!(line.contains("`database.max_connections`"), "{line}");
    assert!(line.contains("kai.toml"), "{line}");

    let line = load_with(&[("KAI_DATABASE_MAX_CONNECTIONS", "many")], None)
        .unwrap_err()
        .to_string();
    assert!(line.contains("KAI_DATABASE_MAX_CONNECTIONS"), "{line}");
    assert!(line.contains("whole number"), "{line}");

    let line = load_with(&[("KAI_BIND", "localhost")], None)
        .unwrap_err()
        .to_string();
    assert!(
        line.contains("`bind`") && line.contains("KAI_BIND"),
        "{line}"
    );

    let line = load_with(&[("KAI_HTTP_REQUEST_TIMEOUT", "soon")], None)
        .unwrap_err()
        .to_string();
    assert!(line.contains("`soon` is not a duration"), "{line}");

    let line = load_with(&[("KAI_LOG_FORMAT", "xml")], None)
        .unwrap_err()
        .to_string();
    assert!(
        line.contains("`log.format`") && line.contains("pretty"),
        "{line}"
    );

    let line = load_with(&[("KAI_HTTP_TRUST_FORWARDED_FOR", "maybe")], None)
        .unwrap_err()
        .to_string();
    assert!(line.contains("true or false"), "{line}");
}

#[test]
fn syntax_errors_give_a_line_number() {
    let err = load_with(&[], Some("bind = \"127.0.0.1:1\"\n[http\n")).unwrap_err();
    assert!(matches!(err, ConfigError::Syntax { line: 2, .. }), "{err}");
    assert!(!err.to_string().contains('\n'), "{err}");
}

#[test]
fn bad_values_are_refused() {
    let err = load_with(&[("KAI_DATABASE_URL", "mysql://root:pw@x/kai")], None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`database_url`") && !err.contains(":pw@"),
        "{err}"
    );
    let err = load_with(&[("KAI_AUTH_TOKEN_SECRET", "short")], None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("at least 32 bytes"), "{err}");
    let err = load_with(&[("KAI_DATABASE_MAX_CONNECTIONS", "0")], None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("at least 1"), "{err}");
    let err = load_with(&[("KAI_HTTP_REQUEST_TIMEOUT", "0s")], None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("longer than zero"), "{err}");
}

#[test]
fn the_client_keys_load_check_and_redact() {
    let s = load_with(&[], None).unwrap().settings;
    assert!(s.client.is_unset());
    // Unset, the section stays out of what `config show` prints.
    assert!(!s.to_redacted_toml().contains("[client]"));

    let s = load_with(
        &[
            ("KAI_CLIENT_URL", "https://kai.example/"),
            ("KAI_CLIENT_API_KEY", "kai_secret-key-value"),
        ],
        None,
    )
    .unwrap()
    .settings;
    assert_eq!(
        s.client.url.as_ref().unwrap().as_str(),
        "https://kai.example/"
    );
    assert_eq!(
        s.client.api_key.as_ref().unwrap().expose(),
        "kai_secret-key-value"
    );
    let shown = s.to_redacted_toml();
    assert!(!shown.contains("secret-key-value"), "{shown}");
    assert!(shown.contains("api_key = \"<redacted>\""), "{shown}");

    let from_file = load_with(&[], Some("[client]\nurl = \"http://10.0.0.2:8420\"\n"))
        .unwrap()
        .settings;
    assert_eq!(from_file.client.url.unwrap().port(), Some(8420));
    // What `config show` prints with a URL loads back to the same settings.
    let plain = load_with(&[("KAI_CLIENT_URL", "http://10.0.0.2:8420")], None)
        .unwrap()
        .settings;
    let reloaded = load_with(&[], Some(&plain.to_redacted_toml()))
        .unwrap()
        .settings;
    assert_eq!(plain, reloaded);

    for bad in ["localhost:8420", "ftp://kai.example", "kai.example"] {
        let err = load_with(&[("KAI_CLIENT_URL", bad)], None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`client.url`") && err.contains("KAI_CLIENT_URL"),
            "{bad}: {err}"
        );
    }
    let err = load_with(&[], Some("[client]\nurl = \"http://x\"\napi_kye = \"k\"\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("did you mean `client.api_key`"), "{err}");
}

#[test]
fn a_missing_explicit_file_is_an_error() {
    let sources = Sources {
        config_file: Some(PathBuf::from("/nonexistent/kai.toml")),
        env: env(&[("HOME", "/h")]),
        flags: vec![],
    };
    let err = load(&sources).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/kai.toml"), "{err}");
}

#[test]
fn shown_configuration_is_redacted_and_loads_back() {
    let s = load_with(
        &[
            ("KAI_DATABASE_URL", "postgres://kai:hunter2@db/kai"),
            (
                "KAI_AUTH_TOKEN_SECRET",
                "0123456789abcdef0123456789abcdef-secret",
            ),
        ],
        None,
    )
    .unwrap()
    .settings;
    let shown = s.to_redacted_toml();
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!shown.contains("-secret"), "{shown}");
    assert!(shown.contains("token_secret = \"<redacted>\""), "{shown}");

    // Without secrets, what `config show` prints is a configuration file that loads to the same
    // settings.
    let plain = load_with(&[("KAI_HTTP_MAX_BODY_SIZE", "3 MiB")], None)
        .unwrap()
        .settings;
    let reloaded = load_with(&[], Some(&plain.to_redacted_toml()))
        .unwrap()
        .settings;
    assert_eq!(plain, reloaded);
}

#[test]
fn documented_defaults_are_the_real_ones() {
    let defaults = load_with(&[], None).unwrap().settings;
    for key in KEYS
        .iter()
        // These defaults are descriptions, not values: derived from other keys or from
        // `kai login`'s file, or nothing at all.
        .filter(|key| {
            ![
                "data_dir",
                "database_url",
                "local.models_dir",
                "auth.token_secret",
                "client.url",
                "client.api_key",
                "vault.key_file",
                "vault.passphrase_file",
                "knowledge.content_dir",
                "agents.workspace_dir",
            ]
            .contains(&key.path)
        })
    {
        let var = key.env_var();
        let explicit = load_with(&[(var.as_str(), key.default)], None)
            .unwrap_or_else(|err| panic!("{}: documented default does not load: {err}", key.path))
            .settings;
        assert_eq!(
            explicit, defaults,
            "{}: documented default `{}` is not the default",
            key.path, key.default
        );
    }
}

#[test]
fn every_key_is_a_field_and_every_field_a_key() {
    // Each listed key, set on its own, is accepted by the struct.
    for key in KEYS {
        let sample = match (key.path, key.kind) {
            ("bind", _) => "127.0.0.1:1",
            ("database_url", _) => "postgres://db/kai",
            ("auth.token_secret", _) => "0123456789abcdef0123456789abcdef",
            ("client.url", _) => "https://kai.example:8420",
            ("client.api_key", _) => "kai_0123456789",
            ("local.pypi_index" | "local.huggingface_url", _) => "http://127.0.0.1:9/",
            ("local.models_dir", _) => "/srv/kai-models",
            ("knowledge.content_dir", _) => "/srv/kai-content",
            ("agents.workspace_dir", _) => "/srv/kai-workspaces",
            ("agents.http_allow", _) => "127.0.0.1, 10.0.0.0/8",
            ("http.cors_origins", _) => "https://app.example, http://localhost:5173",
            ("agents.default_model", _) => "openai/gpt-4o-mini",
            ("vault.kdf_memory", _) => "32 MiB",
            ("log.format", _) => "json",
            ("knowledge.chunk_tokens", _) => "128",
            ("knowledge.embedding_model", _) => "openai/text-embedding-3-small",
            ("knowledge.fusion", _) => "rrf",
            ("knowledge.search_index", _) => "embedded",
            // Must stay below gateway.retry_max_delay's default.
            ("gateway.retry_base_delay", _) => "1s",
            ("gateway.cooldown", _) => "1m",
            ("realtime.retention", _) => "2d",
            (_, KeyKind::Integer) => "3",
            (_, KeyKind::Bool) => "true",
            (path, KeyKind::Text) if path.contains("size") => "1 MiB",
            (path, KeyKind::Text)
                if path.contains('_') && !path.ends_with("level") && path != "data_dir" =>
            {
                "1m"
            }
            _ => "/tmp/x",
        };
        let var = key.env_var();
        load_with(&[(var.as_str(), sample)], None)
            .unwrap_or_else(|err| panic!("{}: {err}", key.path));
    }
    // Each field of the defaults is listed.
    let mut settings = Settings::defaults(PathBuf::from("/d"));
    settings.auth.token_secret = Some(Secret::new("x".repeat(32)));
    settings.client = ClientSettings {
        url: Some("http://127.0.0.1:1".parse().unwrap()),
        api_key: Some(Secret::new("kai_x".into())),
    };
    settings.vault.key_file = Some("/k".into());
    settings.vault.passphrase_file = Some("/p".into());
    settings.knowledge.content_dir = Some("/c".into());
    settings.agents.workspace_dir = Some("/w".into());
    let table = toml::Table::try_from(settings).unwrap();
    let mut leaves = Vec::new();
    collect_leaves(&table, "", &mut leaves);
    for leaf in leaves {
        assert!(
            find_key(&leaf).is_some(),
            "field `{leaf}` is missing from KEYS"
        );
    }
}

fn collect_leaves(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (name, value) in table {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match value {
            toml::Value::Table(inner) => collect_leaves(inner, &path, out),
            _ => out.push(path),
        }
    }
}

/// The README's configuration reference is the one generated from [`KEYS`]. Run the tests with
/// `UPDATE_DOCS=1` to rewrite it after changing a key.
#[test]
fn the_readme_reference_is_current() {
    let readme_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let (start, end) = (
        "<!-- config-reference:start -->\n",
        "<!-- config-reference:end -->",
    );
    let from = readme
        .find(start)
        .expect("README has a config-reference:start marker")
        + start.len();
    let to = readme
        .find(end)
        .expect("README has a config-reference:end marker");
    let expected = reference_markdown();
    if readme[from..to] != expected {
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(
                &readme_path,
                format!("{}{expected}{}", &readme[..from], &readme[to..]),
            )
            .unwrap();
        } else {
            panic!(
                "README.md's configuration reference is stale; run `UPDATE_DOCS=1 cargo test -p kai-config`"
            );
        }
    }
}

/// The gateway example the README and the issue give, as written.
const GATEWAY_EXAMPLE: &str = r#"
[[providers]]
name = "upstream"
kind = "openai-compatible"          # or openai, anthropic, gemini, cohere, ollama
base_url = "http://127.0.0.1:9000/v1"
api_key = "env:UPSTREAM_KEY"

[[models]]
name = "smart"
strategy = "priority"               # or weighted, least-busy, latency
deployments = [
  { provider = "upstream", model = "model-a" },
  { provider = "upstream", model = "model-b" },
]
"#;

#[test]
fn providers_and_models_load_from_the_file() {
    let s = load_with(&[], Some(GATEWAY_EXAMPLE)).unwrap().settings;
    assert_eq!(s.providers.len(), 1);
    let provider = &s.providers[0];
    assert_eq!(provider.kind, ProviderKind::OpenaiCompatible);
    assert_eq!(
        provider.api_key,
        Some(CredentialRef::Env("UPSTREAM_KEY".into()))
    );
    assert_eq!(provider.timeout, Duration::from_secs(600));
    let model = &s.models[0];
    assert_eq!(model.strategy, Strategy::Priority);
    assert_eq!(model.deployments[1].model, "model-b");
    assert_eq!(model.deployments[1].weight, 1);
    assert_eq!(model.retries, 2);

    // What `config show` prints loads back to the same lists.
    let reloaded = load_with(&[], Some(&s.to_redacted_toml()))
        .unwrap()
        .settings;
    assert_eq!(s, reloaded);
}

#[test]
fn bad_gateway_lists_are_refused_by_key() {
    let cases: [(&str, &str, &[&str]); 8] = [
        (
            "kind = \"openai-compatible\"",
            "kind = \"azure\"",
            &["providers[0].kind", "unknown variant"],
        ),
        (
            "api_key = \"env:UPSTREAM_KEY\"",
            "api_key = \"sk-123456\"",
            &["providers[0].api_key", "never the key itself"],
        ),
        (
            "base_url = \"http://127.0.0.1:9000/v1\"",
            "",
            &[
                "providers[0].base_url",
                "required for kind `openai-compatible`",
            ],
        ),
        (
            "base_url = \"http://127.0.0.1:9000/v1\"",
            "base_url = \"ftp://127.0.0.1/v1\"",
            &["providers[0].base_url", "http://"],
        ),
        (
            "{ provider = \"upstream\", model = \"model-b\" }",
            "{ provider = \"elsewhere\", model = \"model-b\" }",
            &[
                "models[0].deployments[1].provider",
                "no provider is named `elsewhere`",
            ],
        ),
        (
            "strategy = \"priority\"",
            "strategy = \"fastest\"",
            &["models[0].strategy", "unknown variant"],
        ),
        (
            "strategy = \"priority\"",
            "fallbacks = [\"dumb\"]",
            &["models[0].fallbacks", "no model is named `dumb`"],
        ),
        (
            "kind = \"openai-compatible\"",
            "kind = \"openai-compatible\"\nknd = 1",
            &["providers[0]", "unknown field `knd`"],
        ),
    ];
    for (from, to, expected) in cases {
        let text = GATEWAY_EXAMPLE.replace(from, to);
        let err = load_with(&[], Some(&text)).unwrap_err().to_string();
        for part in expected {
            assert!(err.contains(part), "{to}: {err}");
        }
        assert!(err.contains("kai.toml"), "{err}");
    }
    let twice =
        format!("{GATEWAY_EXAMPLE}\n[[providers]]\nname = \"upstream\"\nkind = \"ollama\"\n");
    let err = load_with(&[], Some(&twice)).unwrap_err().to_string();
    assert!(
        err.contains("providers[1].name") && err.contains("another provider"),
        "{err}"
    );
}

#[test]
fn mcp_servers_are_kept_as_written_and_their_secrets_redacted() {
    let file = r#"
[[mcp_servers]]
name = "files"
transport = "stdio"
command = "npx"
env = { TOKEN = "s3cret" }

[[mcp_servers]]
name = "search"
transport = "http"
url = "https://mcp.example.com/mcp"
headers = { Authorization = "Bearer s3cret" }
"#;
    let settings = load_with(&[], Some(file)).unwrap().settings;
    assert_eq!(settings.mcp_servers.len(), 2);
    assert_eq!(settings.mcp_servers[1].name(), "search");
    assert_eq!(
        settings.mcp_servers[0].0["env"]["TOKEN"].as_str(),
        Some("s3cret")
    );
    let shown = settings.to_redacted_toml();
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("[[mcp_servers]]"), "{shown}");
    assert!(!format!("{:?}", settings.mcp_servers).contains("s3cret"));
}

#[test]
fn cors_origins_are_origins() {
    let loaded = load_with(
        &[(
            "KAI_HTTP_CORS_ORIGINS",
            " HTTPS://App.Example:443 , http://localhost:5173",
        )],
        None,
    )
    .unwrap();
    assert_eq!(
        loaded.settings.http.cors_origin_list().unwrap(),
        ["https://app.example", "http://localhost:5173"]
    );
    let defaults = load_with(&[], None).unwrap();
    assert!(
        defaults
            .settings
            .http
            .cors_origin_list()
            .unwrap()
            .is_empty()
    );
    for (bad, says) in [
        ("*", "`*` is not allowed"),
        ("app.example", "is not an origin"),
        ("https://app.example/path", "is not an origin"),
        ("ftp://app.example", "is not an origin"),
    ] {
        let err = load_with(&[("KAI_HTTP_CORS_ORIGINS", bad)], None).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("http.cors_origins") && text.contains(says),
            "{bad}: {text}"
        );
    }
}
