//! Aggregations: several backend calls, one consolidated answer.

use super::string_map::StringMap;

use kube::KubeSchema;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::method::HttpMethod;
use super::patterns::*;

/// What happens when a step fails or times out.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum FailurePolicy {
    /// Every step must succeed, optional or not: any failure answers 502 naming the step.
    AllOrNothing,
    /// A failed required step answers 502 naming the step; failed optional steps become `null`
    /// and are listed in the response's `errors` section and the `Gatehouse-Partial` header.
    #[default]
    BestEffort,
}

/// The backend call one step makes.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepCall {
    /// Name of a Service in the same namespace.
    #[schemars(length(max = MAX_NAME), pattern(DNS_LABEL))]
    pub service: String,
    /// Service port. Defaults to 80.
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
    /// Method. Defaults to GET.
    #[serde(default = "default_method")]
    pub method: HttpMethod,
    /// Path and query sent upstream. Placeholders: `{param}` (a path parameter of the match),
    /// `{query.NAME}`, `{header.NAME}`, `{client}`, `{requestId}`, and `{STEP.FIELD.PATH}` (a
    /// field of an earlier step's JSON body; that step must be listed in `after`).
    #[schemars(length(min = 1, max = MAX_PATH), pattern(STEP_PATH))]
    pub path: String,
    /// Request headers, with the same placeholders as `path`; values hold no control characters
    /// (CR, LF, NUL…).
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    #[schemars(extend("maxProperties" = MAX_CONDITIONS, "additionalProperties" = header_values_schema()))]
    pub headers: StringMap,
    /// Request body, with the same placeholders as `path`.
    #[schemars(length(max = MAX_BODY))]
    pub body: Option<String>,
}

fn default_method() -> HttpMethod {
    HttpMethod::Get
}

/// One backend call of an aggregation.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// Step name, unique within the aggregation. Its (filtered) JSON body is `.NAME` in the
    /// response rule.
    #[schemars(length(max = MAX_NAME), pattern(IDENTIFIER))]
    pub name: String,
    /// The backend call.
    pub call: StepCall,
    /// Steps that must finish before this one starts. Steps with no `after` start at once, in
    /// parallel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_STEPS), inner(length(max = MAX_NAME)))]
    pub after: Vec<String>,
    /// When true, a failure of this step does not fail the call: its value becomes `null`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
    /// Upper bound for this call, e.g. `300ms`. Defaults to what is left of the aggregation's
    /// `timeout`.
    #[schemars(length(max = 32), pattern(DURATION))]
    #[x_kube(validation = Rule::new(NONZERO_DURATION_RULE).message(NONZERO_DURATION_MESSAGE))]
    pub timeout: Option<String>,
    /// jq filter applied to this step's JSON body before the response rule runs, e.g.
    /// `{id, title, sellerId}`.
    #[schemars(length(max = MAX_EXPRESSION))]
    pub filter: Option<String>,
}

/// Several backend calls and the rule that turns their results into one response.
#[skip_serializing_none]
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Aggregation {
    /// The backend calls; step names are unique (the list is keyed by name).
    #[schemars(length(min = 1, max = MAX_STEPS))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub steps: Vec<Step>,
    /// jq expression computing the response body. Its input is an object with one key per step
    /// holding that step's JSON body (`null` when an optional step failed); `$request` holds
    /// `method`, `path`, `params`, `query` and `headers`, and `$steps` holds each step's
    /// `status`, `headers` and `error`. Example:
    /// `{id: .product.id, seller: .seller.name, reviews: (.reviews // [])}`.
    #[schemars(length(min = 1, max = MAX_EXPRESSION))]
    pub response: String,
    /// Deadline for the whole call, e.g. `2s`. Defaults to 5s.
    #[serde(default = "default_aggregation_timeout")]
    #[schemars(length(max = 32), pattern(DURATION))]
    #[x_kube(validation = Rule::new(NONZERO_DURATION_RULE).message(NONZERO_DURATION_MESSAGE))]
    pub timeout: String,
    /// What a failed step does to the call. Defaults to `bestEffort`.
    #[serde(default)]
    pub failure_policy: FailurePolicy,
    /// Largest step response read, in bytes; a bigger one fails that step. Defaults to 1 MiB.
    #[serde(default = "default_max_step_bytes")]
    #[schemars(range(min = 1024, max = 67108864))]
    pub max_step_response_bytes: i32,
}

fn default_aggregation_timeout() -> String {
    "5s".to_owned()
}

fn default_max_step_bytes() -> i32 {
    1 << 20
}
