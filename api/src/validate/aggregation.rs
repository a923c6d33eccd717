//! Checks of aggregations: the step graph, placeholders, jq rules and the timeout budget.

use std::collections::BTreeMap;

use super::Problem;
use crate::crd::Aggregation;
use crate::expression::{Expression, RULE_VARIABLES};
use crate::prepare;
use crate::{duration, template::Template};

/// Step names that would shadow a request placeholder.
pub const RESERVED_STEP_NAMES: [&str; 4] = ["query", "header", "client", "requestId"];

/// Checks a step graph given as (name, after) pairs: every `after` names another existing
/// step and there is no cycle. Returns (step index, message) pairs.
pub fn check_step_graph<'a>(
    steps: impl IntoIterator<Item = (&'a str, &'a [String])>,
) -> Vec<(usize, String)> {
    let steps: Vec<(&str, &[String])> = steps.into_iter().collect();
    let index: BTreeMap<&str, usize> = steps.iter().enumerate().map(|(i, s)| (s.0, i)).collect();
    let mut problems = Vec::new();
    for (i, (name, after)) in steps.iter().enumerate() {
        for dep in after.iter() {
            if dep == name {
                problems.push((i, format!("step {name} cannot wait for itself")));
            } else if !index.contains_key(dep.as_str()) {
                problems.push((
                    i,
                    format!("step {name} waits for {dep}, which is not a step of this aggregation"),
                ));
            }
        }
    }
    // Depth-first search for a cycle; report each cycle once, from its first step.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut marks = vec![Mark::New; steps.len()];
    fn visit(
        i: usize,
        steps: &[(&str, &[String])],
        index: &BTreeMap<&str, usize>,
        marks: &mut [Mark],
        trail: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        marks[i] = Mark::Active;
        trail.push(i);
        for dep in steps[i].1 {
            let Some(&j) = index.get(dep.as_str()) else {
                continue;
            };
            if j == i {
                continue;
            }
            match marks[j] {
                Mark::Active => {
                    let start = trail.iter().position(|&k| k == j).unwrap_or(0);
                    let mut cycle = trail[start..].to_vec();
                    cycle.push(j);
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(cycle) = visit(j, steps, index, marks, trail) {
                        return Some(cycle);
                    }
                }
                Mark::Done => {}
            }
        }
        trail.pop();
        marks[i] = Mark::Done;
        None
    }
    for i in 0..steps.len() {
        if marks[i] == Mark::New {
            let mut trail = Vec::new();
            if let Some(cycle) = visit(i, &steps, &index, &mut marks, &mut trail) {
                let names: Vec<&str> = cycle.iter().rev().map(|&k| steps[k].0).collect();
                problems.push((
                    cycle[0],
                    format!(
                        "steps wait for each other in a cycle: {}",
                        names.join(" waits for ")
                    ),
                ));
                // Everything on the trail is part of a cycle already reported.
                for k in trail {
                    marks[k] = Mark::Done;
                }
            }
        }
    }
    problems
}

/// Every step `name` transitively waits for (its ancestors), in a graph known to be acyclic
/// or not: a visited set keeps a cycle from looping.
fn ancestors<'a>(name: &str, after: &BTreeMap<&'a str, &'a [String]>) -> Vec<&'a str> {
    let mut found: Vec<&str> = Vec::new();
    let mut todo: Vec<&str> = after
        .get(name)
        .map(|a| a.iter().map(String::as_str).collect())
        .unwrap_or_default();
    while let Some(dep) = todo.pop() {
        if let Some((&key, deps)) = after.get_key_value(dep)
            && !found.contains(&key)
        {
            found.push(key);
            todo.extend(deps.iter().map(String::as_str));
        }
    }
    found
}

pub(super) fn check_aggregation(
    at: &str,
    params: &[String],
    aggregation: &Aggregation,
    problems: &mut Vec<Problem>,
) {
    let steps = &aggregation.steps;
    for (i, message) in
        check_step_graph(steps.iter().map(|s| (s.name.as_str(), s.after.as_slice())))
    {
        problems.push(Problem::new(format!("{at}.steps[{i}].after"), message));
    }
    let after: BTreeMap<&str, &[String]> = steps
        .iter()
        .map(|s| (s.name.as_str(), s.after.as_slice()))
        .collect();

    let deadline = duration::parse_timeout_millis(&aggregation.timeout);
    if let Err(message) = &deadline {
        problems.push(Problem::new(format!("{at}.timeout"), message.clone()));
    }
    if let Err(message) = Expression::compile(&aggregation.response, &RULE_VARIABLES) {
        problems.push(Problem::new(format!("{at}.response"), message));
    }

    let mut step_timeouts: BTreeMap<&str, u64> = BTreeMap::new();
    for (s, step) in steps.iter().enumerate() {
        let here = format!("{at}.steps[{s}]");
        if RESERVED_STEP_NAMES.contains(&step.name.as_str()) || params.contains(&step.name) {
            problems.push(Problem::new(
                format!("{here}.name"),
                format!(
                    "step name {} is taken by a request placeholder ({{{}}}); choose another",
                    step.name, step.name
                ),
            ));
        }
        if let Some(filter) = &step.filter
            && let Err(message) = Expression::compile(filter, &RULE_VARIABLES)
        {
            problems.push(Problem::new(format!("{here}.filter"), message));
        }
        if let Some(timeout) = &step.timeout {
            match duration::parse_timeout_millis(timeout) {
                Err(message) => problems.push(Problem::new(format!("{here}.timeout"), message)),
                Ok(ms) => {
                    step_timeouts.insert(&step.name, ms);
                    if let Ok(limit) = deadline
                        && ms > limit
                    {
                        problems.push(Problem::new(
                            format!("{here}.timeout"),
                            format!(
                                "step timeout {timeout} exceeds the aggregation's timeout {}",
                                aggregation.timeout
                            ),
                        ));
                    }
                }
            }
        }
        let waits_for = ancestors(&step.name, &after);
        let check_vars = |field: &str, template: &Template, problems: &mut Vec<Problem>| {
            for var in template.vars() {
                if let Some(message) =
                    placeholder_problem(var, params, &step.name, &after, &waits_for)
                {
                    problems.push(Problem::new(field, message));
                }
            }
        };
        for (field, text) in std::iter::once(("path", &step.call.path))
            .chain(step.call.body.as_ref().map(|body| ("body", body)))
        {
            let field = format!("{here}.call.{field}");
            match Template::parse(text) {
                Ok(template) => check_vars(&field, &template, problems),
                Err(message) => problems.push(Problem::new(field, message)),
            }
        }
        for (name, value) in &step.call.headers {
            let field = format!("{here}.call.headers[{name}]");
            match prepare::header_name(name).and_then(|_| prepare::header_template(value)) {
                Ok(template) => check_vars(&field, &template, problems),
                Err(message) => problems.push(Problem::new(field, message)),
            }
        }
    }

    // The longest chain of explicit step timeouts must fit in the deadline.
    if let Ok(limit) = deadline
        && let Some((total, chain)) = longest_chain(&after, &step_timeouts)
        && total > limit
        && chain.len() > 1
    {
        problems.push(Problem::new(
                    format!("{at}.timeout"),
                    format!(
                        "the step chain {} can take up to {total}ms, more than the aggregation's timeout {}",
                        chain.join(" → "),
                        aggregation.timeout
                    ),
                ));
    }
}

/// Why a placeholder of step `step` cannot be resolved, if it cannot.
fn placeholder_problem(
    var: &str,
    params: &[String],
    step: &str,
    after: &BTreeMap<&str, &[String]>,
    waits_for: &[&str],
) -> Option<String> {
    let (head, rest) = match var.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (var, None),
    };
    match (head, rest) {
        ("query" | "header", Some(_)) => None,
        ("client" | "requestId", None) => None,
        (name, None) if params.iter().any(|p| p == name) => None,
        (name, Some(_)) if after.contains_key(name) => {
            if waits_for.contains(&name) {
                None
            } else {
                Some(format!(
                    "step {step} uses {{{var}}} but does not wait for step {name}: add {name} to its after list"
                ))
            }
        }
        _ => Some(format!(
            "{{{var}}} is not a match parameter, {{query.NAME}}, {{header.NAME}}, {{client}}, {{requestId}} or {{STEP.FIELD}} of an earlier step"
        )),
    }
}

/// The dependency chain whose explicit step timeouts add up to the most, and that sum.
/// Steps without a timeout count as 0. Cycles (reported elsewhere) are cut.
fn longest_chain(
    after: &BTreeMap<&str, &[String]>,
    timeouts: &BTreeMap<&str, u64>,
) -> Option<(u64, Vec<String>)> {
    fn walk<'a>(
        name: &'a str,
        after: &BTreeMap<&'a str, &'a [String]>,
        timeouts: &BTreeMap<&str, u64>,
        memo: &mut BTreeMap<&'a str, (u64, Vec<String>)>,
        active: &mut Vec<&'a str>,
    ) -> (u64, Vec<String>) {
        if let Some(found) = memo.get(name) {
            return found.clone();
        }
        active.push(name);
        let mut best = (0, Vec::new());
        for dep in after.get(name).copied().unwrap_or_default() {
            let Some((&dep, _)) = after.get_key_value(dep.as_str()) else {
                continue;
            };
            if active.contains(&dep) {
                continue;
            }
            let candidate = walk(dep, after, timeouts, memo, active);
            if candidate.0 > best.0 {
                best = candidate;
            }
        }
        active.pop();
        best.0 += timeouts.get(name).copied().unwrap_or(0);
        best.1.push(name.to_owned());
        memo.insert(name, best.clone());
        best
    }
    let mut memo = BTreeMap::new();
    after
        .keys()
        .map(|name| walk(name, after, timeouts, &mut memo, &mut Vec::new()))
        .max_by_key(|(total, _)| *total)
}
