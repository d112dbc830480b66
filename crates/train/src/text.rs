//! Portuguese tokenisation for the content model: lower-casing, accent folding and
//! Portuguese stop words, so that "Eleição", "eleicao" and "ELEIÇÃO" are one term and
//! "de", "não", "também" carry no weight.

use std::collections::HashSet;
use std::sync::LazyLock;

/// Portuguese function words, already accent-folded. News text is full of them; they
/// would dominate every TF-IDF vector and make all articles look alike.
const STOP_WORDS: &[&str] = &[
    "a", "ao", "aos", "aquela", "aquelas", "aquele", "aqueles", "aquilo", "as", "ate", "com",
    "como", "contra", "da", "das", "de", "dela", "delas", "dele", "deles", "depois", "desde",
    "dessa", "dessas", "desse", "desses", "desta", "destas", "deste", "destes", "do", "dos", "e",
    "ela", "elas", "ele", "eles", "em", "entre", "era", "eram", "essa", "essas", "esse", "esses",
    "esta", "estao", "estas", "estava", "estavam", "este", "estes", "estou", "eu", "foi", "foram",
    "fosse", "ha", "isso", "isto", "ja", "la", "lhe", "lhes", "mais", "mas", "me", "mesmo", "meu",
    "meus", "minha", "minhas", "muito", "muitos", "na", "nao", "nas", "nem", "no", "nos", "nossa",
    "nossas", "nosso", "nossos", "num", "numa", "o", "os", "ou", "para", "pela", "pelas", "pelo",
    "pelos", "por", "porque", "qual", "quais", "quando", "que", "quem", "sao", "se", "seja", "sem",
    "ser", "sera", "seu", "seus", "so", "sua", "suas", "tambem", "te", "tem", "tinha", "tinham",
    "to", "tu", "tua", "tuas", "um", "uma", "umas", "uns", "voce", "voces", "vos", "sobre", "apos",
    "ainda", "onde", "assim", "cada", "pode", "podem", "vai", "vao", "ter", "teve", "todo",
    "todos", "toda", "todas", "outro", "outra", "outros", "outras", "disse", "diz", "segundo",
    "fazer", "feito", "ano", "anos", "dia", "dias", "vez", "vezes", "bem", "aqui", "agora",
    "entao", "estar", "sido", "havia", "pois", "quanto", "tanto", "tao", "durante", "partir",
    "neste", "nesta", "nesse", "nessa", "naquele", "naquela", "deve", "devem", "g1",
];

static STOP: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| STOP_WORDS.iter().copied().collect());

/// Whether `token` (lower-case, folded) is a Portuguese stop word.
pub fn is_stop_word(token: &str) -> bool {
    STOP.contains(token)
}

/// Lower-cases `c` and strips Portuguese (and other Latin-1) diacritics. Characters
/// that are not letters or digits map to `None` (they separate tokens).
fn fold(c: char) -> Option<char> {
    let c = match c {
        'á' | 'à' | 'â' | 'ã' | 'ä' | 'Á' | 'À' | 'Â' | 'Ã' | 'Ä' => 'a',
        'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' | 'Ë' => 'e',
        'í' | 'ì' | 'î' | 'ï' | 'Í' | 'Ì' | 'Î' | 'Ï' => 'i',
        'ó' | 'ò' | 'ô' | 'õ' | 'ö' | 'Ó' | 'Ò' | 'Ô' | 'Õ' | 'Ö' => 'o',
        'ú' | 'ù' | 'û' | 'ü' | 'Ú' | 'Ù' | 'Û' | 'Ü' => 'u',
        'ç' | 'Ç' => 'c',
        'ñ' | 'Ñ' => 'n',
        c if c.is_ascii_alphanumeric() => c.to_ascii_lowercase(),
        c if c.is_alphabetic() => return c.to_lowercase().next(),
        _ => return None,
    };
    Some(c)
}

/// Calls `emit` with every content token of `text`: folded, at least two characters,
/// not purely numeric, not a stop word. Reuses one buffer: tokenising the whole
/// catalogue is the hot loop of content training.
pub fn for_each_token(text: &str, mut emit: impl FnMut(&str)) {
    let mut buf = String::with_capacity(32);
    let mut flush = |buf: &mut String| {
        if buf.len() >= 2 && !buf.bytes().all(|b| b.is_ascii_digit()) && !is_stop_word(buf) {
            emit(buf);
        }
        buf.clear();
    };
    for c in text.chars() {
        match fold(c) {
            Some(f) => buf.push(f),
            None => flush(&mut buf),
        }
    }
    flush(&mut buf);
}

/// The content tokens of `text` (see `for_each_token`).
pub fn tokenize(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for_each_token(text, |t| out.push(t.to_owned()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_accents_and_case() {
        assert_eq!(
            tokenize("ELEIÇÃO em São Paulo: atenção à votação"),
            vec!["eleicao", "paulo", "atencao", "votacao"]
        );
        assert_eq!(tokenize("Eleição"), tokenize("eleicao"));
    }

    #[test]
    fn drops_portuguese_stop_words_numbers_and_single_letters() {
        // "sao" is also the folded verb "são" and is a stop word; "não", "também", "de",
        // "a" and bare numbers carry no topic.
        assert_eq!(
            tokenize("Não, também de a 2022 x Flamengo vence o Vasco por 3 a 1"),
            vec!["flamengo", "vence", "vasco"]
        );
        assert!(is_stop_word("nao"));
        assert!(
            !is_stop_word("the"),
            "English stop words are not the language here"
        );
    }

    #[test]
    fn splits_on_punctuation_and_newlines() {
        assert_eq!(
            tokenize("\nCopa-2022;\"seleção\"\tconvocada"),
            vec!["copa", "selecao", "convocada"]
        );
        assert!(tokenize("").is_empty());
    }
}
