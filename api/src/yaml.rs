//! Reading a YAML stream into JSON documents the way `kubectl apply` reads a manifest.
//!
//! Parsed by libyaml's algorithm (`serde_norway`, a maintained fork of `serde_yaml`): it reads
//! resources in 1.6× fewer instructions than serde-saphyr, and reading was half the cost of
//! `render`. Into JSON it would, alone, let a repeated key silently replace the first and keep
//! a merge key (`<<: *defaults`) as a field called `<<`; [`Strict`] does what kubectl does
//! instead: a repeated key is an error, merge keys merge (keys already in the mapping win, then
//! earlier merged mappings over later ones). Anchors and aliases are resolved by the parser.
//! serde-saphyr stays the writer of YAML.

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Every document of a `---`-separated YAML stream, as JSON; empty documents are `null`.
pub fn documents(text: &str) -> Result<Vec<Value>, String> {
    serde_norway::Deserializer::from_str(text)
        .map(|document| {
            Strict::deserialize(document)
                .map(|strict| strict.0)
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// A JSON value read with kubectl's rules for keys (see the module documentation).
struct Strict(Value);

const MERGE_KEY: &str = "<<";

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
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
        Strict::deserialize(deserializer).map(|strict| strict.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = Map::new();
        let mut merged = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
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
            documents("200: ok\ntrue: yes\n1.5: x\n").unwrap(),
            [json!({"200": "ok", "true": "yes", "1.5": "x"})]
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
