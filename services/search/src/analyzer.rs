//! How text becomes terms: words segmented by jieba (Chinese, and the
//! Latin words between), kept when they hold a letter or digit, numbered
//! one after the other (so phrases match whatever punctuation or spacing
//! separates the words), lowercased and stemmed as English.
//!
//! Indexed text and queries go through the same analyzer; the query side
//! also drops function words ([`is_stopword`]) before building its clauses.

use std::sync::LazyLock;

use jieba_rs::{Jieba, TokenizeMode};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, Stemmer, TextAnalyzer, Token, TokenStream, Tokenizer,
};

/// The name the analyzer is registered under in the index.
pub const WORDS: &str = "pinhole_words";
/// Lowercased whole values (usernames, tags, cameras).
pub const KEYWORD: &str = "pinhole_keyword";

static JIEBA: LazyLock<Jieba> = LazyLock::new(Jieba::new);

/// Loads the segmentation dictionary now rather than on the first query.
pub fn warm_up() {
    LazyLock::force(&JIEBA);
}

/// The analyzer of free text.
pub fn words() -> TextAnalyzer {
    TextAnalyzer::builder(Segmenter)
        .filter(RemoveLongFilter::limit(64))
        .filter(LowerCaser)
        .filter(Stemmer::new(Language::English))
        .build()
}

/// The analyzer of whole values: one lowercased term.
pub fn keyword() -> TextAnalyzer {
    TextAnalyzer::builder(tantivy::tokenizer::RawTokenizer::default())
        .filter(LowerCaser)
        .build()
}

/// The terms of `text` in order, as the index holds them.
pub fn terms(text: &str) -> Vec<String> {
    let mut analyzer = words();
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}

/// Chinese and Japanese function words that say little about a photo
/// (的, 和, 里 …): a query does not require them.
pub fn is_stopword(term: &str) -> bool {
    const STOP: &[&str] = &[
        "的", "了", "和", "与", "及", "在", "里", "中", "是", "之", "或", "也", "把", "被", "于",
        "很", "都", "着", "这", "那", "有", "个", "の", "に", "は", "を", "が", "と", "で", "も",
        "へ", "や",
    ];
    STOP.contains(&term)
}

/// Whether a term is written in a script with letters worth a typo
/// allowance (Latin and the like, not Chinese characters).
pub fn is_alphabetic_word(term: &str) -> bool {
    term.chars()
        .all(|c| c.is_alphabetic() && (c as u32) < 0x2E80)
}

/// Jieba's words with a letter or digit in them, numbered 0, 1, 2 …
#[derive(Clone, Default)]
struct Segmenter;

impl Tokenizer for Segmenter {
    type TokenStream<'a> = Segments;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Segments {
        let mut tokens = Vec::new();
        for w in JIEBA.tokenize(text, TokenizeMode::Default, true) {
            if !w.word.chars().any(char::is_alphanumeric) {
                continue;
            }
            tokens.push(Token {
                offset_from: w.byte_start,
                offset_to: w.byte_start + w.word.len(),
                position: tokens.len(),
                text: w.word.to_owned(),
                position_length: 1,
            });
        }
        Segments {
            tokens,
            next: 0,
            current: Token::default(),
        }
    }
}

struct Segments {
    tokens: Vec<Token>,
    next: usize,
    current: Token,
}

impl TokenStream for Segments {
    fn advance(&mut self) -> bool {
        match self.tokens.get_mut(self.next) {
            Some(t) => {
                self.current = std::mem::take(t);
                self.next += 1;
                true
            }
            None => false,
        }
    }

    fn token(&self) -> &Token {
        &self.current
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_is_segmented_into_words() {
        assert_eq!(
            terms("森林中的浓雾与阳光"),
            ["森林", "中", "的", "浓雾", "与", "阳光"]
        );
        let query: Vec<String> = terms("森林里浓雾和阳光")
            .into_iter()
            .filter(|t| !is_stopword(t))
            .collect();
        assert_eq!(query, ["森林", "浓雾", "阳光"]);
    }

    #[test]
    fn english_is_lowercased_and_stemmed_and_punctuation_dropped() {
        assert_eq!(
            terms("Misty Forests, at sunrise!"),
            ["misti", "forest", "at", "sunris"]
        );
        // Positions follow the kept words, whatever separates them.
        let mut a = words();
        let mut s = a.token_stream("misty -- forest");
        let mut positions = Vec::new();
        while s.advance() {
            positions.push(s.token().position);
        }
        assert_eq!(positions, [0, 1]);
    }

    #[test]
    fn mixed_text_keeps_both_scripts() {
        let t = terms("Fuji 富士山の朝");
        assert!(t.contains(&"fuji".to_owned()), "{t:?}");
        assert!(t.iter().any(|w| w.contains("富士")), "{t:?}");
    }
}
