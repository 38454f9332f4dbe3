//! The OpenAPI document against the server that serves it: the document
//! passes an OpenAPI validator, and requests built from the document's own
//! examples and bounds are answered with a 2xx, or with a 4xx that the
//! document lists for that operation and status, never with a 5xx.

use std::path::PathBuf;
use std::process::Command;

use faultline_client::api::Acks;
use serde_json::{Map, Value, json};

use crate::api::{create, produce_req};
use crate::util::Node;

/// The validator `scripts/openapi-validator.sh` installs (the test script
/// runs it first), or the one `OPENAPI_SPEC_VALIDATOR` names.
fn validator() -> PathBuf {
    let path = std::env::var_os("OPENAPI_SPEC_VALIDATOR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/openapi-venv/bin/openapi-spec-validator")
    });
    assert!(
        path.exists(),
        "{} is missing: run scripts/openapi-validator.sh (scripts/test.sh does) or set OPENAPI_SPEC_VALIDATOR",
        path.display()
    );
    path
}

fn validate(doc: &Value) -> (bool, String) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(doc).unwrap()).unwrap();
    let out = Command::new(validator()).arg(file.path()).output().expect("runs openapi-spec-validator");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

async fn served_document(node: &Node) -> Value {
    reqwest::get(format!("{}/openapi.json", node.url)).await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_passes_openapi_spec_validator() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &[]);
    let doc = served_document(&node).await;
    // The validator must reject a document with a known mistake, or it is
    // not really validating.
    let mut broken = doc.clone();
    broken["paths"]["/health"]["get"]["responses"] = json!("not an object");
    assert!(!validate(&broken).0, "the validator accepts a broken document");
    let (ok, report) = validate(&doc);
    assert!(ok, "openapi-spec-validator rejects /openapi.json:\n{report}");
}

/// Values of a schema: a valid base value first, then its bounds, enum
/// values and examples, each meant to be valid by the schema alone.
struct Samples<'a> {
    doc: &'a Value,
}

impl Samples<'_> {
    fn resolve<'v>(&'v self, schema: &'v Value) -> &'v Value {
        match schema["$ref"].as_str() {
            Some(r) => self.resolve(&self.doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")]),
            None => schema,
        }
    }

    /// The schema's (non-null) type.
    fn kind(schema: &Value) -> &str {
        match &schema["type"] {
            Value::String(t) => t,
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or("null"),
            _ => "any",
        }
    }

    fn of(&self, schema: &Value) -> Vec<Value> {
        let schema = self.resolve(schema);
        let mut out: Vec<Value> = Vec::new();
        if let Some(alternatives) = schema["oneOf"].as_array() {
            out.extend(alternatives.iter().flat_map(|a| self.of(a)));
        } else if let Some(values) = schema["enum"].as_array() {
            out.extend(values.iter().cloned());
        } else {
            out.extend(schema.get("example").cloned());
            match Self::kind(schema) {
                "integer" => out.extend(["minimum", "maximum"].iter().filter_map(|b| schema.get(*b).cloned())),
                "string" => {
                    let min = schema["minLength"].as_u64().unwrap_or(1).max(1) as usize;
                    out.push(json!("a".repeat(min)));
                    out.extend(schema["maxLength"].as_u64().map(|n| json!("a".repeat(n as usize))));
                }
                "boolean" => out.extend([json!(true), json!(false)]),
                "array" => out.extend(self.arrays(schema)),
                "object" => out.extend(self.objects(schema)),
                _ => out.push(json!({})),
            }
        }
        out.dedup();
        out
    }

    /// `minItems` (at least one) copies of the item's base value, then one
    /// array per item variant, then `maxItems` copies.
    fn arrays(&self, schema: &Value) -> Vec<Value> {
        let items = self.of(&schema["items"]);
        let Some(base) = items.first() else { return vec![json!([])] };
        let min = schema["minItems"].as_u64().unwrap_or(1).max(1) as usize;
        let mut out = vec![json!(vec![base.clone(); min])];
        out.extend(items.iter().skip(1).map(|v| json!([v])));
        out.extend(schema["maxItems"].as_u64().map(|n| json!(vec![base.clone(); n as usize])));
        out
    }

    /// The required properties at their base values, then that object with
    /// one property (required or not) at each of its other values.
    fn objects(&self, schema: &Value) -> Vec<Value> {
        let Some(props) = schema["properties"].as_object() else { return vec![json!({})] };
        let required: Vec<&str> =
            schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        let mut base = Map::new();
        for name in &required {
            base.insert(name.to_string(), self.of(&props[*name]).swap_remove(0));
        }
        let mut out = vec![Value::Object(base.clone())];
        for (name, prop) in props {
            let skip = usize::from(required.contains(&name.as_str()));
            for v in self.of(prop).into_iter().skip(skip) {
                let mut o = base.clone();
                o.insert(name.clone(), v);
                out.push(Value::Object(o));
            }
        }
        out
    }
}

/// One request: method, path with its parameters filled in, optional body.
struct Probe {
    method: String,
    path: String,
    body: Option<Value>,
    op: Value,
}

/// Every probe of one operation: parameters and body at their base values,
/// then each parameter and each body variant in turn.
fn probes(doc: &Value, template: &str, method: &str, op: &Value) -> Vec<Probe> {
    let samples = Samples { doc };
    let params: Vec<(String, Vec<Value>)> = op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let mut values = samples.of(&p["schema"]);
            values.insert(0, p["example"].clone());
            values.retain(|v| !v.is_null());
            (p["name"].as_str().unwrap().to_string(), values)
        })
        .collect();
    let bodies = op["requestBody"]["content"]["application/json"]["schema"].as_object().map(|s| samples.of(&json!(s)));
    let fill = |chosen: &[&Value]| {
        params.iter().zip(chosen).fold(template.to_string(), |path, ((name, _), v)| {
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            path.replace(&format!("{{{name}}}"), &encode(&text))
        })
    };
    let base: Vec<&Value> = params.iter().map(|(_, vs)| &vs[0]).collect();
    let base_body = bodies.as_ref().map(|b| b[0].clone());
    let probe = |path: String, body: Option<Value>| Probe { method: method.to_string(), path, body, op: op.clone() };
    let mut out = vec![probe(fill(&base), base_body.clone())];
    for (i, (_, values)) in params.iter().enumerate() {
        for v in values.iter().skip(1) {
            let mut chosen = base.clone();
            chosen[i] = v;
            out.push(probe(fill(&chosen), base_body.clone()));
        }
    }
    for body in bodies.iter().flatten().skip(1) {
        out.push(probe(fill(&base), Some(body.clone())));
    }
    out
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Sends a probe; returns why its answer breaks the rule, if it does.
async fn check(http: &reqwest::Client, url: &str, p: &Probe) -> Option<String> {
    let mut req = http.request(p.method.to_uppercase().parse().unwrap(), format!("{url}{}", p.path));
    if let Some(body) = &p.body {
        req = req.json(body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let what = format!(
        "{} {} {:.300} → {status} {text:.300}",
        p.method.to_uppercase(),
        p.path,
        p.body.as_ref().map(Value::to_string).unwrap_or_default()
    );
    if (200..300).contains(&status) {
        return None;
    }
    let documented = &p.op["responses"][status.to_string()];
    if !(400..500).contains(&status) || !documented.is_object() {
        return Some(format!("undocumented status: {what}"));
    }
    let error: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let names = &documented["content"]["application/json"]["x-error-names"];
    if !names.as_array().is_some_and(|n| n.contains(&error["error"])) {
        return Some(format!("error name not documented under {status}: {what}"));
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_built_from_the_schema_get_a_2xx_or_a_documented_4xx() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &["faultline.admin.hooks=true"]);
    let doc = served_document(&node).await;
    // The examples name topic `events` and group `readers`: give them data,
    // so that fetches at the example offset answer without a long poll.
    let client = node.client();
    create(&client, "events", 1).await;
    client.produce("events", 0, &produce_req(Acks::All, &["a", "b"])).await.unwrap();

    let http = reqwest::Client::new();
    let (mut sent, mut broken) = (0, Vec::new());
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for probe in probes(&doc, template, method, op) {
                sent += 1;
                broken.extend(check(&http, &node.url, &probe).await);
            }
        }
    }
    assert!(
        broken.is_empty(),
        "{} of {sent} schema-valid requests broke the rule:\n{}",
        broken.len(),
        broken.join("\n")
    );
    assert!(sent >= 60, "every operation, parameter and bound was probed: only {sent} requests");
    assert!(client.health().await.is_ok(), "the node is still healthy");
}
