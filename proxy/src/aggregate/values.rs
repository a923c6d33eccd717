//! The incoming request's values, as step templates and jq rules see them.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

/// Characters left as they are when a value is put into a path or query.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// What an aggregation may read from the request that triggered it.
#[derive(Clone, Debug, Default)]
pub struct RequestValues {
    /// Method.
    pub method: String,
    /// Path (without query).
    pub path: String,
    /// Path parameters bound by the match.
    pub params: Vec<(String, String)>,
    /// Query parameters, as sent (still percent-encoded).
    pub query: Vec<(String, String)>,
    /// Headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// The calling client, when known.
    pub client: Option<String>,
    /// The request id.
    pub request_id: String,
}

impl RequestValues {
    /// The value of a step placeholder: `{id}`, `{query.NAME}`, `{header.NAME}`, `{client}`,
    /// `{requestId}`, `{STEP.FIELD}`. `encode` percent-encodes values that came from headers or
    /// step bodies (path and query already arrive encoded).
    pub fn lookup<'v>(
        &self,
        name: &str,
        bodies: impl Fn(&str) -> Option<&'v Value>,
        encode: bool,
    ) -> Option<String> {
        let find = |list: &[(String, String)], key: &str| {
            list.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
        };
        let (raw, trusted) = match name.split_once('.') {
            Some(("query", key)) => (find(&self.query, key), true),
            Some(("header", key)) => (find(&self.headers, &key.to_ascii_lowercase()), false),
            Some((step, path)) => (bodies(step).and_then(|body| lookup_json(body, path)), false),
            None if name == "client" => (self.client.clone(), false),
            None if name == "requestId" => (Some(self.request_id.clone()), true),
            None => (find(&self.params, name), true),
        };
        raw.map(|value| {
            if encode && !trusted {
                utf8_percent_encode(&value, UNRESERVED).to_string()
            } else {
                value
            }
        })
    }

    /// `$request` for jq rules.
    pub fn document(&self) -> Value {
        let object = |list: &[(String, String)]| {
            Value::Object(
                list.iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            )
        };
        json!({
            "method": self.method,
            "path": self.path,
            "params": object(&self.params),
            "query": object(&self.query),
            "headers": object(&self.headers),
            "client": self.client,
            "requestId": self.request_id,
        })
    }
}

/// A field of a JSON value by dotted path (`seller.id`, `items.0.sku`) as text: strings as they
/// are, numbers and booleans in JSON form; absent, null, arrays and objects give nothing.
pub fn lookup_json(value: &Value, path: &str) -> Option<String> {
    let mut node = value;
    for part in path.split('.') {
        node = match node {
            Value::Object(map) => map.get(part)?,
            Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    match node {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_request_values_and_step_fields() {
        let request = RequestValues {
            params: vec![("id".into(), "42".into())],
            query: vec![("lang".into(), "en".into())],
            headers: vec![("x-trace".into(), "a b".into())],
            client: Some("mobile".into()),
            request_id: "r1".into(),
            ..Default::default()
        };
        let product = json!({"seller": {"id": "s/1"}, "n": 3});
        let bodies = |step: &str| (step == "product").then_some(&product);
        assert_eq!(request.lookup("id", bodies, true).as_deref(), Some("42"));
        assert_eq!(
            request.lookup("query.lang", bodies, true).as_deref(),
            Some("en")
        );
        assert_eq!(
            request.lookup("header.X-Trace", bodies, true).as_deref(),
            Some("a%20b")
        );
        assert_eq!(
            request.lookup("header.x-trace", bodies, false).as_deref(),
            Some("a b")
        );
        assert_eq!(
            request.lookup("product.seller.id", bodies, true).as_deref(),
            Some("s%2F1")
        );
        assert_eq!(
            request.lookup("product.n", bodies, true).as_deref(),
            Some("3")
        );
        assert_eq!(request.lookup("product.missing", bodies, true), None);
        assert_eq!(
            request.lookup("client", bodies, true).as_deref(),
            Some("mobile")
        );
        assert_eq!(
            request.lookup("requestId", bodies, true).as_deref(),
            Some("r1")
        );
    }
}
