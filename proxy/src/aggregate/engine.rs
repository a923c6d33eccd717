//! Running an aggregation: steps as a graph, bounded by per-step timeouts and one deadline.
//!
//! Steps with nothing to wait for start at once and run concurrently; a step starts as soon as
//! the steps it waits for have finished, with whatever time is left. A step that cannot start
//! before the deadline is never started. Returning early (a fatal failure) or being dropped (the
//! client went away) drops every call still in flight, which closes its upstream connection.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use gatehouse_api::expression::Expression;
use gatehouse_api::route_table::StepFailurePolicy;
use gatehouse_api::template::Template;
use serde_json::{Map, Value, json};

use super::metrics::AggregationMetrics;
use super::plan::{AggregationProgram, StepProgram};
use super::transport::{CallError, StepRequest, StepResponse, StepTransport};
use super::values::RequestValues;

/// Header telling a step's upstream how many milliseconds it has left.
pub const BUDGET_HEADER: &str = "x-gatehouse-timeout-ms";

/// Why a step has no value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailureReason {
    /// The upstream could not be reached or resolved.
    Connect,
    /// The step's own timeout passed.
    Timeout,
    /// The aggregation's deadline passed while the step ran, or before it could start.
    Deadline,
    /// The upstream answered with a non-2xx status.
    Status(u16),
    /// The response body was over the limit.
    TooLarge,
    /// The upstream broke the exchange.
    Protocol,
    /// The step's filter failed.
    Filter,
    /// A step it waits for failed, so it was not run.
    Skipped,
}

impl FailureReason {
    /// Short label for metrics and the `errors` section.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Deadline => "deadline",
            Self::Status(_) => "status",
            Self::TooLarge => "too_large",
            Self::Protocol => "protocol",
            Self::Filter => "filter",
            Self::Skipped => "skipped",
        }
    }
}

/// A failed step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepError {
    /// Step name.
    pub step: String,
    /// Why.
    pub reason: FailureReason,
    /// What happened, for people.
    pub message: String,
}

/// What the aggregation answers.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// The response rule's value; `partial` lists the optional steps that failed.
    Answer {
        /// JSON body.
        body: Value,
        /// Failed optional steps (bestEffort only).
        partial: Vec<StepError>,
    },
    /// The call failed: 502 (a step failed) or 504 (a deadline passed).
    Failed {
        /// 502 or 504.
        status: u16,
        /// The step responsible, if one was.
        step: Option<String>,
        /// What happened, for the problem body.
        detail: String,
    },
}

/// What one step ended with.
#[derive(Clone, Debug)]
enum Ended {
    Ok {
        status: u16,
        headers: Vec<(String, String)>,
        body: Value,
        elapsed: Duration,
    },
    Failed(StepError, Option<u16>),
}

type Running<'a> = Pin<Box<dyn Future<Output = (usize, Ended)> + Send + 'a>>;

/// Everything one execution needs.
pub struct Execution<'a> {
    /// The compiled aggregation.
    pub program: &'a AggregationProgram,
    /// Route id, for metrics and messages.
    pub route: &'a str,
    /// Values of the incoming request.
    pub request: &'a RequestValues,
    /// Sends step calls.
    pub transport: &'a dyn StepTransport,
    /// Where step and endpoint figures go.
    pub metrics: &'a AggregationMetrics,
}

impl<'a> Execution<'a> {
    /// Runs the aggregation to its outcome.
    pub async fn run(self) -> Outcome {
        let started = Instant::now();
        let outcome = self.run_steps(started + self.program.timeout).await;
        let label = match &outcome {
            Outcome::Answer { partial, .. } if partial.is_empty() => "complete",
            Outcome::Answer { .. } => "partial",
            Outcome::Failed { status: 504, .. } => "deadline",
            Outcome::Failed { .. } => "failed",
        };
        self.metrics
            .observe_endpoint(self.route, label, started.elapsed());
        outcome
    }

    async fn run_steps(&self, deadline: Instant) -> Outcome {
        let steps = &self.program.steps;
        let mut ended: Vec<Option<Ended>> = vec![None; steps.len()];
        let mut started = vec![false; steps.len()];
        let mut running: FuturesUnordered<Running<'_>> = FuturesUnordered::new();
        loop {
            // Start (or skip) every step whose dependencies have all ended, until nothing moves.
            let mut moved = true;
            while moved {
                moved = false;
                for (i, step) in steps.iter().enumerate() {
                    if started[i] || !step.after.iter().all(|&d| ended[d].is_some()) {
                        continue;
                    }
                    started[i] = true;
                    moved = true;
                    if let Some(&dep) = step
                        .after
                        .iter()
                        .find(|&&d| matches!(ended[d], Some(Ended::Failed(..))))
                    {
                        ended[i] = Some(self.fail(
                            step,
                            FailureReason::Skipped,
                            format!("not run because step {} failed", steps[dep].name),
                            None,
                        ));
                        continue;
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        ended[i] = Some(self.fail(
                            step,
                            FailureReason::Deadline,
                            "not started: the aggregation's deadline had passed".into(),
                            None,
                        ));
                        continue;
                    }
                    let timeout = step.timeout.map_or(left, |t| t.min(left));
                    let by_deadline = step.timeout.is_none_or(|t| t >= left);
                    running.push(Box::pin(self.call(i, step, timeout, by_deadline, &ended)));
                }
            }
            if let Some(fatal) = self.fatal(&ended) {
                return fatal;
            }
            if running.is_empty() {
                break;
            }
            match tokio::time::timeout_at(deadline.into(), running.next()).await {
                Ok(Some((i, result))) => ended[i] = Some(result),
                Ok(None) => break,
                Err(_) => {
                    // Abandon the calls still running (dropping them closes their
                    // connections); the next pass skips or refuses to start the rest.
                    running.clear();
                    for (i, step) in steps.iter().enumerate() {
                        if started[i] && ended[i].is_none() {
                            let message = self.deadline_passed();
                            ended[i] =
                                Some(self.fail(step, FailureReason::Deadline, message, None));
                        }
                    }
                }
            }
        }
        // A step left unstarted waits, directly or not, for itself: the table check forbids
        // that, so this only guards against a hand-made table.
        for (i, step) in steps.iter().enumerate() {
            if ended[i].is_none() {
                ended[i] = Some(self.fail(
                    step,
                    FailureReason::Skipped,
                    "waits for a step that never ran".into(),
                    None,
                ));
            }
        }
        if let Some(fatal) = self.fatal(&ended) {
            return fatal;
        }
        self.respond(ended)
    }

    /// What a step the aggregation's deadline ended says.
    fn deadline_passed(&self) -> String {
        format!(
            "the aggregation's deadline of {}ms passed",
            self.program.timeout.as_millis()
        )
    }

    fn fail(
        &self,
        step: &StepProgram,
        reason: FailureReason,
        message: String,
        status: Option<u16>,
    ) -> Ended {
        self.metrics
            .count_failure(self.route, &step.name, reason.label());
        Ended::Failed(
            StepError {
                step: step.name.clone(),
                reason,
                message,
            },
            status,
        )
    }

    /// The outcome that ends the call now, if a failure is fatal under the policy.
    fn fatal(&self, ended: &[Option<Ended>]) -> Option<Outcome> {
        let strict = self.program.failure_policy == StepFailurePolicy::AllOrNothing;
        let (error, step) = self
            .program
            .steps
            .iter()
            .zip(ended)
            .find_map(|(step, e)| match e {
                Some(Ended::Failed(error, _)) if strict || !step.optional => Some((error, step)),
                _ => None,
            })?;
        let status = match error.reason {
            FailureReason::Timeout | FailureReason::Deadline => 504,
            _ => 502,
        };
        let kind = if step.optional {
            "step"
        } else {
            "required step"
        };
        Some(Outcome::Failed {
            status,
            step: Some(step.name.clone()),
            detail: format!("{kind} {} failed: {}", step.name, error.message),
        })
    }

    /// Renders and sends one step's call, then reads and filters its answer.
    fn call<'s>(
        &'s self,
        index: usize,
        step: &'s StepProgram,
        timeout: Duration,
        by_deadline: bool,
        ended: &[Option<Ended>],
    ) -> impl Future<Output = (usize, Ended)> + Send + use<'s, 'a> {
        let body_of = |name: &str| step_body(&self.program.steps, ended, name);
        let lookup = |name: &str, encode: bool| self.request.lookup(name, body_of, encode);
        let path = render(&step.path, |n| lookup(n, true));
        let mut headers: Vec<(http::HeaderName, String)> = step
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), render(value, |n| lookup(n, false))))
            .collect();
        headers.push((
            http::HeaderName::from_static(BUDGET_HEADER),
            timeout.as_millis().to_string(),
        ));
        headers.push((
            http::HeaderName::from_static("x-request-id"),
            self.request.request_id.clone(),
        ));
        let body = step
            .body
            .as_ref()
            .map(|b| Bytes::from(render(b, |n| lookup(n, false))));
        // `$steps` for the step's filter, as it stands when the step starts; built only when the
        // filter reads it.
        let steps_so_far = match &step.filter {
            Some(filter) if filter.reads("$steps") => steps_document(&self.program.steps, ended),
            _ => Value::Null,
        };
        async move {
            let began = Instant::now();
            let result = match step.resolved.address() {
                // The resolver's reason names internal hosts: it is logged, not shown.
                None => Err(CallError::Connect(
                    "its service does not resolve".to_owned(),
                )),
                Some(address) => {
                    let request = StepRequest {
                        address,
                        host: step.upstream.host.clone(),
                        method: step.method.clone(),
                        path_and_query: path,
                        headers,
                        body,
                        timeout,
                        max_body: self.program.max_step_response_bytes,
                    };
                    self.transport.send(request).await
                }
            };
            let elapsed = began.elapsed();
            self.metrics.observe_step(self.route, &step.name, elapsed);
            let ended = match result {
                // The same words as when the deadline ends the steps still running: which of
                // the two timers fires first is a race.
                Err(CallError::Timeout) if by_deadline => {
                    self.fail(step, FailureReason::Deadline, self.deadline_passed(), None)
                }
                Err(CallError::Timeout) => self.fail(
                    step,
                    FailureReason::Timeout,
                    format!("timed out after {}ms", timeout.as_millis()),
                    None,
                ),
                Err(error @ CallError::Connect(_)) => {
                    self.fail(step, FailureReason::Connect, error.to_string(), None)
                }
                Err(error @ CallError::TooLarge(_)) => {
                    self.fail(step, FailureReason::TooLarge, error.to_string(), None)
                }
                Err(error @ CallError::Protocol(_)) => {
                    self.fail(step, FailureReason::Protocol, error.to_string(), None)
                }
                Ok(response) => self.accept(step, response, elapsed, steps_so_far),
            };
            (index, ended)
        }
    }

    /// Turns a response into the step's value: non-2xx fails, JSON is parsed (other bodies
    /// become a string), and the filter runs.
    fn accept(
        &self,
        step: &StepProgram,
        response: StepResponse,
        elapsed: Duration,
        steps: Value,
    ) -> Ended {
        let status = response.status;
        if !(200..300).contains(&status) {
            return self.fail(
                step,
                FailureReason::Status(status),
                format!("upstream answered {status}"),
                Some(status),
            );
        }
        let mut body = parse_body(&response.body);
        if let Some(filter) = &step.filter {
            match filter.run(body, vec![self.request_document(filter), steps]) {
                Ok(value) => body = value,
                Err(message) => {
                    return self.fail(step, FailureReason::Filter, message, Some(status));
                }
            }
        }
        Ended::Ok {
            status,
            headers: response.headers,
            body,
            elapsed,
        }
    }

    /// `$request` for `rule`: built only when the rule reads it.
    fn request_document(&self, rule: &Expression) -> Value {
        if rule.reads("$request") {
            self.request.document()
        } else {
            Value::Null
        }
    }

    /// Runs the response rule over every step's value (moved out of `ended`, not copied).
    fn respond(&self, mut ended: Vec<Option<Ended>>) -> Outcome {
        let steps = &self.program.steps;
        let partial: Vec<StepError> = ended
            .iter()
            .filter_map(|e| match e {
                Some(Ended::Failed(error, _)) => Some(error.clone()),
                _ => None,
            })
            .collect();
        let rule = &self.program.response;
        let steps_value = if rule.reads("$steps") {
            steps_document(steps, &ended)
        } else {
            Value::Null
        };
        // `{step: value}`: each step's (filtered) body, or `null` when it failed.
        let input: Map<String, Value> = steps
            .iter()
            .zip(&mut ended)
            .map(|(step, e)| {
                let value = match e {
                    Some(Ended::Ok { body, .. }) => std::mem::take(body),
                    _ => Value::Null,
                };
                (step.name.clone(), value)
            })
            .collect();
        match rule.run(
            Value::Object(input),
            vec![self.request_document(rule), steps_value],
        ) {
            Err(message) => Outcome::Failed {
                status: 502,
                step: None,
                detail: format!("the response rule failed on the steps' answers: {message}"),
            },
            Ok(mut body) => {
                if let (Value::Object(map), false) = (&mut body, partial.is_empty()) {
                    map.entry("errors").or_insert_with(|| {
                        Value::Array(partial.iter().map(|e| json!({"step": e.step, "reason": e.reason.label(), "message": e.message})).collect())
                    });
                }
                Outcome::Answer { body, partial }
            }
        }
    }
}

fn render(template: &Template, lookup: impl Fn(&str) -> Option<String>) -> String {
    template.render(|name| lookup(name).map(Into::into))
}

/// A body as a JSON value: JSON when it parses, text otherwise, `null` when empty.
fn parse_body(body: &[u8]) -> Value {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Value::Null;
    }
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// The (filtered) body of the step called `name`, once it has ended well.
fn step_body<'v>(
    steps: &[StepProgram],
    ended: &'v [Option<Ended>],
    name: &str,
) -> Option<&'v Value> {
    let index = steps.iter().position(|step| step.name == name)?;
    match ended.get(index)? {
        Some(Ended::Ok { body, .. }) => Some(body),
        _ => None,
    }
}

/// `$steps`: each step's status, headers, error and duration.
fn steps_document(steps: &[StepProgram], ended: &[Option<Ended>]) -> Value {
    let mut out = Map::new();
    for (step, e) in steps.iter().zip(ended) {
        let value = match e {
            Some(Ended::Ok {
                status,
                headers,
                elapsed,
                ..
            }) => json!({
                "status": status,
                "headers": headers.iter().cloned().collect::<BTreeMap<_, _>>(),
                "error": null,
                "durationMs": elapsed.as_millis() as u64,
            }),
            Some(Ended::Failed(error, status)) => json!({
                "status": status,
                "headers": {},
                "error": {"reason": error.reason.label(), "message": error.message},
            }),
            None => Value::Null,
        };
        out.insert(step.name.clone(), value);
    }
    Value::Object(out)
}
