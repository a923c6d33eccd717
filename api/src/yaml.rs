//! Reading a YAML stream into JSON documents the way `kubectl apply` reads a manifest.
//!
//! Parsed by libyaml's algorithm (`serde_norway`, a maintained fork of `serde_yaml`): it reads
//! resources in 1.6× fewer instructions than serde-saphyr, and reading was half the cost of
//! `render`. Into JSON it would, alone, differ from kubectl (whose reader, go-yaml v2, follows
//! YAML 1.1) in three ways that [`Strict`] corrects:
//! - a repeated key would silently replace the first: here it is an error, as in kubectl;
//! - a merge key (`<<: *defaults`) would stay a field called `<<`: here it merges (keys already
//!   in the mapping win, then earlier merged mappings over later ones);
//! - the plain (unquoted) words `y`, `yes`, `on` (and `n`, `no`, `off`, in the usual three
//!   casings) would stay text: here they are booleans, as YAML 1.1 and kubectl read them.
//!
//! A local tag (`!thing value`) is dropped and its value kept. Anchors and aliases are resolved
//! by the parser. Still read as YAML 1.2, unlike kubectl: `0777` stays text (kubectl: octal 511)
//! and `1_000` too (kubectl: 1000) — quote or write such numbers plainly. serde-saphyr stays the
//! writer of YAML.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, EnumAccess, Error as _, MapAccess, SeqAccess};
use serde::de::{VariantAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Every document of a `---`-separated YAML stream, as JSON; empty documents are `null`.
pub fn documents(text: &str) -> Result<Vec<Value>, String> {
    serde_norway::Deserializer::from_str(text)
        .map(|document| {
            Strict { text }
                .deserialize(document)
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// Reads one JSON value with kubectl's rules (see the module documentation). Knows the text
/// being read, to tell a plain scalar from a quoted one.
#[derive(Clone, Copy)]
struct Strict<'t> {
    text: &'t str,
}

const MERGE_KEY: &str = "<<";

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Strict<'_> {
    /// Whether `scalar`, a slice of the text, was written without quotes. A quoted scalar that
    /// needed no unescaping is handed over as the slice between its quotes.
    fn is_plain(self, scalar: &str) -> bool {
        let start = (scalar.as_ptr() as usize).wrapping_sub(self.text.as_ptr() as usize);
        let Some(before) = start.checked_sub(1) else {
            return true;
        };
        !matches!(self.text.as_bytes().get(before), Some(b'\'' | b'"'))
    }
}

/// YAML 1.1's boolean words, as kubectl reads them when they stand unquoted.
fn yaml_1_1_bool(word: &str) -> Option<bool> {
    match word {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("{v} is not a number JSON can hold")))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Value, E> {
        // A plain scalar always arrives as a slice of the text (nothing to unescape).
        match yaml_1_1_bool(v) {
            Some(boolean) if self.is_plain(v) => Ok(Value::Bool(boolean)),
            _ => Ok(Value::String(v.to_owned())),
        }
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    /// A tagged value (`!thing value`): the tag is dropped.
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let (_tag, value) = data.variant::<String>()?;
        value.newtype_variant_seed(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = Map::new();
        let mut merged = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self)?;
            if key == MERGE_KEY {
                merged.push(value);
            } else if fields.contains_key(&key) {
                return Err(A::Error::custom(format!(
                    "mapping key {key:?} already defined"
                )));
            } else {
                fields.insert(key, value);
            }
        }
        for value in merged {
            let sources = match value {
                Value::Array(sources) => sources,
                other => vec![other],
            };
            for source in sources {
                let Value::Object(source) = source else {
                    return Err(A::Error::custom(
                        "a merge key (<<) takes a mapping or a list of mappings",
                    ));
                };
                for (key, value) in source {
                    fields.entry(key).or_insert(value);
                }
            }
        }
        Ok(Value::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_every_document_with_anchors_and_merge_keys() {
        let text = "\
a: 1
base: &base {port: 8080, timeout: 2s}
backend:
  <<: *base
  timeout: 5s
list: [*base]
both:
  <<: [{x: 1, y: 1}, {y: 2, z: 2}]
---
---
- plain
- 'quoted: text'
- 0.5
- null
- true
";
        assert_eq!(
            documents(text).unwrap(),
            [
                json!({
                    "a": 1,
                    "base": {"port": 8080, "timeout": "2s"},
                    "backend": {"port": 8080, "timeout": "5s"},
                    "list": [{"port": 8080, "timeout": "2s"}],
                    "both": {"x": 1, "y": 1, "z": 2},
                }),
                Value::Null,
                json!(["plain", "quoted: text", 0.5, null, true]),
            ]
        );
    }

    #[test]
    fn keys_that_look_like_numbers_or_booleans_stay_text() {
        assert_eq!(
            documents("200: ok\ntrue: x\n1.5: x\n").unwrap(),
            [json!({"200": "ok", "true": "x", "1.5": "x"})]
        );
    }

    #[test]
    fn plain_yaml_1_1_booleans_are_booleans_and_quoted_ones_text() {
        let text = "\
plain: [yes, No, ON, off, y, N]
quoted: ['yes', \"no\", 'on', \"off\"]
escaped: \"y\\u0065s\"
words: [yesterday, onward, 'it''s on']
yes: key
block: |
  yes
tagged: !thing yes
---
on
";
        assert_eq!(
            documents(text).unwrap(),
            [
                json!({
                    "plain": [true, false, true, false, true, false],
                    "quoted": ["yes", "no", "on", "off"],
                    "escaped": "yes",
                    "words": ["yesterday", "onward", "it's on"],
                    "yes": "key",
                    "block": "yes\n",
                    "tagged": true,
                }),
                json!(true),
            ]
        );
    }

    #[test]
    fn refuses_a_repeated_key_and_a_malformed_stream() {
        let repeated = documents("spec:\n  name: a\n  name: b\n").unwrap_err();
        assert!(
            repeated.contains("mapping key \"name\" already defined"),
            "{repeated}"
        );
        let broken = documents("spec: [unclosed\n").unwrap_err();
        assert!(broken.contains("line"), "{broken}");
        let merge = documents("a:\n  <<: 3\n").unwrap_err();
        assert!(merge.contains("merge key"), "{merge}");
    }
}
