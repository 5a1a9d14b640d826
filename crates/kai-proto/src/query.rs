//! The query strings of the API's GET routes. Like request bodies, they refuse unknown
//! parameters; the OpenAPI document describes them (bounds and choices included) from here.

use serde::Deserialize;
use utoipa::IntoParams;

/// `GET /api/v1/conversations`: where the next page of conversations starts.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConversationPageQuery {
    /// How many (1 to 200, default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_after` of the previous page.
    pub after: Option<String>,
}

/// A usage query: the window and filters both usage routes take, with `$extra` fields of its
/// own.
macro_rules! usage_query {
    ($(#[$attr:meta])* $name:ident { $($(#[$field_attr:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$attr])*
        #[derive(Debug, Clone, Default, Deserialize, IntoParams)]
        #[serde(deny_unknown_fields)]
        #[into_params(parameter_in = Query)]
        pub struct $name {
            /// Start of the window, RFC 3339 (inclusive).
            #[param(format = DateTime)]
            pub from: Option<String>,
            /// End of the window, RFC 3339 (exclusive).
            #[param(format = DateTime)]
            pub to: Option<String>,
            /// Only this model name.
            pub model: Option<String>,
            /// Only this API key's requests.
            #[param(format = Uuid)]
            pub key_id: Option<String>,
            /// Admins: a user id, or `all`. Everyone else sees their own.
            pub user: Option<String>,
            $($(#[$field_attr])* pub $field: $ty,)*
        }
    };
}

usage_query! {
    /// `GET /api/v1/usage`: which requests to count, and how to group them.
    UsageQuery {
        /// Per `model`, `provider`, `key`, `user` or `day`.
        #[param(pattern = "^(model|provider|key|user|day)$")]
        group_by: Option<String>,
    }
}

usage_query! {
    /// `GET /api/v1/usage/records`: which requests to list, a page at a time.
    UsageRecordsQuery {
        /// How many (1 to 1000, default 100).
        #[param(minimum = 1, maximum = 1000)]
        limit: Option<u32>,
        /// The page after this record id (`next_before` of the last page).
        #[param(format = Uuid)]
        before: Option<String>,
    }
}

impl UsageRecordsQuery {
    /// The window and filters, as the totals take them.
    #[must_use]
    pub fn window(&self) -> UsageQuery {
        UsageQuery {
            from: self.from.clone(),
            to: self.to.clone(),
            model: self.model.clone(),
            key_id: self.key_id.clone(),
            user: self.user.clone(),
            group_by: None,
        }
    }
}

/// `/api/v1/secrets`: whose secrets a request is about.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SecretScopeQuery {
    /// `node` for the node's secrets (admins only: what `vault:NAME` credentials name);
    /// `user` or nothing for the caller's own.
    #[param(pattern = "^(user|node)$")]
    pub scope: Option<String>,
}

/// `GET /api/v1/audit`: which entries to list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only entries at or after this time, RFC 3339.
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Only entries before this time, RFC 3339.
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// Only this actor's (`user:<id>`, `node`, `cli`); users always see only their own.
    pub actor: Option<String>,
    /// Only this action (`auth.login`, `secret.read`, …).
    pub action: Option<String>,
    /// The page after this entry (`next_after` of the last page).
    #[param(maximum = 9_223_372_036_854_775_807_u64)]
    pub after: Option<u64>,
    /// How many (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// `GET /api/v1/audit/proofs/inclusion`: the entry and tree an inclusion proof is for.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InclusionQuery {
    /// The entry.
    pub seq: u64,
    /// The tree's size (a checkpoint's), greater than `seq` and at most the log's; by default
    /// the whole log.
    #[param(minimum = 1)]
    pub size: Option<u64>,
}

/// `GET /api/v1/audit/proofs/consistency`: the two trees a consistency proof relates.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    /// The earlier tree's size, at least 1.
    #[param(minimum = 1)]
    pub from: u64,
    /// The later tree's size, from `from` to the log's; by default the whole log.
    #[param(minimum = 1)]
    pub to: Option<u64>,
}
