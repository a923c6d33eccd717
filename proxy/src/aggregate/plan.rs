//! Compiled aggregation plans: templates parsed, jq rules compiled and the step graph indexed
//! once, when a route table loads — never per request.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_api::expression::{Expression, RULE_VARIABLES};
use gatehouse_api::prepare;
use gatehouse_api::route_table::StepFailurePolicy;
use gatehouse_api::route_table::{AggregatePlan, Upstream};
use gatehouse_api::template::Template;

use crate::runtime::addresses::ResolvedUpstream;

/// One step, ready to run.
#[derive(Debug)]
pub struct StepProgram {
    /// Step name.
    pub name: String,
    /// Where the call goes.
    pub upstream: Upstream,
    /// Where it is now: the address book's entry, refreshed in the background (no address
    /// while the service does not resolve).
    pub resolved: Arc<ResolvedUpstream>,
    /// HTTP method.
    pub method: http::Method,
    /// Path and query template.
    pub path: Template,
    /// Header templates by lower-case name, in name order.
    pub headers: Vec<(http::HeaderName, Template)>,
    /// Body template.
    pub body: Option<Template>,
    /// Indices of the steps this one waits for.
    pub after: Vec<usize>,
    /// A failure does not fail the call under `bestEffort`.
    pub optional: bool,
    /// Upper bound for the call.
    pub timeout: Option<Duration>,
    /// Filter applied to the step's body.
    pub filter: Option<Expression>,
}

/// A whole aggregation, ready to run.
#[derive(Debug)]
pub struct AggregationProgram {
    /// Steps, in the table's order.
    pub steps: Vec<StepProgram>,
    /// The response rule.
    pub response: Expression,
    /// Deadline for the whole call.
    pub timeout: Duration,
    /// What failed steps do to the call.
    pub failure_policy: StepFailurePolicy,
    /// Largest step response read.
    pub max_step_response_bytes: usize,
}

impl AggregationProgram {
    /// Compiles a plan, taking each step's address book entry from `resolve`. Errors name the
    /// step and field; the table is refused with them. An upstream that does not resolve is
    /// not an error here: its step fails while it has no address.
    pub fn compile(
        plan: &AggregatePlan,
        mut resolve: impl FnMut(&Upstream) -> Arc<ResolvedUpstream>,
    ) -> Result<Self, String> {
        let index: BTreeMap<&str, usize> = plan
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), i))
            .collect();
        let mut steps = Vec::with_capacity(plan.steps.len());
        for step in &plan.steps {
            let at = |field: &str, e: String| format!("step {}: {field}: {e}", step.name);
            let method = prepare::method(&step.method).map_err(|e| at("method", e))?;
            let path = Template::parse(&step.path).map_err(|e| at("path", e))?;
            let mut headers = Vec::new();
            for (name, value) in &step.headers {
                let header = prepare::header_name(name).map_err(|e| at("headers", e))?;
                let template = prepare::header_template(value).map_err(|e| at("headers", e))?;
                headers.push((header, template));
            }
            let body = match &step.body {
                Some(text) => Some(Template::parse(text).map_err(|e| at("body", e))?),
                None => None,
            };
            let after = step
                .after
                .iter()
                .map(|dep| {
                    index
                        .get(dep.as_str())
                        .copied()
                        .ok_or_else(|| at("after", format!("no step {dep}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let filter = match &step.filter {
                Some(code) => {
                    Some(Expression::compile(code, &RULE_VARIABLES).map_err(|e| at("filter", e))?)
                }
                None => None,
            };
            steps.push(StepProgram {
                name: step.name.clone(),
                resolved: resolve(&step.upstream),
                upstream: step.upstream.clone(),
                method,
                path,
                headers,
                body,
                after,
                optional: step.optional,
                timeout: step.timeout_ms.map(Duration::from_millis),
                filter,
            });
        }
        let response = Expression::compile(&plan.response, &RULE_VARIABLES)
            .map_err(|e| format!("response: {e}"))?;
        Ok(Self {
            steps,
            response,
            timeout: Duration::from_millis(plan.timeout_ms),
            failure_policy: plan.failure_policy,
            max_step_response_bytes: usize::try_from(plan.max_step_response_bytes)
                .unwrap_or(usize::MAX),
        })
    }
}
