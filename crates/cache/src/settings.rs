//! `litellm_settings.cache` / `cache_params`, parsed from the raw settings map.
//!
//! The config crate keeps these keys as raw JSON in `LitellmSettings.other`; this module owns
//! their meaning so the cache and its settings evolve together. Defaults follow LiteLLM
//! (`caching.py`): `cache: true` without `cache_params` means Redis from the `REDIS_*`
//! environment; `cache_params` without `type` means the in-process cache.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::CacheError;

/// Which backing store holds entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheType {
    /// In-process only (L1).
    Local,
    /// L1 in front of a shared Redis L2.
    Redis,
}

impl CacheType {
    /// The name `/cache/ping` reports.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheType::Local => "local",
            CacheType::Redis => "redis",
        }
    }
}

/// Whether a request is cached unless it opts out, or only when it opts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    /// Every supported call is cached (LiteLLM's default).
    DefaultOn,
    /// Only calls with `cache: {"use-cache": true}` are cached.
    DefaultOff,
}

/// The endpoints LiteLLM's `supported_call_types` can name (sync and `a`-prefixed async names
/// map to the same value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallType {
    Chat,
    TextCompletion,
    Embedding,
    Transcription,
    Rerank,
    Responses,
    AnthropicMessages,
}

impl CallType {
    pub const ALL: [CallType; 7] = [
        CallType::Chat,
        CallType::TextCompletion,
        CallType::Embedding,
        CallType::Transcription,
        CallType::Rerank,
        CallType::Responses,
        CallType::AnthropicMessages,
    ];

    /// Parses a LiteLLM call type name (`completion`, `acompletion`, `aembedding`, ...).
    pub fn parse(name: &str) -> Option<CallType> {
        let name = name.trim();
        let bare = match name {
            // `anthropic_messages` starts with an `a` that is not the async prefix.
            "anthropic_messages" | "aanthropic_messages" => {
                return Some(CallType::AnthropicMessages)
            }
            other => other
                .strip_prefix('a')
                .filter(|rest| Self::known(rest))
                .unwrap_or(other),
        };
        match bare {
            "completion" => Some(CallType::Chat),
            "text_completion" => Some(CallType::TextCompletion),
            "embedding" => Some(CallType::Embedding),
            "transcription" => Some(CallType::Transcription),
            "rerank" => Some(CallType::Rerank),
            "responses" => Some(CallType::Responses),
            _ => None,
        }
    }

    fn known(name: &str) -> bool {
        matches!(
            name,
            "completion"
                | "text_completion"
                | "embedding"
                | "transcription"
                | "rerank"
                | "responses"
        )
    }
}

/// Where L2 lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// A `redis://` URL; built from host/port/password when those were given instead.
    pub url: String,
    /// Pooled connections.
    pub pool_size: usize,
    /// Upper bound on one Redis call on the request path (lookup, store); past it the call
    /// proceeds as if L2 missed. Keeps a hung Redis from stalling requests.
    pub op_timeout: Duration,
    /// Upper bound on admin calls (`ping`, `delete`, `flush`), which may legitimately take longer.
    pub admin_timeout: Duration,
}

/// Everything the cache needs, after defaults and environment fallbacks.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheSettings {
    pub kind: CacheType,
    /// The semantic tier (`redis-semantic`, `local-semantic`), consulted after an exact miss.
    pub semantic: Option<SemanticSettings>,
    pub redis: Option<RedisSettings>,
    /// Config-level key prefix (`namespace:`).
    pub namespace: Option<String>,
    /// Default entry TTL (`ttl`); `None` means no expiry (bounded by L1 capacity / Redis memory).
    pub ttl: Option<Duration>,
    /// L1 TTL cap (`default_in_memory_ttl`).
    pub in_memory_ttl: Option<Duration>,
    /// L2 TTL when the request does not set one (`default_in_redis_ttl`).
    pub redis_ttl: Option<Duration>,
    /// L1 entry count bound (`max_size`).
    pub max_entries: u64,
    /// L1 total size bound in bytes.
    pub max_bytes: u64,
    /// Entries larger than this skip L1 (still go to L2).
    pub max_item_bytes: u64,
    pub mode: CacheMode,
    pub supported_call_types: Vec<CallType>,
    /// Chat requests with more messages than this are not cached (`max_messages`).
    pub max_messages: Option<usize>,
}

/// L1 TTL used for L2 promotions and Redis-mode writes when nothing shorter applies; LiteLLM's
/// in-memory tier default.
pub const DEFAULT_IN_MEMORY_TTL: Duration = Duration::from_secs(600);
const DEFAULT_MAX_ENTRIES: u64 = 10_000;
const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// LiteLLM's in-memory tier skips items above 1 MB.
const DEFAULT_MAX_ITEM_BYTES: u64 = 1024 * 1024;
const DEFAULT_POOL_SIZE: usize = 4;
const DEFAULT_OP_TIMEOUT: Duration = Duration::from_millis(50);
const DEFAULT_ADMIN_TIMEOUT: Duration = Duration::from_secs(5);

impl CacheSettings {
    /// Reads `cache` and `cache_params` from the `litellm_settings` map.
    ///
    /// Returns `Ok(None)` when caching is off (`cache` absent or false). `env` looks up
    /// environment variables (`REDIS_HOST`, `REDIS_PORT`, `REDIS_PASSWORD`, `REDIS_URL`); the
    /// caller passes it so tests and the config crate's `environment_variables` section work.
    pub fn from_litellm_settings(
        settings: &Map<String, Value>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<CacheSettings>, CacheError> {
        let enabled = match settings.get("cache") {
            None | Some(Value::Null) => false,
            Some(value) => as_bool(value).ok_or_else(|| {
                CacheError::setting("cache", format!("expected true or false, found {value}"))
            })?,
        };
        if !enabled {
            return Ok(None);
        }
        let params = match settings.get("cache_params") {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(map),
            Some(other) => {
                return Err(CacheError::setting(
                    "cache_params",
                    format!("expected a mapping, found {other}"),
                ))
            }
        };
        let empty = Map::new();
        let p = Params {
            map: params.unwrap_or(&empty),
        };

        let type_name = match p.string("type")? {
            Some(name) => name,
            None if params.is_some() => "local".to_owned(),
            None => "redis".to_owned(),
        };
        let (kind, semantic) = match type_name.as_str() {
            "local" => (CacheType::Local, false),
            "redis" => (CacheType::Redis, false),
            // Switchyard's name: LiteLLM has no in-process semantic cache.
            "local-semantic" => (CacheType::Local, true),
            "redis-semantic" | "valkey-semantic" => (CacheType::Redis, true),
            "qdrant-semantic" | "s3" | "gcs" | "azure-blob" | "disk" => {
                return Err(CacheError::UnsupportedType { kind: type_name })
            }
            other => {
                return Err(CacheError::setting(
                    "cache_params.type",
                    format!(
                        "unknown cache type {other:?} \
                         (expected local, redis, redis-semantic, local-semantic)"
                    ),
                ))
            }
        };

        let redis = match kind {
            CacheType::Local => None,
            CacheType::Redis => Some(redis_settings(&p, env)?),
        };

        let max_entries = p.u64("max_size")?.unwrap_or(DEFAULT_MAX_ENTRIES).max(1);
        let max_bytes = p.u64("max_size_bytes")?.unwrap_or(DEFAULT_MAX_BYTES).max(1);
        let max_item_bytes = p
            .u64("max_size_per_item_bytes")?
            .unwrap_or(DEFAULT_MAX_ITEM_BYTES);

        let mode = match p.string("mode")?.as_deref() {
            None | Some("default_on") => CacheMode::DefaultOn,
            Some("default_off") => CacheMode::DefaultOff,
            Some(other) => {
                return Err(CacheError::setting(
                    "cache_params.mode",
                    format!("expected default_on or default_off, found {other:?}"),
                ))
            }
        };

        let supported_call_types = match p.map.get("supported_call_types") {
            None | Some(Value::Null) => CallType::ALL.to_vec(),
            Some(Value::Array(items)) => {
                let mut types = Vec::new();
                for item in items {
                    let name = item.as_str().unwrap_or_default();
                    match CallType::parse(name) {
                        Some(call) if !types.contains(&call) => types.push(call),
                        Some(_) => {}
                        None => {
                            return Err(CacheError::setting(
                                "cache_params.supported_call_types",
                                format!("unknown call type {item}"),
                            ))
                        }
                    }
                }
                types
            }
            Some(other) => {
                return Err(CacheError::setting(
                    "cache_params.supported_call_types",
                    format!("expected a list, found {other}"),
                ))
            }
        };

        let namespace = p.string("namespace")?.filter(|ns| !ns.is_empty());
        let semantic = if semantic {
            Some(semantic_settings(&p)?)
        } else {
            None
        };
        Ok(Some(CacheSettings {
            kind,
            semantic,
            redis,
            namespace,
            ttl: p.seconds("ttl")?,
            in_memory_ttl: p.seconds("default_in_memory_ttl")?,
            redis_ttl: p.seconds("default_in_redis_ttl")?,
            max_entries,
            max_bytes,
            max_item_bytes,
            mode,
            supported_call_types,
            max_messages: p.u64("max_messages")?.map(saturating_usize),
        }))
    }

    /// An in-process cache with default bounds, for tests and embedders.
    pub fn local() -> CacheSettings {
        CacheSettings {
            kind: CacheType::Local,
            semantic: None,
            redis: None,
            namespace: None,
            ttl: None,
            in_memory_ttl: None,
            redis_ttl: None,
            max_entries: DEFAULT_MAX_ENTRIES,
            max_bytes: DEFAULT_MAX_BYTES,
            max_item_bytes: DEFAULT_MAX_ITEM_BYTES,
            mode: CacheMode::DefaultOn,
            supported_call_types: CallType::ALL.to_vec(),
            max_messages: None,
        }
    }

    /// A Redis-backed cache at `url` with default bounds and timeouts.
    pub fn redis(url: impl Into<String>) -> CacheSettings {
        CacheSettings {
            kind: CacheType::Redis,
            redis: Some(RedisSettings {
                url: url.into(),
                pool_size: DEFAULT_POOL_SIZE,
                op_timeout: DEFAULT_OP_TIMEOUT,
                admin_timeout: DEFAULT_ADMIN_TIMEOUT,
            }),
            ..CacheSettings::local()
        }
    }
}

/// The semantic tier's settings (see `docs/caching.md`).
#[derive(Debug, Clone, PartialEq)]
pub struct SemanticSettings {
    /// The `model_name` (or any name the router resolves) that embeds prompts.
    pub embedding_model: String,
    /// A stored prompt answers when its cosine similarity to the new one is at least this.
    pub similarity_threshold: f32,
    /// Prefix of the semantic keys in Redis (`redis_semantic_cache_index_name`).
    pub index_name: String,
    /// Most prompts kept per bucket (group + non-message parameters); the oldest go first.
    pub max_entries_per_bucket: usize,
    /// Most buckets kept in process (`local-semantic` only; Redis buckets expire by TTL).
    pub max_buckets: u64,
}

/// Chosen from the paraphrase / near-miss evaluation in `docs/benchmarks.md`.
pub const DEFAULT_SIMILARITY_THRESHOLD: f32 = 0.9;
/// LiteLLM's default embedding model for its semantic caches.
pub const DEFAULT_SEMANTIC_EMBEDDING_MODEL: &str = "text-embedding-ada-002";
/// LiteLLM's default index name; here the prefix of the semantic keys.
pub const DEFAULT_SEMANTIC_INDEX_NAME: &str = "litellm_semantic_cache_index";
const DEFAULT_SEMANTIC_BUCKET_ENTRIES: u64 = 128;
const MAX_SEMANTIC_BUCKET_ENTRIES: u64 = 4096;
const DEFAULT_SEMANTIC_BUCKETS: u64 = 10_000;

impl SemanticSettings {
    /// Defaults around an embedding model (for tests and embedders).
    pub fn new(embedding_model: impl Into<String>) -> SemanticSettings {
        SemanticSettings {
            embedding_model: embedding_model.into(),
            similarity_threshold: DEFAULT_SIMILARITY_THRESHOLD,
            index_name: DEFAULT_SEMANTIC_INDEX_NAME.to_owned(),
            max_entries_per_bucket: DEFAULT_SEMANTIC_BUCKET_ENTRIES as usize,
            max_buckets: DEFAULT_SEMANTIC_BUCKETS,
        }
    }
}

fn semantic_settings(p: &Params<'_>) -> Result<SemanticSettings, CacheError> {
    // LiteLLM names the model per backend; any of its names is accepted for either.
    let mut embedding_model = None;
    for name in [
        "redis_semantic_cache_embedding_model",
        "valkey_semantic_cache_embedding_model",
        "semantic_cache_embedding_model",
    ] {
        if let Some(model) = p.string(name)?.filter(|model| !model.is_empty()) {
            embedding_model = Some(model);
            break;
        }
    }
    let similarity_threshold = match p.map.get("similarity_threshold") {
        None | Some(Value::Null) => DEFAULT_SIMILARITY_THRESHOLD,
        Some(value) => value
            .as_f64()
            .or_else(|| value.as_str().and_then(|text| text.trim().parse().ok()))
            .filter(|threshold| (0.0..=1.0).contains(threshold))
            .ok_or_else(|| {
                CacheError::setting(
                    "cache_params.similarity_threshold",
                    format!("expected a number from 0 to 1, found {value}"),
                )
            })? as f32,
    };
    let index_name = p
        .string("redis_semantic_cache_index_name")?
        .or(p.string("valkey_semantic_cache_index_name")?)
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| DEFAULT_SEMANTIC_INDEX_NAME.to_owned());
    if index_name.contains(char::is_whitespace) {
        return Err(CacheError::setting(
            "cache_params.redis_semantic_cache_index_name",
            "must not contain spaces",
        ));
    }
    let max_entries_per_bucket = p
        .u64("semantic_cache_max_entries_per_bucket")?
        .unwrap_or(DEFAULT_SEMANTIC_BUCKET_ENTRIES)
        .clamp(1, MAX_SEMANTIC_BUCKET_ENTRIES);
    Ok(SemanticSettings {
        embedding_model: embedding_model
            .unwrap_or_else(|| DEFAULT_SEMANTIC_EMBEDDING_MODEL.to_owned()),
        similarity_threshold,
        index_name,
        max_entries_per_bucket: saturating_usize(max_entries_per_bucket),
        max_buckets: p
            .u64("semantic_cache_max_buckets")?
            .unwrap_or(DEFAULT_SEMANTIC_BUCKETS)
            .max(1),
    })
}

fn saturating_usize(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

fn redis_settings(
    p: &Params<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<RedisSettings, CacheError> {
    let env_nonempty = |name: &str| env(name).filter(|value| !value.is_empty());
    let url = match p.string("url")? {
        Some(url) => url,
        None => {
            let host = p.string("host")?.or_else(|| env_nonempty("REDIS_HOST"));
            match host {
                Some(host) => {
                    let port = match p.string_or_number("port")? {
                        Some(port) => port,
                        None => env_nonempty("REDIS_PORT").unwrap_or_else(|| "6379".to_owned()),
                    };
                    let port: u16 = port.trim().parse().map_err(|_| {
                        CacheError::setting("cache_params.port", format!("invalid port {port:?}"))
                    })?;
                    let password = p
                        .string_or_number("password")?
                        .or_else(|| env_nonempty("REDIS_PASSWORD"));
                    let username = p.string("username")?.or_else(|| env_nonempty("REDIS_USERNAME"));
                    let auth = match (username, password) {
                        (Some(user), Some(password)) => {
                            format!("{}:{}@", encode_userinfo(&user), encode_userinfo(&password))
                        }
                        (None, Some(password)) => format!(":{}@", encode_userinfo(&password)),
                        (Some(user), None) => format!("{}@", encode_userinfo(&user)),
                        (None, None) => String::new(),
                    };
                    let host = if host.contains(':') && !host.starts_with('[') {
                        format!("[{host}]")
                    } else {
                        host
                    };
                    let db = match p.u64("db")? {
                        Some(db) => format!("/{db}"),
                        None => String::new(),
                    };
                    format!("redis://{auth}{host}:{port}{db}")
                }
                None => env_nonempty("REDIS_URL").ok_or_else(|| {
                    CacheError::setting(
                        "cache_params",
                        "a redis cache needs host or url (or REDIS_HOST / REDIS_URL in the environment)",
                    )
                })?,
            }
        }
    };
    let ssl = p.map.get("ssl").and_then(as_bool).unwrap_or(false);
    if ssl || url.starts_with("rediss://") {
        return Err(CacheError::UnsupportedType {
            kind: "redis with TLS (ssl / rediss://)".to_owned(),
        });
    }
    if !url.starts_with("redis://") {
        return Err(CacheError::setting(
            "cache_params.url",
            "expected a redis:// URL",
        ));
    }
    let pool_size = p
        .u64("max_connections")?
        .map(saturating_usize)
        .unwrap_or(DEFAULT_POOL_SIZE)
        .clamp(1, 64);
    let op_timeout = p
        .u64("redis_timeout_ms")?
        .map(Duration::from_millis)
        .unwrap_or(DEFAULT_OP_TIMEOUT);
    Ok(RedisSettings {
        url,
        pool_size,
        op_timeout,
        admin_timeout: DEFAULT_ADMIN_TIMEOUT,
    })
}

/// Percent-encodes the characters that would break the URL's userinfo part.
fn encode_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn as_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        Value::String(text) => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Typed access to `cache_params` with errors naming the field.
struct Params<'a> {
    map: &'a Map<String, Value>,
}

impl Params<'_> {
    fn field(name: &str) -> String {
        format!("cache_params.{name}")
    }

    fn string(&self, name: &str) -> Result<Option<String>, CacheError> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(other) => Err(CacheError::setting(
                Self::field(name),
                format!("expected a string, found {other}"),
            )),
        }
    }

    /// Ports and passwords arrive as numbers from YAML as often as strings.
    fn string_or_number(&self, name: &str) -> Result<Option<String>, CacheError> {
        match self.map.get(name) {
            Some(Value::Number(number)) => Ok(Some(number.to_string())),
            _ => self.string(name),
        }
    }

    fn u64(&self, name: &str) -> Result<Option<u64>, CacheError> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(number)) => number.as_u64().map(Some).ok_or_else(|| {
                CacheError::setting(
                    Self::field(name),
                    format!("expected a non-negative integer, found {number}"),
                )
            }),
            Some(Value::String(text)) => text.trim().parse().map(Some).map_err(|_| {
                CacheError::setting(
                    Self::field(name),
                    format!("expected a non-negative integer, found {text:?}"),
                )
            }),
            Some(other) => Err(CacheError::setting(
                Self::field(name),
                format!("expected a non-negative integer, found {other}"),
            )),
        }
    }

    fn seconds(&self, name: &str) -> Result<Option<Duration>, CacheError> {
        let value = match self.map.get(name) {
            None | Some(Value::Null) => return Ok(None),
            Some(value) => value,
        };
        crate::controls::parse_seconds(value)
            .map(Some)
            .ok_or_else(|| {
                CacheError::setting(
                    Self::field(name),
                    format!("expected a non-negative number of seconds, found {value}"),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn parse(value: Value) -> Result<Option<CacheSettings>, CacheError> {
        let Value::Object(map) = value else {
            panic!("test settings must be an object")
        };
        CacheSettings::from_litellm_settings(&map, &no_env)
    }

    #[test]
    fn cache_absent_or_false_is_off() {
        assert!(parse(json!({})).unwrap().is_none());
        assert!(
            parse(json!({"cache": false, "cache_params": {"type": "local"}}))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn cache_params_without_type_is_local() {
        let settings = parse(json!({"cache": true, "cache_params": {"ttl": 60}}))
            .unwrap()
            .unwrap();
        assert_eq!(settings.kind, CacheType::Local);
        assert_eq!(settings.ttl, Some(Duration::from_secs(60)));
        assert_eq!(settings.mode, CacheMode::DefaultOn);
        assert_eq!(settings.supported_call_types, CallType::ALL.to_vec());
    }

    #[test]
    fn cache_true_alone_is_redis_from_the_environment() {
        let Value::Object(map) = json!({"cache": true}) else {
            unreachable!()
        };
        let env = |name: &str| match name {
            "REDIS_HOST" => Some("redis.internal".to_owned()),
            "REDIS_PORT" => Some("6380".to_owned()),
            "REDIS_PASSWORD" => Some("p@ss".to_owned()),
            _ => None,
        };
        let settings = CacheSettings::from_litellm_settings(&map, &env)
            .unwrap()
            .unwrap();
        assert_eq!(settings.kind, CacheType::Redis);
        assert_eq!(
            settings.redis.unwrap().url,
            "redis://:p%40ss@redis.internal:6380"
        );
        // Without any Redis location it is a startup error, not a silent local cache.
        assert!(matches!(
            parse(json!({"cache": true})),
            Err(CacheError::InvalidSetting { .. })
        ));
    }

    #[test]
    fn redis_params_win_over_environment_and_url_wins_over_host() {
        let Value::Object(map) = json!({"cache": true, "cache_params": {
            "type": "redis", "host": "h", "port": 7000, "password": 123,
            "namespace": "sy", "ttl": 30.5, "default_in_memory_ttl": 5, "default_in_redis_ttl": 60,
            "max_size": 50, "mode": "default_off",
            "supported_call_types": ["acompletion", "aembedding", "anthropic_messages"],
            "max_messages": 8
        }}) else {
            unreachable!()
        };
        let env = |name: &str| (name == "REDIS_HOST").then(|| "ignored".to_owned());
        let settings = CacheSettings::from_litellm_settings(&map, &env)
            .unwrap()
            .unwrap();
        assert_eq!(settings.redis.as_ref().unwrap().url, "redis://:123@h:7000");
        assert_eq!(settings.namespace.as_deref(), Some("sy"));
        assert_eq!(settings.ttl, Some(Duration::from_millis(30_500)));
        assert_eq!(settings.in_memory_ttl, Some(Duration::from_secs(5)));
        assert_eq!(settings.redis_ttl, Some(Duration::from_secs(60)));
        assert_eq!(settings.max_entries, 50);
        assert_eq!(settings.mode, CacheMode::DefaultOff);
        assert_eq!(
            settings.supported_call_types,
            vec![
                CallType::Chat,
                CallType::Embedding,
                CallType::AnthropicMessages
            ]
        );
        assert_eq!(settings.max_messages, Some(8));

        let url = parse(json!({"cache": true, "cache_params": {
            "type": "redis", "url": "redis://u:p@x:1/2", "host": "h"}}))
        .unwrap()
        .unwrap();
        assert_eq!(url.redis.unwrap().url, "redis://u:p@x:1/2");
    }

    #[test]
    fn semantic_types_parse_their_settings_and_unsupported_types_error() {
        let settings = parse(json!({"cache": true, "cache_params": {
            "type": "redis-semantic", "host": "h", "similarity_threshold": 0.9,
            "redis_semantic_cache_embedding_model": "emb",
            "redis_semantic_cache_index_name": "idx"}}))
        .unwrap()
        .unwrap();
        assert_eq!(settings.kind, CacheType::Redis);
        let semantic = settings.semantic.unwrap();
        assert_eq!(semantic.embedding_model, "emb");
        assert_eq!(semantic.index_name, "idx");
        assert!((semantic.similarity_threshold - 0.9).abs() < 1e-6);

        let local = parse(json!({"cache": true, "cache_params": {"type": "local-semantic"}}))
            .unwrap()
            .unwrap();
        assert_eq!(local.kind, CacheType::Local);
        let semantic = local.semantic.unwrap();
        assert_eq!(semantic.embedding_model, DEFAULT_SEMANTIC_EMBEDDING_MODEL);
        assert_eq!(semantic.similarity_threshold, DEFAULT_SIMILARITY_THRESHOLD);
        assert!(parse(json!({"cache": true, "cache_params": {
            "type": "local-semantic", "similarity_threshold": 1.5}}))
        .is_err());
        assert!(matches!(
            parse(json!({"cache": true, "cache_params": {"type": "s3"}})),
            Err(CacheError::UnsupportedType { .. })
        ));
        assert!(matches!(
            parse(json!({"cache": true, "cache_params": {"type": "memcached"}})),
            Err(CacheError::InvalidSetting { .. })
        ));
    }

    #[test]
    fn bad_values_name_the_field() {
        for (params, field) in [
            (json!({"ttl": "soon"}), "ttl"),
            (json!({"mode": "sometimes"}), "mode"),
            (json!({"max_size": -1}), "max_size"),
            (
                json!({"supported_call_types": ["speech_to_nowhere"]}),
                "supported_call_types",
            ),
            (
                json!({"type": "redis", "host": "h", "port": "http"}),
                "port",
            ),
        ] {
            let error = parse(json!({"cache": true, "cache_params": params}))
                .unwrap_err()
                .to_string();
            assert!(error.contains(field), "{error} should name {field}");
        }
    }

    #[test]
    fn call_type_names_map_sync_and_async_alike() {
        assert_eq!(CallType::parse("completion"), Some(CallType::Chat));
        assert_eq!(CallType::parse("acompletion"), Some(CallType::Chat));
        assert_eq!(
            CallType::parse("atext_completion"),
            Some(CallType::TextCompletion)
        );
        assert_eq!(CallType::parse("aresponses"), Some(CallType::Responses));
        assert_eq!(
            CallType::parse("aanthropic_messages"),
            Some(CallType::AnthropicMessages)
        );
        assert_eq!(CallType::parse("speech"), None);
    }
}
