use serde_json::{json, Map, Value};
use switchyard_llm_types::{ErrorClass, Usage};

use crate::estimate::{
    estimate_chat_prompt_tokens, estimate_chat_usage, estimate_input_tokens, estimate_text_tokens,
};
use crate::{cost_breakdown, cost_of, BudgetError, ModelPrice, PriceMap, PriceSource};

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn usage(v: Value) -> Usage {
    serde_json::from_value(v).unwrap()
}

fn close(actual: f64, expected: f64) {
    let tolerance = 1e-12_f64.max(expected.abs() * 1e-12);
    assert!(
        (actual - expected).abs() <= tolerance,
        "expected {expected}, got {actual}"
    );
}

fn price(v: Value) -> ModelPrice {
    ModelPrice::from_litellm_entry("test", &obj(v)).unwrap()
}

// ---- shipped file ----

#[test]
fn shipped_file_loads_and_every_entry_is_sourced_and_priced() {
    let map = PriceMap::shipped().unwrap();
    assert!(map.len() >= 20, "only {} entries", map.len());
    for (model, p) in map.iter() {
        let source = p.source.as_deref().unwrap_or("");
        assert!(source.starts_with("https://"), "{model}: source {source:?}");
        let date = p.source_date.as_deref().unwrap_or("");
        assert!(
            date.len() == 10 && date.as_bytes()[4] == b'-' && date.as_bytes()[7] == b'-',
            "{model}: source_date {date:?}"
        );
        // Rerank models are priced per search (query), every other model per input token.
        assert!(
            p.input_cost_per_token.unwrap_or(0.0) > 0.0
                || p.input_cost_per_query.unwrap_or(0.0) > 0.0,
            "{model}: input price"
        );
        assert!(p.litellm_provider.is_some(), "{model}: provider");
        assert!(p.mode.is_some(), "{model}: mode");
        assert!(p.max_input_tokens.is_some(), "{model}: max_input_tokens");
        if p.mode.as_deref() == Some("chat") {
            assert!(
                p.output_cost_per_token.unwrap_or(0.0) > 0.0,
                "{model}: output price"
            );
            assert!(p.max_output_tokens.is_some(), "{model}: max_output_tokens");
        }
    }
}

#[test]
fn shipped_file_covers_the_supported_providers() {
    let map = PriceMap::shipped().unwrap();
    for key in [
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "o3",
        "o4-mini",
        "text-embedding-3-small",
        "claude-sonnet-4-20250514",
        "claude-3-5-haiku-20241022",
        "gemini/gemini-2.5-pro",
        "groq/llama-3.3-70b-versatile",
    ] {
        assert!(map.get(key).is_some(), "missing {key}");
    }
    // Spot-check a conversion: gpt-4o is $2.50 / $10.00 / $1.25 per 1M tokens.
    let gpt4o = map.get("gpt-4o").unwrap();
    close(gpt4o.input_cost_per_token.unwrap() * 1e6, 2.5);
    close(gpt4o.output_cost_per_token.unwrap() * 1e6, 10.0);
    close(gpt4o.cache_read_input_token_cost.unwrap() * 1e6, 1.25);
}

// ---- parsing ----

#[test]
fn parses_fields_tiers_and_numeric_strings() {
    let p = price(json!({
        "litellm_provider": "gemini",
        "mode": "chat",
        "max_input_tokens": 1048576,
        "max_output_tokens": 65535,
        "input_cost_per_token": 1.25e-6,
        "output_cost_per_token": "1e-5",
        "input_cost_per_token_above_200k_tokens": 2.5e-6,
        "output_cost_per_token_above_200k_tokens": 1.5e-5,
        "input_cost_per_token_above_128k_tokens": 2e-6,
        "cache_read_input_token_cost": null
    }));
    assert_eq!(p.litellm_provider.as_deref(), Some("gemini"));
    assert_eq!(p.output_limit(), Some(65535));
    close(p.output_cost_per_token.unwrap(), 1e-5);
    assert_eq!(p.cache_read_input_token_cost, None);
    let thresholds: Vec<u64> = p.tiers.iter().map(|(t, _)| *t).collect();
    assert_eq!(thresholds, vec![128_000, 200_000]);
    assert_eq!(p.tiers[1].1.output_cost_per_token, Some(1.5e-5));
}

#[test]
fn rejects_bad_rates() {
    for bad in [json!("abc"), json!(-1.0), json!(true)] {
        let err = ModelPrice::from_litellm_entry("m", &obj(json!({ "input_cost_per_token": bad })))
            .unwrap_err();
        assert!(matches!(err, BudgetError::InvalidPriceMap { .. }));
        assert_eq!(err.status(), 500);
    }
    assert!(PriceMap::parse_litellm_json("[1]", Some("x.json")).is_err());
    let err = PriceMap::parse_litellm_json("{not json", Some("x.json")).unwrap_err();
    assert!(err.to_string().contains("x.json"), "{err}");
}

// ---- LiteLLM map merge ----

#[test]
fn litellm_map_merges_over_shipped() {
    let snippet = r#"{
        "sample_spec": {"max_tokens": "LEGACY parameter", "input_cost_per_token": 0.0},
        "gpt-4o": {"litellm_provider": "openai", "mode": "chat",
                   "input_cost_per_token": 5e-6, "output_cost_per_token": 1.5e-5},
        "my-org/custom-model": {"litellm_provider": "openai", "mode": "chat",
                   "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}
    }"#;
    let map = PriceMap::from_litellm_json(snippet).unwrap();
    assert_eq!(map.get("gpt-4o").unwrap().input_cost_per_token, Some(5e-6));
    // Replaced entry as a whole: no cache price survives from the shipped entry.
    assert_eq!(map.get("gpt-4o").unwrap().cache_read_input_token_cost, None);
    assert!(map.get("my-org/custom-model").is_some());
    assert!(map.get("sample_spec").is_none());
    // Untouched shipped entries remain.
    assert!(map.get("claude-sonnet-4-20250514").is_some());
}

#[test]
fn failed_merge_changes_nothing() {
    let mut map = PriceMap::shipped().unwrap();
    let before = map.len();
    let bad =
        r#"{"new-a": {"input_cost_per_token": 1e-6}, "new-b": {"input_cost_per_token": "x"}}"#;
    assert!(map.merge_litellm_json(bad, Some("bad.json")).is_err());
    assert_eq!(map.len(), before);
    assert!(map.get("new-a").is_none());
}

// ---- lookup order ----

fn lookup_map() -> PriceMap {
    let mut map = PriceMap::new();
    map.insert("gpt-4o", price(json!({"input_cost_per_token": 1.0})));
    map.insert("azure/gpt-4o", price(json!({"input_cost_per_token": 2.0})));
    map.insert("gpt-4-base", price(json!({"input_cost_per_token": 3.0})));
    map.register_deployment("dep-1", price(json!({"input_cost_per_token": 4.0})));
    map
}

#[test]
fn lookup_order_is_deployment_base_provider_bare() {
    let map = lookup_map();
    let rate = |dep, base, provider, model| {
        let hit = map.lookup(dep, base, provider, model).unwrap();
        (hit.price.input_cost_per_token.unwrap(), hit.source)
    };
    assert_eq!(
        rate(Some("dep-1"), Some("gpt-4-base"), Some("azure"), "gpt-4o"),
        (4.0, PriceSource::Deployment)
    );
    assert_eq!(
        rate(Some("dep-2"), Some("gpt-4-base"), Some("azure"), "gpt-4o"),
        (3.0, PriceSource::BaseModel)
    );
    assert_eq!(
        rate(None, Some("unknown-base"), Some("azure"), "gpt-4o"),
        (2.0, PriceSource::ProviderModel)
    );
    assert_eq!(
        rate(None, None, Some("openai"), "gpt-4o"),
        (1.0, PriceSource::Model)
    );
    // A prefixed model name falls back to its bare name.
    assert_eq!(
        rate(None, None, None, "openai/gpt-4o"),
        (1.0, PriceSource::Model)
    );
    assert!(map.lookup(None, None, Some("openai"), "nope").is_none());
}

#[test]
fn shipped_lookup_uses_litellm_key_conventions() {
    let map = PriceMap::shipped().unwrap();
    let hit = map
        .lookup(None, None, Some("gemini"), "gemini-2.5-pro")
        .unwrap();
    assert_eq!(hit.key, "gemini/gemini-2.5-pro");
    let hit = map
        .lookup(None, None, Some("anthropic"), "claude-sonnet-4-20250514")
        .unwrap();
    assert_eq!(hit.key, "claude-sonnet-4-20250514");
    // Cohere's embed v4 is keyed with its provider in LiteLLM's map, the v3 models bare.
    let hit = map
        .lookup(None, None, Some("cohere"), "embed-v4.0")
        .unwrap();
    assert_eq!(hit.key, "cohere/embed-v4.0");
    let hit = map
        .lookup(None, None, Some("cohere_chat"), "command-r")
        .unwrap();
    assert_eq!(hit.price.max_output_tokens, Some(4096));
}

// ---- custom pricing ----

#[test]
fn custom_pricing_from_params_overrides_map_for_that_deployment_only() {
    let mut map = PriceMap::shipped().unwrap();
    let params = obj(json!({
        "model": "openai/gpt-4o",
        "api_key": "sk-ignored",
        "input_cost_per_token": 0.5,
        "output_cost_per_token": "1.5"
    }));
    let custom = ModelPrice::from_params(&params).unwrap().unwrap();
    map.register_deployment("dep-custom", custom);

    let u = Usage::new(10, 4);
    let custom_hit = map
        .lookup(Some("dep-custom"), None, Some("openai"), "gpt-4o")
        .unwrap();
    close(cost_of(&u, custom_hit.price), 10.0 * 0.5 + 4.0 * 1.5);
    let other = map
        .lookup(Some("dep-other"), None, Some("openai"), "gpt-4o")
        .unwrap();
    close(cost_of(&u, other.price), 10.0 * 2.5e-6 + 4.0 * 1e-5);

    assert!(map.remove_deployment("dep-custom").is_some());
    assert_eq!(
        map.lookup(Some("dep-custom"), None, Some("openai"), "gpt-4o")
            .unwrap()
            .source,
        PriceSource::Model
    );
}

#[test]
fn from_params_none_without_prices_and_merges_model_info() {
    let params = obj(json!({"model": "openai/gpt-4o", "input_cost_per_token": null}));
    assert!(ModelPrice::from_params(&params).unwrap().is_none());

    let litellm_params = obj(json!({"model": "x", "output_cost_per_token": 2e-6}));
    let model_info = obj(
        json!({"input_cost_per_token": 1e-6, "output_cost_per_token": 9.0,
                                "cache_read_input_token_cost": 1e-7}),
    );
    let p = ModelPrice::from_deployment(&litellm_params, Some(&model_info))
        .unwrap()
        .unwrap();
    assert_eq!(p.input_cost_per_token, Some(1e-6));
    assert_eq!(p.output_cost_per_token, Some(2e-6));
    assert_eq!(p.cache_read_input_token_cost, Some(1e-7));
}

#[test]
fn bad_custom_price_is_a_400_naming_the_field() {
    let params = obj(json!({"model": "m1", "input_cost_per_token": "cheap"}));
    let err = ModelPrice::from_params(&params).unwrap_err();
    assert_eq!(err.status(), 400);
    assert_eq!(err.param(), Some("input_cost_per_token"));
    assert!(err.to_string().contains("m1"), "{err}");
}

// ---- formula ----

fn rates() -> ModelPrice {
    price(json!({
        "input_cost_per_token": 3e-6,
        "output_cost_per_token": 1.5e-5,
        "cache_read_input_token_cost": 3e-7,
        "cache_creation_input_token_cost": 3.75e-6
    }))
}

#[test]
fn plain_input_and_output() {
    // 1000 × $3/M + 500 × $15/M = 0.003 + 0.0075
    close(cost_of(&Usage::new(1000, 500), &rates()), 0.0105);
}

#[test]
fn cached_tokens_priced_at_cache_read_rate() {
    let u = usage(json!({"prompt_tokens": 1000, "completion_tokens": 0,
                         "prompt_tokens_details": {"cached_tokens": 800}}));
    let b = cost_breakdown(&u, &rates(), None);
    // 200 × 3e-6 = 0.0006; 800 × 3e-7 = 0.00024
    close(b.input_cost, 0.0006);
    close(b.cache_read_cost, 0.00024);
    close(b.total, 0.00084);
}

#[test]
fn cache_creation_tokens_from_either_field() {
    let a = usage(json!({"prompt_tokens": 1000, "completion_tokens": 10,
                         "cache_creation_input_tokens": 600,
                         "cache_read_input_tokens": 300}));
    let b = usage(json!({"prompt_tokens": 1000, "completion_tokens": 10,
                         "prompt_tokens_details": {"cached_tokens": 300,
                                                   "cache_creation_tokens": 600}}));
    for u in [a, b] {
        let br = cost_breakdown(&u, &rates(), None);
        assert_eq!(br.tokens.cache_creation, 600);
        assert_eq!(br.tokens.cached, 300);
        // text 100 × 3e-6 = 0.0003; cached 300 × 3e-7 = 0.00009;
        // creation 600 × 3.75e-6 = 0.00225; output 10 × 1.5e-5 = 0.00015
        close(br.input_cost, 0.0003);
        close(br.cache_read_cost, 0.00009);
        close(br.cache_creation_cost, 0.00225);
        close(br.output_cost, 0.00015);
        close(br.total, 0.00279);
    }
}

#[test]
fn missing_rates_cost_nothing() {
    let p = price(json!({"input_cost_per_token": 1e-6}));
    let u = usage(json!({"prompt_tokens": 100, "completion_tokens": 50,
                         "prompt_tokens_details": {"cached_tokens": 40}}));
    // Only 60 text prompt tokens are charged: no output rate, no cache-read rate.
    close(cost_of(&u, &p), 60.0 * 1e-6);
    close(cost_of(&u, &ModelPrice::default()), 0.0);
}

#[test]
fn reasoning_tokens_at_reasoning_rate_when_present_else_output_rate() {
    let u = usage(json!({"prompt_tokens": 0, "completion_tokens": 1000,
                         "completion_tokens_details": {"reasoning_tokens": 600}}));
    // No reasoning rate: all 1000 at output: 1000 × 1.5e-5 = 0.015
    close(cost_of(&u, &rates()), 0.015);
    let mut with_reasoning = rates();
    with_reasoning.output_cost_per_reasoning_token = Some(3.5e-6);
    let b = cost_breakdown(&u, &with_reasoning, None);
    // 400 × 1.5e-5 = 0.006; 600 × 3.5e-6 = 0.0021
    close(b.output_cost, 0.006);
    close(b.reasoning_cost, 0.0021);
    close(b.total, 0.0081);
}

#[test]
fn tier_applies_to_all_tokens_above_threshold() {
    let p = price(json!({
        "input_cost_per_token": 1.25e-6,
        "output_cost_per_token": 1e-5,
        "cache_read_input_token_cost": 1.25e-7,
        "input_cost_per_token_above_200k_tokens": 2.5e-6,
        "output_cost_per_token_above_200k_tokens": 1.5e-5,
        "cache_read_input_token_cost_above_200k_tokens": 2.5e-7
    }));
    // Exactly at the threshold: base rates. 200000 × 1.25e-6 + 1000 × 1e-5 = 0.25 + 0.01
    let at = cost_breakdown(&Usage::new(200_000, 1000), &p, None);
    assert_eq!(at.tier_threshold, None);
    close(at.total, 0.26);
    // Above: every token at the tier rate.
    // (250000 − 50000) × 2.5e-6 = 0.5; 50000 × 2.5e-7 = 0.0125; 1000 × 1.5e-5 = 0.015
    let u = usage(json!({"prompt_tokens": 250_000, "completion_tokens": 1000,
                         "prompt_tokens_details": {"cached_tokens": 50_000}}));
    let above = cost_breakdown(&u, &p, None);
    assert_eq!(above.tier_threshold, Some(200_000));
    close(above.input_cost, 0.5);
    close(above.cache_read_cost, 0.0125);
    close(above.output_cost, 0.015);
    close(above.total, 0.5275);
}

#[test]
fn highest_exceeded_tier_wins_and_falls_back_per_component() {
    let p = price(json!({
        "input_cost_per_token": 1.0,
        "output_cost_per_token": 10.0,
        "input_cost_per_token_above_128k_tokens": 2.0,
        "input_cost_per_token_above_200k_tokens": 3.0
    }));
    let b = cost_breakdown(&Usage::new(150_000, 1), &p, None);
    assert_eq!(b.tier_threshold, Some(128_000));
    close(b.input_cost, 300_000.0);
    close(b.output_cost, 10.0); // no tier output rate: base rate
    let b = cost_breakdown(&Usage::new(200_001, 0), &p, None);
    close(b.input_cost, 600_003.0);
}

#[test]
fn embeddings_are_input_only() {
    let map = PriceMap::shipped().unwrap();
    let p = map
        .lookup(None, None, Some("openai"), "text-embedding-3-small")
        .unwrap()
        .price;
    // 5000 × $0.02/M = 0.0001
    let b = cost_breakdown(&Usage::new(5000, 0), p, None);
    close(b.total, 0.0001);
    close(b.completion_cost(), 0.0);
}

#[test]
fn audio_tokens_split_only_when_audio_rate_exists() {
    let u = usage(json!({"prompt_tokens": 100, "completion_tokens": 10,
                         "prompt_tokens_details": {"audio_tokens": 40},
                         "completion_tokens_details": {"audio_tokens": 4}}));
    close(cost_of(&u, &rates()), 100.0 * 3e-6 + 10.0 * 1.5e-5);
    let mut p = rates();
    p.input_cost_per_audio_token = Some(1e-4);
    p.output_cost_per_audio_token = Some(2e-4);
    let b = cost_breakdown(&u, &p, None);
    close(b.input_cost, 60.0 * 3e-6);
    close(b.audio_input_cost, 40.0 * 1e-4);
    close(b.output_cost, 6.0 * 1.5e-5);
    close(b.audio_output_cost, 4.0 * 2e-4);
}

#[test]
fn per_second_pricing_replaces_token_pricing_when_duration_known() {
    let params = obj(json!({"input_cost_per_second": 0.0002, "output_cost_per_second": 0.0003}));
    let p = ModelPrice::from_params(&params).unwrap().unwrap();
    let b = cost_breakdown(&Usage::new(1000, 1000), &p, Some(2.5));
    close(b.input_time_cost, 0.0005);
    close(b.output_time_cost, 0.00075);
    close(b.total, 0.00125);
    // Unknown duration: nothing per second, and no token rates set.
    close(cost_breakdown(&Usage::new(1000, 1000), &p, None).total, 0.0);
}

#[test]
fn shipped_anthropic_cache_math() {
    let map = PriceMap::shipped().unwrap();
    let p = map
        .lookup(None, None, Some("anthropic"), "claude-sonnet-4-20250514")
        .unwrap()
        .price;
    // $3 in, $15 out, $0.30 cache hit, $3.75 cache write per 1M.
    let u = usage(json!({"prompt_tokens": 10_000, "completion_tokens": 1_000,
                         "cache_creation_input_tokens": 4_000,
                         "prompt_tokens_details": {"cached_tokens": 5_000}}));
    // 1000 × 3e-6 + 5000 × 3e-7 + 4000 × 3.75e-6 + 1000 × 1.5e-5
    // = 0.003 + 0.0015 + 0.015 + 0.015 = 0.0345
    close(cost_of(&u, p), 0.0345);
}

#[test]
fn saturates_when_details_exceed_prompt() {
    let u = usage(json!({"prompt_tokens": 10, "completion_tokens": 0,
                         "prompt_tokens_details": {"cached_tokens": 50}}));
    let b = cost_breakdown(&u, &rates(), None);
    close(b.input_cost, 0.0);
    close(b.cache_read_cost, 50.0 * 3e-7);
}

// ---- estimates ----

#[test]
fn text_estimate_is_chars_over_four_rounded_up() {
    assert_eq!(estimate_text_tokens(""), 0);
    assert_eq!(estimate_text_tokens("abc"), 1);
    assert_eq!(estimate_text_tokens("abcd"), 1);
    assert_eq!(estimate_text_tokens("abcde"), 2);
    // Counts characters, not bytes.
    assert_eq!(estimate_text_tokens("éééé"), 1);
}

#[test]
fn chat_estimate_adds_message_overhead() {
    let messages = json!([
        {"role": "system", "content": "You are terse."},
        {"role": "user", "name": "bob", "content": [{"type": "text", "text": "Hi there"},
                                                     {"type": "image_url", "image_url": {"url": "x"}}]}
    ]);
    // system: 3 + ceil(6/4)=2 + ceil(14/4)=4 = 9
    // user:   3 + 1 + ceil(8/4)=2 + (1 + ceil(3/4)=1) = 8
    // priming 3
    assert_eq!(estimate_chat_prompt_tokens(&messages), 20);
    let u = estimate_chat_usage(&messages, "Hello!");
    assert_eq!(u.prompt_tokens, 20);
    assert_eq!(u.completion_tokens, 2);
    assert_eq!(u.total_tokens, 22);
}

#[test]
fn input_estimate_handles_strings_arrays_and_token_ids() {
    assert_eq!(estimate_input_tokens(&json!("abcdefgh")), 2);
    assert_eq!(estimate_input_tokens(&json!(["abcd", "abcde"])), 3);
    assert_eq!(estimate_input_tokens(&json!([1, 2, 3])), 3);
}

#[test]
fn rerank_search_units_are_priced_per_query() {
    let rerank = price(json!({"input_cost_per_query": 0.002, "litellm_provider": "cohere"}));
    let units = usage(json!({"prompt_tokens": 0, "completion_tokens": 0, "search_units": 3}));
    close(cost_of(&units, &rerank), 0.006);
    let breakdown = cost_breakdown(&units, &rerank, None);
    close(breakdown.query_cost, 0.006);
    close(breakdown.prompt_cost(), 0.006);
    // A chat usage carries no search units: a per-query rate adds nothing.
    close(cost_of(&usage(json!({"prompt_tokens": 10})), &rerank), 0.0);
    let custom = ModelPrice::from_params(&obj(json!({"input_cost_per_query": "0.001"})))
        .unwrap()
        .unwrap();
    close(cost_of(&units, &custom), 0.003);
}
