//! Processing rules: jq programs (through the `jaq` crates), compiled once and run many times.
//!
//! The same compiler checks a rule when a resource is validated and builds it when a proxy
//! loads its table, so a rule that passes validation is the rule that runs.

mod prelude;

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data};
use jaq_json::Val;

/// Global variables every aggregation rule may read.
pub const RULE_VARIABLES: [&str; 2] = ["$request", "$steps"];

type Data = data::JustLut<Val>;

/// A compiled jq program.
pub struct Expression {
    filter: jaq_core::compile::Filter<jaq_core::Native<Data>>,
    globals: usize,
    /// The global variables the program mentions (the others need no value worth building).
    reads: Vec<String>,
}

impl std::fmt::Debug for Expression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Expression")
    }
}

impl Expression {
    /// Compiles `code`, which may read the global variables `globals` (names with `$`).
    /// The error says what is wrong in the user's terms.
    pub fn compile(code: &str, globals: &[&str]) -> Result<Self, String> {
        // Only the library definitions the rule can reach are compiled (see `prelude`). Should
        // that ever refuse a rule, the whole library decides, so pruning never changes a verdict.
        Self::compile_with(code, globals, prelude::for_rule(code))
            .or_else(|_| Self::compile_with(code, globals, prelude::whole()))
    }

    fn compile_with(
        code: &str,
        globals: &[&str],
        defs: Vec<jaq_core::load::parse::Def<&'static str>>,
    ) -> Result<Self, String> {
        let funs = jaq_core::funs()
            .chain(jaq_std::funs())
            .chain(jaq_json::funs());
        let arena = Arena::default();
        let modules = Loader::new(defs)
            .load(&arena, File { code, path: () })
            .map_err(|errors| {
                let mut messages = Vec::new();
                for (_, error) in errors {
                    match error {
                        jaq_core::load::Error::Io(items) => {
                            messages.extend(items.into_iter().map(|(_, m)| m));
                        }
                        jaq_core::load::Error::Lex(items) => {
                            messages.extend(items.into_iter().map(|(expect, at)| {
                                format!("expected {} {}", expect.as_str(), near(at))
                            }));
                        }
                        jaq_core::load::Error::Parse(items) => {
                            messages.extend(items.into_iter().map(|(expect, at)| {
                                format!("expected {} {}", expect.as_str(), near(at))
                            }));
                        }
                    }
                }
                format!("jq syntax error: {}", messages.join("; "))
            })?;
        let filter = Compiler::default()
            .with_funs(funs)
            .with_global_vars(globals.iter().copied())
            .compile(modules)
            .map_err(|errors| {
                let names: Vec<String> = errors
                    .into_iter()
                    .flat_map(|(_, undefined)| undefined)
                    .map(|(name, kind)| format!("{} {name}", kind.as_str()))
                    .collect();
                format!("jq rule uses undefined {}", names.join(", "))
            })?;
        Ok(Self {
            filter,
            globals: globals.len(),
            // A variable can only be read by name, so one the text never mentions is never read.
            reads: globals
                .iter()
                .filter(|g| code.contains(**g))
                .map(|g| (*g).to_owned())
                .collect(),
        })
    }

    /// False when the program cannot read the global variable `name`: the caller may pass
    /// `null` for it instead of building its value.
    pub fn reads(&self, name: &str) -> bool {
        self.reads.iter().any(|r| r == name)
    }

    /// Runs the program on `input` with the global variables' values (in the order given to
    /// [`Self::compile`]) and returns its first output.
    pub fn run(
        &self,
        input: serde_json::Value,
        globals: Vec<serde_json::Value>,
    ) -> Result<serde_json::Value, String> {
        if globals.len() != self.globals {
            return Err(format!(
                "jq rule expects {} variables, got {}",
                self.globals,
                globals.len()
            ));
        }
        let vars = Vars::new(
            globals
                .into_iter()
                .map(to_val)
                .collect::<Result<Vec<_>, _>>()?,
        );
        let ctx = Ctx::<Data>::new(&self.filter.lut, vars);
        let mut outputs = self.filter.id.run((ctx, to_val(input)?));
        match outputs.next() {
            None => Err("jq rule produced no value".to_owned()),
            Some(Ok(value)) => serde_json::from_str(&value.to_string())
                .map_err(|e| format!("jq rule produced a value that is not JSON: {e}")),
            // `halt` must never reach `std::process::exit`: it only fails this evaluation.
            Some(Err(exception)) => Err(match exception.get_err() {
                Ok(error) => format!("jq rule failed: {error}"),
                Err(_) => "jq rule called halt".to_owned(),
            }),
        }
    }
}

fn near(at: &str) -> String {
    let snippet: String = at.chars().take(20).collect();
    if snippet.is_empty() {
        "at the end".to_owned()
    } else {
        format!("near `{snippet}`")
    }
}

fn to_val(value: serde_json::Value) -> Result<Val, String> {
    use serde::Deserialize;
    Val::deserialize(value).map_err(|e| format!("cannot pass value to jq: {e}"))
}

#[cfg(test)]
mod tests {
    use super::Expression;

    #[test]
    fn reads_names_only_the_globals_the_rule_mentions() {
        let rule = Expression::compile("{m: $request.method}", &["$request", "$steps"]).unwrap();
        assert!(rule.reads("$request"));
        assert!(!rule.reads("$steps"));
        assert_eq!(
            rule.run(
                serde_json::json!(null),
                vec![
                    serde_json::json!({"method": "GET"}),
                    serde_json::Value::Null
                ]
            ),
            Ok(serde_json::json!({"m": "GET"}))
        );
    }
}
