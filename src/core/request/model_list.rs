//! `GET /v1/models` answers filtered by the role's models: a caller is shown only the models
//! their role may use.
//!
//! Algorithm: the upstream's list (`{"data": [{"id": …}, …], "first_id", "last_id",
//! "has_more"}`) is parsed (serde_json, whose nesting limit bounds the parse), every entry of
//! `data` whose `id` the role's model globs do not match is removed — an entry without a string
//! `id` cannot be judged and is removed too — and the pagination fields are made to agree with
//! what is left: `first_id` and `last_id` name the first and last model kept (`null` when none
//! is), so a client paging with `after_id` / `before_id` continues from a model it was shown
//! (the upstream pages from there, and the next page is filtered the same way). A page of which
//! nothing is kept says `has_more: false`: it has no id to continue from that would not name a
//! model the role may not use, so a client lists fewer models rather than loop.
//!
//! Limits: the list is parsed whole (the filter buffers it; model lists are small); anything
//! that is not such a list refuses the answer (`response_uninspectable`) rather than pass a list
//! it could not filter. Other fields are kept as the upstream sent them.

use crate::core::errors::{Denial, Reason};
use serde_json::Value;

/// Filters a model list by `allowed`: `Ok(None)` when every entry is kept (deliver the body as
/// it is), `Ok(Some(bytes))` for the filtered list, or the refusal for a body that is not a
/// model list.
pub fn filter_model_list(body: &[u8], allowed: impl Fn(&str) -> bool) -> Result<Option<Vec<u8>>, Denial> {
    let unreadable = || {
        Denial::new(
            Reason::ResponseUninspectable,
            "the upstream's model list could not be read to filter it by the role's models",
        )
    };
    let mut list: Value = serde_json::from_slice(body).map_err(|_| unreadable())?;
    let fields = list.as_object_mut().ok_or_else(unreadable)?;
    let data = fields.get_mut("data").and_then(Value::as_array_mut).ok_or_else(unreadable)?;
    let before = data.len();
    data.retain(|entry| entry.get("id").and_then(Value::as_str).is_some_and(&allowed));
    if data.len() == before {
        return Ok(None);
    }
    let id_at = |entry: Option<&Value>| entry.and_then(|e| e.get("id")).cloned().unwrap_or(Value::Null);
    let (first, last, empty) = (id_at(data.first()), id_at(data.last()), data.is_empty());
    fields.insert("first_id".to_string(), first);
    fields.insert("last_id".to_string(), last);
    if empty {
        fields.insert("has_more".to_string(), Value::Bool(false));
    }
    serde_json::to_vec(&list).map(Some).map_err(|_| unreadable())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn haiku(id: &str) -> bool {
        id.starts_with("claude-haiku-")
    }

    fn filtered(list: &Value) -> Value {
        let bytes = filter_model_list(list.to_string().as_bytes(), haiku).unwrap().unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    fn model(id: &str) -> Value {
        json!({"type": "model", "id": id, "display_name": id, "created_at": "2025-01-01T00:00:00Z"})
    }

    #[test]
    fn a_model_list_shows_only_the_roles_models_with_coherent_page_ids() {
        let list = json!({"data": [model("claude-opus-4-1"), model("claude-haiku-4-5"), model("claude-haiku-3-5"),
                                   model("claude-sonnet-4-6")],
                          "first_id": "claude-opus-4-1", "last_id": "claude-sonnet-4-6", "has_more": true});
        let list = filtered(&list);
        let ids: Vec<&str> = list["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["claude-haiku-4-5", "claude-haiku-3-5"]);
        assert_eq!((list["first_id"].as_str(), list["last_id"].as_str()), (ids.first().copied(), ids.last().copied()));
        assert_eq!(list["has_more"], true, "the next page continues after the last model shown");
        assert_eq!(list["data"][0]["display_name"], "claude-haiku-4-5", "entries are kept whole");
    }

    #[test]
    fn a_page_with_no_allowed_model_names_none_and_ends_the_listing() {
        let list = json!({"data": [model("claude-opus-4-1")], "first_id": "claude-opus-4-1",
                          "last_id": "claude-opus-4-1", "has_more": true});
        let list = filtered(&list);
        assert_eq!(list, json!({"data": [], "first_id": null, "last_id": null, "has_more": false}));
    }

    #[test]
    fn entries_without_a_string_id_are_removed() {
        let list = json!({"data": [{"id": 7}, {"name": "claude-haiku-4-5"}, model("claude-haiku-4-5")],
                          "has_more": false});
        assert_eq!(filtered(&list)["data"], json!([model("claude-haiku-4-5")]));
    }

    #[test]
    fn a_list_of_allowed_models_is_delivered_as_it_came() {
        let list = json!({"data": [model("claude-haiku-4-5")], "has_more": false});
        assert_eq!(filter_model_list(list.to_string().as_bytes(), haiku).unwrap(), None);
    }

    #[test]
    fn anything_but_a_model_list_is_refused_not_passed() {
        for body in [&b"not json"[..], b"[]", b"{\"data\": {}}", b"{}", b"event: x\ndata: {}\n\n"] {
            let denial = filter_model_list(body, haiku).unwrap_err();
            assert_eq!(denial.reason, Reason::ResponseUninspectable, "{}", String::from_utf8_lossy(body));
        }
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(filter_model_list(deep.as_bytes(), haiku).is_err(), "nesting is bounded, not a crash");
    }
}
