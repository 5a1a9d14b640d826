//! The runtime against tiny models made by the tests: loading, tokenizing, templates,
//! sampling, streaming, stop sequences, limits, scheduling, embeddings and errors.

#![allow(clippy::unwrap_used)]

mod fixtures;

use std::time::Duration;

use futures_util::{FutureExt as _, StreamExt as _};
use kai_local::{ChatModel, LoadError, LocalOptions, LocalProvider, RuntimeLoad};
use kai_model_store::{LocalModelKind, ModelFormat};
use kai_models::chat::{
    ChatEvent, ChatRequest, EmbedRequest, FinishReason, Message, ResponseFormat, Role, Usage,
};
use kai_models::{ChatStream, ErrorKind, Provider};

use fixtures::{BERT_LIMIT, CHAT, CONTEXT, EMBED, TinyStore, tiny_id};

fn provider(tiny: &TinyStore, max_concurrent: usize) -> LocalProvider {
    LocalProvider::new(
        tiny.store.clone(),
        LocalOptions {
            threads: 1,
            max_concurrent,
            context_size: 0,
        },
    )
    .unwrap()
}

fn request(text: &str, max_tokens: u32) -> ChatRequest {
    let mut request = ChatRequest::new(CHAT, vec![Message::text(Role::User, text)]);
    request.sampling.temperature = Some(0.0);
    request.sampling.max_tokens = Some(max_tokens);
    request
}

async fn collect(stream: ChatStream) -> Vec<ChatEvent> {
    tokio::time::timeout(
        Duration::from_secs(60),
        stream.map(Result::unwrap).collect(),
    )
    .await
    .expect("the answer finishes")
}

fn text_of(events: &[ChatEvent]) -> String {
    events
        .iter()
        .filter_map(|event| match event {
            ChatEvent::Text(text) => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

fn finish_of(events: &[ChatEvent]) -> FinishReason {
    events
        .iter()
        .find_map(|event| match event {
            ChatEvent::Finish(reason) => Some(reason.clone()),
            _ => None,
        })
        .expect("a finish event")
}

async fn wait_for_load(provider: &LocalProvider, expected: RuntimeLoad) {
    for _ in 0..2000 {
        if provider.load() == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("load stayed {:?}, expected {expected:?}", provider.load());
}

#[test]
fn special_tokens_encode_as_single_ids_and_digits_split() {
    let tiny = TinyStore::new();
    let model = ChatModel::load(&tiny.gguf_path(), None, 0).unwrap();
    assert_eq!(model.context_length(), CONTEXT);
    assert_eq!(
        model.tokenize("<|im_start|>hello world<|im_end|>").unwrap(),
        vec![1, tiny_id("hello"), tiny_id("\u{120}world"), 2]
    );
    assert_eq!(
        model.tokenize("12").unwrap(),
        vec![tiny_id("1"), tiny_id("2")]
    );
    // No space is put before the text.
    assert_eq!(model.tokenize("hello").unwrap(), vec![tiny_id("hello")]);
    assert_eq!(model.end_tokens(), &[0, 2]);
}

#[test]
fn the_chat_template_renders_the_conversation() {
    let tiny = TinyStore::new();
    let model = ChatModel::load(&tiny.gguf_path(), None, 0).unwrap();
    let prompt = model
        .render_prompt(&[Message::text(Role::User, " hi ")], &[])
        .unwrap();
    assert_eq!(
        prompt,
        "<|im_start|>system\nYou are tiny.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn feeding_in_chunks_gives_the_same_logits_as_feeding_at_once() {
    let tiny = TinyStore::new();
    let model = ChatModel::load(&tiny.gguf_path(), None, 0).unwrap();
    let tokens = model.tokenize("hello world, hello world").unwrap();
    let mut whole = model.new_sequence();
    let at_once = model.feed(&mut whole, &tokens).unwrap();
    let mut pieces = model.new_sequence();
    model.feed(&mut pieces, &tokens[..3]).unwrap();
    model
        .feed(&mut pieces, &tokens[3..tokens.len() - 1])
        .unwrap();
    let stepwise = model
        .feed(&mut pieces, &tokens[tokens.len() - 1..])
        .unwrap();
    assert_eq!(whole.len(), tokens.len());
    assert_eq!(pieces.len(), tokens.len());
    for (a, b) in at_once.iter().zip(&stepwise) {
        assert!((a - b).abs() < 1e-3, "{a} vs {b}");
    }
}

/// kai's forward pass (4- and 8-bit products on quantized activations) against candle's
/// reference llama (float activations) on the same file: the logits agree to within what
/// quantizing the activations costs, and the most likely next token is the same.
#[test]
fn the_forward_pass_agrees_with_candles_reference_llama() {
    use candle_core::{Device, Tensor};
    use candle_transformers::models::quantized_llama::ModelWeights;

    let tiny = TinyStore::new();
    let model = ChatModel::load(&tiny.gguf_path(), None, 0).unwrap();
    let mut file = std::fs::File::open(tiny.gguf_path()).unwrap();
    let content = candle_core::quantized::gguf_file::Content::read(&mut file).unwrap();
    let mut reference = ModelWeights::from_gguf(content, &mut file, &Device::Cpu).unwrap();

    let tokens = model.tokenize("hello world, hello world and more").unwrap();
    let mut sequence = model.new_sequence();
    // A prompt in two pieces, then one token: every path through the attention.
    let split = tokens.len() / 2;
    model.feed(&mut sequence, &tokens[..split]).unwrap();
    let mut reference_logits = |ids: &[u32], start: usize| {
        let input = Tensor::new(ids, &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        reference
            .forward(&input, start)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    let ours = model.feed(&mut sequence, &tokens[split..]).unwrap();
    assert_logits_agree(&ours, &reference_logits(&tokens, 0));

    let next = tiny_id("o");
    let ours = model.feed(&mut sequence, &[next]).unwrap();
    assert_logits_agree(&ours, &reference_logits(&[next], tokens.len()));
}

fn assert_logits_agree(ours: &[f32], theirs: &[f32]) {
    assert_eq!(ours.len(), theirs.len());
    let dot: f32 = ours.iter().zip(theirs).map(|(a, b)| a * b).sum();
    let cosine = dot / (norm(ours) * norm(theirs));
    assert!(cosine > 0.999, "cosine similarity {cosine}");
    let argmax = |values: &[f32]| {
        values
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i)
    };
    assert_eq!(argmax(ours), argmax(theirs));
}

#[tokio::test]
async fn greedy_answers_repeat_exactly() {
    let tiny = TinyStore::new();
    let provider = provider(&tiny, 2);
    let first = provider.chat(&request("hello world", 24)).await.unwrap();
    let second = provider.chat(&request("hello world", 24)).await.unwrap();
    assert!(!first.message.joined_text().is_empty());
    assert_eq!(first.message.joined_text(), second.message.joined_text());
    assert_eq!(first.finish_reason, FinishReason::Length);
    let usage = first.usage.unwrap();
    assert_eq!(usage.output_tokens, 24);
    assert!(usage.input_tokens > 10);
}

#[tokio::test]
async fn the_same_seed_samples_the_same_answer() {
    let tiny = TinyStore::new();
    let provider = provider(&tiny, 2);
    let sampled = |seed| {
        let mut request = request("hello", 24);
        request.sampling.temperature = Some(1.0);
        request.sampling.top_k = Some(0);
        request.sampling.top_p = Some(1.0);
        request.sampling.seed = Some(seed);
        request
    };
    let a = provider.chat(&sampled(5)).await.unwrap();
    let b = provider.chat(&sampled(5)).await.unwrap();
    let c = provider.chat(&sampled(6)).await.unwrap();
    assert_eq!(a.message.joined_text(), b.message.joined_text());
    assert_ne!(a.message.joined_text(), c.message.joined_text());
}

#[tokio::test]
async fn a_stream_sends_text_then_finish_then_usage() {
    let tiny = TinyStore::new();
    let provider = provider(&tiny, 2);
    let whole = provider.chat(&request("hello", 16)).await.unwrap();
    let events = collect(provider.chat_stream(&request("hello", 16)).await.unwrap()).await;
    let (last, rest) = events.split_last().unwrap();
    assert!(matches!(
        last,
        ChatEvent::Usage(Usage {
            output_tokens: 16,
            ..
        })
    ));
    let (finish, texts) = rest.split_last().unwrap();
    assert_eq!(finish, &ChatEvent::Finish(FinishReason::Length));
    assert!(
        texts
            .iter()
            .all(|event| matches!(event, ChatEvent::Text(_)))
    );
    assert_eq!(text_of(&events), whole.message.joined_text());
}

#[tokio::test]
async fn stop_sequences_end_the_answer_and_are_never_sent() {
    let tiny = TinyStore::new();
    let provider = provider(&tiny, 2);
    let full = provider.chat(&request("hello", 40)).await.unwrap();
    let full = full.message.joined_text();
    let chars: Vec<char> = full.chars().collect();
    assert!(
        chars.len() >= 8,
        "the answer is long enough to cut: {full:?}"
    );
    let stop: String = chars[chars.len() / 2..chars.len() / 2 + 2].iter().collect();
    let expected = &full[..full.find(&stop).unwrap()];

    let mut stopped = request("hello", 40);
    stopped.sampling.stop = vec![stop.clone(), "a stop that never comes".into()];
    let events = collect(provider.chat_stream(&stopped).await.unwrap()).await;
    assert_eq!(text_of(&events), expected);
    assert_eq!(finish_of(&events), FinishReason::Stop);
    for event in &events {
        if let ChatEvent::Text(text) = event {
            assert!(!text.contains(&stop), "{text:?} carries the stop {stop:?}");
        }
    }
}

#[tokio::test]
async fn max_tokens_ends_the_answer_with_length() {
    let tiny = TinyStore::new();
    let provider = provider(&tiny, 2);
    let answer = provider.chat(&request("hello", 3)).await.unwrap();
    assert_eq!(answer.finish_reason, FinishReason::Length);
    assert_eq!(answer.usage.unwrap().output_tokens, 3);
}

#[tokio::test]
async fn a_prompt_beyond_the_context_is_refused_with_the_numbers() {
    let tiny = TinyStore::new();
    let provider = provider(&tiny, 2);
    let long = "hello world ".repeat(200);
    let err = provider.chat(&request(&long, 10)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::ContextLengthExceeded);
    assert!(
        err.message.contains(&format!("at most {CONTEXT} tokens")),
        "{}",
        err.message
    );

    let err = provider
        .chat(&request("hello", CONTEXT as u32))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::ContextLengthExceeded);
    assert!(err.message.contains("max_tokens"), "{}", err.message);
}

#[tokio::test]
async fn the_context_size_option_lowers_the_limit() {
    let tiny = TinyStore::new();
    let provider = LocalProvider::new(
        tiny.store.clone(),
        LocalOptions {
            threads: 1,
            max_concurrent: 1,
            context_size: 32,
        },
    )
    .unwrap();
    let err = provider.chat(&request("hello", 30)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::ContextLengthExceeded);
    assert!(err.message.contains("at most 32 tokens"), "{}", err.message);
}

#[tokio::test]
async fn a_dropped_stream_frees_its_place_for_the_next_request() {
    let tiny = TinyStore::new();
    let provider = provider(&tiny, 1);
    let mut first = provider.chat_stream(&request("hello", 200)).await.unwrap();
    assert!(matches!(first.next().await, Some(Ok(ChatEvent::Text(_)))));
    let second = provider.chat_stream(&request("hello", 5)).await.unwrap();
    wait_for_load(
        &provider,
        RuntimeLoad {
            running: 1,
            waiting: 1,
        },
    )
    .await;
    drop(first);
    let events = collect(second).await;
    assert_eq!(finish_of(&events), FinishReason::Length);
    wait_for_load(&provider, RuntimeLoad::default()).await;
}

#[tokio::test]
async fn concurrent_streams_take_turns() {
    let tiny = TinyStore::new();
    let provider = provider(&tiny, 2);
    let (first, second) = (request("hello", 200), request("world", 200));
    let (a, b) = tokio::join!(provider.chat_stream(&first), provider.chat_stream(&second));
    let (mut a, mut b) = (a.unwrap(), b.unwrap());
    assert!(matches!(b.next().await, Some(Ok(ChatEvent::Text(_)))));
    // When the second answer has its first token, the first is far from done.
    let mut so_far = Vec::new();
    while let Some(Some(event)) = a.next().now_or_never() {
        so_far.push(event.unwrap());
    }
    assert!(
        so_far
            .iter()
            .all(|event| matches!(event, ChatEvent::Text(_))),
        "the first answer finished before the second started: {so_far:?}"
    );
    assert_eq!(provider.load().running, 2);
    let (a, b) = tokio::join!(collect(a), collect(b));
    assert_eq!(finish_of(&a), FinishReason::Length);
    assert_eq!(finish_of(&b), FinishReason::Length);
}

#[tokio::test]
async fn structured_output_and_images_are_unsupported() {
    let tiny = TinyStore::new();
    let provider = provider(&tiny, 1);
    let mut json = request("hello", 4);
    json.response_format = Some(ResponseFormat::JsonSchema {
        name: "answer".into(),
        description: None,
        schema: serde_json::json!({"type": "object"}),
        strict: Some(true),
    });
    let err = provider.chat(&json).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unsupported);
    assert!(err.message.contains("JSON"), "{}", err.message);
}

#[tokio::test]
async fn bad_sampling_values_are_refused() {
    let tiny = TinyStore::new();
    let provider = provider(&tiny, 1);
    let mut bad = request("hello", 4);
    bad.extra
        .insert("repetition_penalty".into(), serde_json::json!(-1));
    let err = provider.chat(&bad).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest);
    assert!(
        err.message.contains("repetition_penalty"),
        "{}",
        err.message
    );

    let mut bad = request("hello", 4);
    bad.sampling.top_p = Some(0.0);
    assert_eq!(
        provider.chat(&bad).await.unwrap_err().kind,
        ErrorKind::BadRequest
    );
}

#[tokio::test]
async fn a_truncated_gguf_is_refused_naming_the_file() {
    let tiny = TinyStore::new();
    let path = tiny.gguf_path();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 1000]).unwrap();

    let err = ChatModel::load(&path, None, 0).unwrap_err();
    assert!(matches!(err, LoadError::Corrupt { .. }), "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );

    // With a manifest that matches the cut file, the header check still catches it.
    fixtures::write_manifest(
        &tiny.dir.path().join(CHAT),
        CHAT,
        LocalModelKind::Chat,
        ModelFormat::Gguf,
        "tiny.gguf",
    );
    let err = provider(&tiny, 1)
        .chat(&request("hello", 4))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed);
    assert!(err.message.contains("tiny.gguf"), "{}", err.message);
    assert!(
        err.message.contains("kai models pull tiny"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn a_file_that_differs_from_its_manifest_is_refused() {
    let tiny = TinyStore::new();
    let path = tiny.gguf_path();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = provider(&tiny, 1)
        .chat(&request("hello", 4))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed);
    assert!(
        err.message.contains("kai models pull tiny"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn models_are_found_by_store_name_and_kind() {
    let tiny = TinyStore::new();
    let provider = provider(&tiny, 1);
    assert_eq!(
        provider.list_models().await.unwrap(),
        vec![CHAT.to_owned(), EMBED.to_owned()]
    );

    let mut unknown = request("hello", 4);
    unknown.model = "nope".into();
    let err = provider.chat(&unknown).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert!(
        err.message.contains("installed: tiny, tinybert"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("kai models pull nope"),
        "{}",
        err.message
    );

    let mut to_embedder = request("hello", 4);
    to_embedder.model = EMBED.into();
    let err = provider.chat(&to_embedder).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest);
    assert!(err.message.contains("embedding model"), "{}", err.message);

    let err = provider
        .embed(&EmbedRequest::new(CHAT, vec!["hi".into()]))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest);
    assert!(err.message.contains("chat model"), "{}", err.message);
}

#[tokio::test]
async fn a_removed_model_is_forgotten_and_a_repulled_one_reloaded() {
    let tiny = TinyStore::new();
    let provider = provider(&tiny, 1);
    provider.chat(&request("hello", 2)).await.unwrap();

    let dir = tiny.dir.path().join(CHAT);
    std::fs::remove_file(dir.join("manifest.json")).unwrap();
    let err = provider.chat(&request("hello", 2)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);

    fixtures::write_manifest(
        &dir,
        CHAT,
        LocalModelKind::Chat,
        ModelFormat::Gguf,
        "tiny.gguf",
    );
    provider.chat(&request("hello", 2)).await.unwrap();

    // Pulled again, damaged this time: a reload (not the cached model) notices.
    let gguf = tiny.gguf_path();
    let bytes = std::fs::read(&gguf).unwrap();
    std::fs::write(&gguf, &bytes[..bytes.len() - 64]).unwrap();
    std::thread::sleep(Duration::from_millis(10));
    fixtures::write_manifest(
        &dir,
        CHAT,
        LocalModelKind::Chat,
        ModelFormat::Gguf,
        "tiny.gguf",
    );
    let err = provider.chat(&request("hello", 2)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed);
}

fn norm(vector: &[f32]) -> f32 {
    vector.iter().map(|x| x * x).sum::<f32>().sqrt()
}

#[tokio::test]
async fn embeddings_are_unit_vectors_of_the_models_width() {
    let tiny = TinyStore::new();
    let provider = provider(&tiny, 1);
    let response = provider
        .embed(&EmbedRequest::new(
            EMBED,
            vec![
                "the cat sat".into(),
                "a dog ran in the park".into(),
                String::new(),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(response.vectors.len(), 3);
    for vector in &response.vectors {
        assert_eq!(vector.len(), 32);
        assert!((norm(vector) - 1.0).abs() < 1e-4);
    }
    assert_ne!(response.vectors[0], response.vectors[1]);
    // [CLS] and [SEP] around each: 5 + 8 + 2.
    assert_eq!(response.usage.unwrap().input_tokens, 15);
    assert!(response.truncated.is_empty());
}

/// kai's BERT (texts packed, its own attention, norms and GELU) against candle's reference
/// BertModel (one text at a time), pooled and scaled the same way.
#[test]
fn the_bert_encoder_agrees_with_candles_reference_bert() {
    use candle_core::{DType, Device, Tensor};
    use candle_nn::VarBuilder;
    use candle_transformers::models::bert::{BertModel, Config};

    let tiny = TinyStore::new();
    let dir = tiny.dir.path().join(EMBED);
    let model = kai_local::EmbeddingModel::load(&dir).unwrap();
    let config: Config =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let tensors =
        candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    let reference = BertModel::load(
        VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu),
        &config,
    )
    .unwrap();
    // The fixture's tokenizer.json pads and truncates (kai turns both off): so does this.
    let mut tokenizer = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    tokenizer.with_padding(None);
    tokenizer.with_truncation(None).unwrap();

    let texts: Vec<String> = ["the cat sat on the mat", "sun", "a small blue cat is hot"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let ours = model.embed(&texts).unwrap();
    for (text, vector) in texts.iter().zip(&ours.vectors) {
        let ids = tokenizer
            .encode(text.as_str(), true)
            .unwrap()
            .get_ids()
            .to_vec();
        let ids = Tensor::new(ids.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let hidden = reference
            .forward(&ids, &ids.zeros_like().unwrap(), None)
            .unwrap();
        let mean = hidden
            .mean(1)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let length = norm(&mean);
        for (a, b) in vector.iter().zip(&mean) {
            assert!(
                (a - b / length).abs() < 1e-4,
                "{text}: {a} vs {}",
                b / length
            );
        }
    }
}

#[test]
fn a_truncated_or_foreign_safetensors_file_is_refused_naming_it() {
    let tiny = TinyStore::new();
    let dir = tiny.dir.path().join(EMBED);
    let weights = dir.join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() - 100]).unwrap();
    let err = kai_local::EmbeddingModel::load(&dir).unwrap_err();
    assert!(matches!(err, LoadError::Corrupt { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("model.safetensors") && message.contains("truncated"),
        "{message}"
    );

    std::fs::write(&weights, b"this is not a safetensors file at all").unwrap();
    let message = kai_local::EmbeddingModel::load(&dir)
        .unwrap_err()
        .to_string();
    assert!(message.contains("model.safetensors"), "{message}");
}

#[tokio::test]
async fn batched_embeddings_match_one_by_one() {
    let tiny = TinyStore::new();
    let provider = provider(&tiny, 1);
    let texts: Vec<String> = [
        "the cat sat on the mat",
        "sun",
        "the big red dog ran in the park .",
        "cold",
        "a small blue cat is hot",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let together = provider
        .embed(&EmbedRequest::new(EMBED, texts.clone()))
        .await
        .unwrap();
    for (text, batched) in texts.iter().zip(&together.vectors) {
        let alone = provider
            .embed(&EmbedRequest::new(EMBED, vec![text.clone()]))
            .await
            .unwrap();
        for (a, b) in alone.vectors[0].iter().zip(batched) {
            assert!((a - b).abs() < 1e-4, "{text}: {a} vs {b}");
        }
    }
}

#[tokio::test]
async fn over_long_inputs_are_cut_and_reported() {
    let tiny = TinyStore::new();
    let provider = provider(&tiny, 1);
    let long = "the cat sat on the mat ".repeat(5);
    let response = provider
        .embed(&EmbedRequest::new(EMBED, vec!["sun".into(), long]))
        .await
        .unwrap();
    assert_eq!(response.truncated, vec![1]);
    assert_eq!(response.usage.unwrap().input_tokens, 3 + BERT_LIMIT as u64);
}

#[tokio::test]
async fn embedding_requests_are_checked() {
    let tiny = TinyStore::new();
    let provider = provider(&tiny, 1);
    let err = provider
        .embed(&EmbedRequest::new(EMBED, Vec::new()))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest);

    let mut shorter = EmbedRequest::new(EMBED, vec!["sun".into()]);
    shorter.dimensions = Some(8);
    let err = provider.embed(&shorter).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::BadRequest);
    assert!(err.message.contains("32-dimensional"), "{}", err.message);

    shorter.dimensions = Some(32);
    assert_eq!(provider.embed(&shorter).await.unwrap().vectors[0].len(), 32);
}
