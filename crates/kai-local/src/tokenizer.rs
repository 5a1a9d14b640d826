//! Text to token ids and back, for chat models.
//!
//! Encoding uses the model's `tokenizer.json` when its directory has one; otherwise a
//! Hugging Face tokenizer is built from the GGUF metadata, as llama.cpp reads it:
//!
//! - `tokenizer.ggml.model = gpt2`: byte-level BPE over `tokens` and `merges`, the text first
//!   split by the expression `tokenizer.ggml.pre` names (`gpt2`, `smollm`, `llama-bpe`,
//!   `qwen2`, …). No space is put before the text: byte-level models never had one.
//! - `tokenizer.ggml.model = llama`: SentencePiece BPE (Llama 2, Mistral): merges ranked by
//!   the merged piece's score, a `▁` before the text and for every space, bytes the vocabulary
//!   lacks spelled as `<0xNN>` tokens.
//!
//! Control and user-defined tokens (`<|im_start|>`, `<s>`, …) are added tokens, so they encode
//! as one id wherever their text appears in a prompt.
//!
//! Decoding does not go through the tokenizer: each id maps to its bytes, and [`Utf8Stream`]
//! turns a stream of bytes into text, holding back a character split across tokens, so
//! streamed text never carries a replacement character that a later token would have
//! completed.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Map, Value, json};
use tokenizers::Tokenizer;

use crate::error::LoadError;
use crate::gguf::Metadata;

const TYPE_NORMAL: i64 = 1;
const TYPE_UNKNOWN: i64 = 2;
const TYPE_CONTROL: i64 = 3;
const TYPE_USER_DEFINED: i64 = 4;
const TYPE_BYTE: i64 = 6;

/// GPT-2's split, which byte-level BPE models use unless they name another.
const GPT2_SPLIT: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
/// Llama 3's split: numbers in groups of up to three.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen 2's split: Llama 3's with digits one by one.
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// A chat model's tokenizer.
pub(crate) struct TextTokenizer {
    inner: Tokenizer,
    /// The bytes each id stands for in generated text (none for control tokens).
    pieces: Vec<Vec<u8>>,
    /// SentencePiece vocabularies mark word starts with a space, which the first piece of an
    /// answer should not show.
    strips_leading_space: bool,
    bos: Option<u32>,
    adds_bos: bool,
}

impl TextTokenizer {
    /// The tokenizer of a GGUF model: `tokenizer_json` when given, else built from `meta`.
    pub(crate) fn load(
        meta: Metadata<'_>,
        tokenizer_json: Option<&Path>,
    ) -> Result<TextTokenizer, LoadError> {
        let model = meta.str("tokenizer.ggml.model")?;
        let tokens = meta.strings("tokenizer.ggml.tokens")?;
        let types = meta
            .opt_integers("tokenizer.ggml.token_type")?
            .unwrap_or_else(|| vec![TYPE_NORMAL; tokens.len()]);
        if types.len() != tokens.len() {
            return Err(LoadError::Corrupt {
                path: meta.path().to_owned(),
                why: format!(
                    "it lists {} tokens but {} token types",
                    tokens.len(),
                    types.len()
                ),
            });
        }
        let sentence_piece = match model {
            "gpt2" => false,
            "llama" => true,
            other => {
                return Err(LoadError::Unsupported {
                    path: meta.path().to_owned(),
                    why: format!(
                        "its tokenizer is of type `{other}`; kai builds `gpt2` (byte-level BPE) \
                         and `llama` (SentencePiece) tokenizers, or reads a tokenizer.json \
                         listed beside the model"
                    ),
                });
            }
        };
        let inner = match tokenizer_json {
            Some(path) => read_tokenizer_json(path)?,
            None if sentence_piece => {
                let scores = meta
                    .opt_floats("tokenizer.ggml.scores")?
                    .unwrap_or_else(|| vec![0.0; tokens.len()]);
                build(meta.path(), sentence_piece_json(&tokens, &types, &scores))?
            }
            None => {
                let merges = meta.strings("tokenizer.ggml.merges")?;
                let pre = meta.opt_str("tokenizer.ggml.pre")?.unwrap_or("gpt2");
                let split = byte_level_split(pre).ok_or_else(|| LoadError::Unsupported {
                    path: meta.path().to_owned(),
                    why: format!(
                        "its pre-tokenizer `{pre}` is not one kai knows (gpt2, smollm, \
                         llama-bpe, qwen2 and their aliases); add the model's tokenizer.json \
                         to its files"
                    ),
                })?;
                build(
                    meta.path(),
                    byte_level_json(&tokens, &types, &merges, split),
                )?
            }
        };
        let pieces = if sentence_piece {
            tokens
                .iter()
                .zip(&types)
                .map(|(token, &kind)| sentence_piece_bytes(token, kind))
                .collect()
        } else {
            let decoder = byte_level_decoder();
            tokens
                .iter()
                .zip(&types)
                .map(|(token, &kind)| byte_level_bytes(token, kind, &decoder))
                .collect()
        };
        let bos = meta.opt_u32("tokenizer.ggml.bos_token_id")?;
        let adds_bos = meta
            .opt_bool("tokenizer.ggml.add_bos_token")?
            .unwrap_or(sentence_piece);
        Ok(TextTokenizer {
            inner,
            pieces,
            strips_leading_space: sentence_piece,
            bos,
            adds_bos,
        })
    }

    /// The ids of `text`, special tokens' text included as their single ids, with the
    /// beginning-of-sequence token in front where the model wants one and the text lacks it.
    pub(crate) fn encode_prompt(&self, text: &str) -> Result<Vec<u32>, String> {
        let mut ids = self.encode(text)?;
        if self.adds_bos
            && let Some(bos) = self.bos
            && ids.first() != Some(&bos)
        {
            ids.insert(0, bos);
        }
        Ok(ids)
    }

    /// The ids of `text`, nothing added.
    pub(crate) fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        self.inner
            .encode(text, false)
            .map(|encoding| encoding.get_ids().to_vec())
            .map_err(|err| err.to_string())
    }

    /// The id of a token, by its text.
    pub(crate) fn token_id(&self, text: &str) -> Option<u32> {
        self.inner.token_to_id(text)
    }

    /// The text of a token as the vocabulary spells it.
    pub(crate) fn token_text(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }
}

/// Turns one answer's ids into text, piece by piece.
#[derive(Debug, Default)]
pub(crate) struct TokenStream {
    utf8: Utf8Stream,
    started: bool,
}

impl TokenStream {
    /// The text `id` completes (often all of it, sometimes nothing yet).
    pub(crate) fn push(&mut self, tokenizer: &TextTokenizer, id: u32) -> String {
        let bytes = tokenizer
            .pieces
            .get(id as usize)
            .map_or(&[][..], Vec::as_slice);
        let bytes = if !self.started && tokenizer.strips_leading_space {
            bytes.strip_prefix(b" ").unwrap_or(bytes)
        } else {
            bytes
        };
        if !bytes.is_empty() {
            self.started = true;
        }
        self.utf8.push(bytes)
    }

    /// What is left at the end: an incomplete character, as a replacement character.
    pub(crate) fn finish(&mut self) -> String {
        self.utf8.finish()
    }
}

/// Bytes to text, keeping a character split across pushes until it is whole. Bytes that can
/// never be valid UTF-8 become U+FFFD, as `String::from_utf8_lossy` would make them.
#[derive(Debug, Default)]
pub(crate) struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// Adds bytes; returns the text they complete.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut text = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    text.push_str(valid);
                    rest = &[];
                    break;
                }
                Err(err) => {
                    let (valid, after) = rest.split_at(err.valid_up_to());
                    text.push_str(&String::from_utf8_lossy(valid));
                    match err.error_len() {
                        Some(bad) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[bad..];
                        }
                        None => {
                            rest = after;
                            break;
                        }
                    }
                }
            }
        }
        self.pending = rest.to_vec();
        text
    }

    /// Ends the stream: an incomplete character left becomes U+FFFD.
    pub(crate) fn finish(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        text
    }
}

fn read_tokenizer_json(path: &Path) -> Result<Tokenizer, LoadError> {
    let mut tokenizer = Tokenizer::from_file(path).map_err(|err| LoadError::Corrupt {
        path: path.to_owned(),
        why: format!("it is not a tokenizer.json kai can read: {err}"),
    })?;
    // Prompts are never cut or padded: an over-long prompt is refused whole.
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(None)
        .map_err(|err| LoadError::Corrupt {
            path: path.to_owned(),
            why: err.to_string(),
        })?;
    Ok(tokenizer)
}

fn build(path: &Path, json: Value) -> Result<Tokenizer, LoadError> {
    json.to_string()
        .parse::<Tokenizer>()
        .map_err(|err| LoadError::Corrupt {
            path: path.to_owned(),
            why: format!("its vocabulary does not make a tokenizer: {err}"),
        })
}

/// The split expression for a `tokenizer.ggml.pre` name, and whether digits go one by one
/// before it.
fn byte_level_split(pre: &str) -> Option<(&'static str, bool)> {
    match pre {
        "gpt2" | "gpt-2" => Some((GPT2_SPLIT, false)),
        "smollm" => Some((GPT2_SPLIT, true)),
        "llama-bpe" | "llama3" | "llama-v3" => Some((LLAMA3_SPLIT, false)),
        "qwen2" | "deepseek-r1-qwen" => Some((QWEN2_SPLIT, false)),
        _ => None,
    }
}

/// Control, user-defined and unknown tokens, as `tokenizer.json` lists added tokens.
fn added_tokens(tokens: &[&str], types: &[i64]) -> Vec<Value> {
    tokens
        .iter()
        .zip(types)
        .enumerate()
        .filter(|(_, (_, kind))| matches!(**kind, TYPE_CONTROL | TYPE_USER_DEFINED | TYPE_UNKNOWN))
        .map(|(id, (token, kind))| {
            json!({
                "id": id,
                "content": token,
                "single_word": false,
                "lstrip": false,
                "rstrip": false,
                "normalized": false,
                "special": *kind != TYPE_USER_DEFINED,
            })
        })
        .collect()
}

/// Token → id, the first id where a vocabulary lists a token twice.
fn vocabulary(tokens: &[&str]) -> Map<String, Value> {
    let mut vocab = Map::new();
    for (id, token) in tokens.iter().enumerate() {
        if !vocab.contains_key(*token) {
            vocab.insert((*token).to_owned(), json!(id));
        }
    }
    vocab
}

fn byte_level_json(
    tokens: &[&str],
    types: &[i64],
    merges: &[&str],
    (split, digits_alone): (&str, bool),
) -> Value {
    let mut pre_tokenizers = Vec::new();
    if digits_alone {
        pre_tokenizers.push(json!({
            "type": "Split",
            "pattern": {"Regex": r"\p{N}"},
            "behavior": "Isolated",
            "invert": false,
        }));
    }
    pre_tokenizers.push(json!({
        "type": "Split",
        "pattern": {"Regex": split},
        "behavior": "Isolated",
        "invert": false,
    }));
    pre_tokenizers.push(json!({
        "type": "ByteLevel",
        "add_prefix_space": false,
        "trim_offsets": false,
        "use_regex": false,
    }));
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added_tokens(tokens, types),
        "normalizer": null,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": pre_tokenizers},
        "post_processor": null,
        "decoder": null,
        "model": {
            "type": "BPE",
            "dropout": null,
            "unk_token": null,
            "continuing_subword_prefix": null,
            "end_of_word_suffix": null,
            "fuse_unk": false,
            "byte_fallback": false,
            "ignore_merges": false,
            "vocab": vocabulary(tokens),
            "merges": merges,
        },
    })
}

/// SentencePiece BPE keeps no merge list, only a score per piece: a pair merges when the
/// piece it makes is in the vocabulary, and pairs making higher-scored pieces merge first
/// (how Hugging Face converts SentencePiece models).
fn sentence_piece_json(tokens: &[&str], types: &[i64], scores: &[f32]) -> Value {
    let vocab = vocabulary(tokens);
    let id = |piece: &str| vocab.get(piece).and_then(Value::as_u64);
    let mut merges: Vec<(f32, u64, u64, String)> = Vec::new();
    for (index, (token, kind)) in tokens.iter().zip(types).enumerate() {
        if *kind != TYPE_NORMAL {
            continue;
        }
        let score = scores.get(index).copied().unwrap_or(0.0);
        for (split, _) in token.char_indices().skip(1) {
            let (left, right) = token.split_at(split);
            if let (Some(left_id), Some(right_id)) = (id(left), id(right)) {
                merges.push((score, left_id, right_id, format!("{left} {right}")));
            }
        }
    }
    merges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let merges: Vec<String> = merges.into_iter().map(|(_, _, _, merge)| merge).collect();
    let unk = types
        .iter()
        .position(|kind| *kind == TYPE_UNKNOWN)
        .map(|index| tokens[index]);
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added_tokens(tokens, types),
        "normalizer": {
            "type": "Sequence",
            "normalizers": [
                {"type": "Prepend", "prepend": "\u{2581}"},
                {"type": "Replace", "pattern": {"String": " "}, "content": "\u{2581}"},
            ],
        },
        "pre_tokenizer": null,
        "post_processor": null,
        "decoder": null,
        "model": {
            "type": "BPE",
            "dropout": null,
            "unk_token": unk,
            "continuing_subword_prefix": null,
            "end_of_word_suffix": null,
            "fuse_unk": true,
            "byte_fallback": true,
            "ignore_merges": false,
            "vocab": vocab,
            "merges": merges,
        },
    })
}

/// GPT-2 spells each byte as a printable character: printable Latin-1 bytes as themselves,
/// the rest as the characters from U+0100 on, in order. This is that map, reversed.
fn byte_level_decoder() -> HashMap<char, u8> {
    let printable = |b: u8| (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
    let mut next = 0x100u32;
    let mut map = HashMap::with_capacity(256);
    for byte in 0..=u8::MAX {
        let c = if printable(byte) {
            char::from(byte)
        } else {
            next += 1;
            char::from_u32(next - 1).unwrap_or(char::REPLACEMENT_CHARACTER)
        };
        map.insert(c, byte);
    }
    map
}

fn byte_level_bytes(token: &str, kind: i64, decoder: &HashMap<char, u8>) -> Vec<u8> {
    match kind {
        TYPE_CONTROL => Vec::new(),
        TYPE_USER_DEFINED => token.as_bytes().to_vec(),
        _ => {
            let mut bytes = Vec::with_capacity(token.len());
            for c in token.chars() {
                match decoder.get(&c) {
                    Some(byte) => bytes.push(*byte),
                    None => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                }
            }
            bytes
        }
    }
}

fn sentence_piece_bytes(token: &str, kind: i64) -> Vec<u8> {
    match kind {
        TYPE_CONTROL => Vec::new(),
        TYPE_BYTE => token
            .strip_prefix("<0x")
            .and_then(|hex| hex.strip_suffix('>'))
            .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            .map_or_else(|| token.as_bytes().to_vec(), |byte| vec![byte]),
        TYPE_USER_DEFINED => token.as_bytes().to_vec(),
        _ => token.replace('\u{2581}', " ").into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_level_characters_map_back_to_bytes() {
        let decoder = byte_level_decoder();
        assert_eq!(decoder.len(), 256);
        assert_eq!(decoder.get(&'A'), Some(&b'A'));
        assert_eq!(decoder.get(&'\u{0120}'), Some(&b' '));
        assert_eq!(decoder.get(&'\u{010A}'), Some(&b'\n'));
        assert_eq!(decoder.get(&'\u{0100}'), Some(&0));
        assert_eq!(decoder.get(&'\u{00E9}'), Some(&0xE9));
        assert_eq!(
            byte_level_bytes("\u{0120}world", TYPE_NORMAL, &decoder),
            b" world"
        );
        assert_eq!(byte_level_bytes("<|im_end|>", TYPE_CONTROL, &decoder), b"");
    }

    #[test]
    fn sentence_pieces_spell_spaces_and_bytes() {
        assert_eq!(
            sentence_piece_bytes("\u{2581}Hello", TYPE_NORMAL),
            b" Hello"
        );
        assert_eq!(sentence_piece_bytes("<0x0A>", TYPE_BYTE), b"\n");
        assert_eq!(sentence_piece_bytes("</s>", TYPE_CONTROL), b"");
    }

    #[test]
    fn sentence_piece_vocabularies_merge_by_score_and_fall_back_to_bytes() {
        let bytes: Vec<String> = (0..=255u8).map(|b| format!("<0x{b:02X}>")).collect();
        let mut tokens = vec!["<unk>", "<s>", "</s>"];
        tokens.extend(bytes.iter().map(String::as_str));
        let words = [
            "\u{2581}",
            "h",
            "e",
            "l",
            "o",
            "\u{2581}h",
            "ll",
            "\u{2581}he",
            "llo",
        ];
        tokens.extend(words);
        tokens.push("\u{2581}hello");
        let mut types = vec![TYPE_UNKNOWN, TYPE_CONTROL, TYPE_CONTROL];
        types.extend(std::iter::repeat_n(TYPE_BYTE, 256));
        types.extend(std::iter::repeat_n(TYPE_NORMAL, words.len() + 1));
        let scores: Vec<f32> = (0..tokens.len()).map(|id| -(id as f32)).collect();
        let tokenizer = build(
            Path::new("test.gguf"),
            sentence_piece_json(&tokens, &types, &scores),
        )
        .unwrap();
        let id = |piece: &str| tokens.iter().position(|t| *t == piece).unwrap() as u32;
        let encode = |text: &str| tokenizer.encode(text, false).unwrap().get_ids().to_vec();
        // A `▁` goes before the text; merges rebuild the whole word.
        assert_eq!(encode("hello"), vec![id("\u{2581}hello")]);
        assert_eq!(encode("<s>hello"), vec![1, id("\u{2581}hello")]);
        // Characters the vocabulary lacks are spelled as their UTF-8 bytes.
        assert_eq!(
            encode("\u{e9}"),
            vec![id("\u{2581}"), id("<0xC3>"), id("<0xA9>")]
        );
    }

    #[test]
    fn utf8_stream_holds_split_characters() {
        let mut stream = Utf8Stream::default();
        let euro = "€".as_bytes();
        assert_eq!(stream.push(b"a"), "a");
        assert_eq!(stream.push(&euro[..1]), "");
        assert_eq!(stream.push(&euro[1..2]), "");
        assert_eq!(stream.push(&euro[2..]), "€");
        assert_eq!(stream.push(&[0xFF, b'b']), "\u{FFFD}b");
        assert_eq!(stream.push(&euro[..2]), "");
        assert_eq!(stream.finish(), "\u{FFFD}");
    }
}
