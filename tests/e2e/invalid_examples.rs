//! Every file of `examples/invalid/` is refused by the real API server, with the field its
//! `# expect:` line names: the CRD schema and CEL rules behave on the server as offline
//! admission (which the unit tests run) says they do.

use kube::api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Client};

use crate::operator_process::workspace;

/// The `# expect: …` line of an example, split into its field path and what the message says
/// (the server puts `Invalid value: …` between the two).
fn expected(text: &str) -> (String, Option<String>) {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("# expect: "))
        .expect("every invalid example has an expect line");
    match line.split_once(": ") {
        Some((path, message)) if path.starts_with("spec") => {
            (path.to_owned(), Some(message.to_owned()))
        }
        _ => (line.to_owned(), None),
    }
}

fn api_resource(kind: &str) -> ApiResource {
    use gatehouse_api::crd::{Aggregator, Contract, ContractGrant, EdgeService, Gateway};
    match kind {
        "Gateway" => ApiResource::erase::<Gateway>(&()),
        "EdgeService" => ApiResource::erase::<EdgeService>(&()),
        "Aggregator" => ApiResource::erase::<Aggregator>(&()),
        "Contract" => ApiResource::erase::<Contract>(&()),
        "ContractGrant" => ApiResource::erase::<ContractGrant>(&()),
        other => panic!("not a Gatehouse kind: {other}"),
    }
}

/// Sends each example as `kubectl apply` would create it (a dry-run create; for the unknown
/// field, a strict server-side apply, which is how kubectl refuses unknown fields) and checks the
/// refusal names what the example expects.
pub async fn refuse_every_invalid_example(client: &Client, namespace: &str) {
    let mut files: Vec<_> = std::fs::read_dir(workspace().join("examples/invalid"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "the invalid examples are there");
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let mut object: DynamicObject = serde_saphyr::from_str(&text).unwrap();
        object.metadata.namespace = Some(namespace.to_owned());
        let kind = object.types.as_ref().unwrap().kind.clone();
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &api_resource(&kind));
        let name = object.metadata.name.clone().unwrap();
        let unknown_field = file.ends_with("unknown-field.yaml");
        let refused = if unknown_field {
            let params = PatchParams::apply("gatehouse-e2e")
                .dry_run()
                .validation_strict();
            api.patch(&name, &params, &Patch::Apply(&object))
                .await
                .err()
        } else {
            let params = PostParams {
                dry_run: true,
                ..PostParams::default()
            };
            api.create(&params, &object).await.err()
        };
        let error = refused
            .unwrap_or_else(|| panic!("{}: accepted by the API server", file.display()))
            .to_string();
        let (path, message) = expected(&text);
        let path = if unknown_field {
            // The server names an unknown field by its path, as kubectl shows it.
            "timout".to_owned()
        } else {
            path
        };
        assert!(
            error.contains(&path) && message.as_ref().is_none_or(|m| error.contains(m)),
            "{}: expected {path:?} / {message:?} in the API server's answer: {error}",
            file.display()
        );
    }
    println!("{} invalid examples refused by the API server", files.len());
}
