//! JSON parsing that refuses duplicate object members at any depth.
//!
//! `serde_json::Value` keeps the last of two equal members while other parsers keep the first;
//! a token whose claims read differently to two parsers is refused instead of interpreted.
//! Members are compared after unescaping, so `"iss"` and `"\u0069ss"` are duplicates.

use std::cell::Cell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Why a document was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StrictJsonError {
    /// Not JSON (or not an object where one is required).
    Invalid,
    /// An object with two members of the same name.
    Duplicate,
}

/// Parses `bytes` as one JSON object.
pub(crate) fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, StrictJsonError> {
    let duplicate = Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = Strict {
        duplicate: &duplicate,
    }
    .deserialize(&mut de);
    if duplicate.get() {
        return Err(StrictJsonError::Duplicate);
    }
    let value = value.map_err(|_| StrictJsonError::Invalid)?;
    de.end().map_err(|_| StrictJsonError::Invalid)?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(StrictJsonError::Invalid),
    }
}

#[derive(Clone, Copy)]
struct Strict<'a> {
    duplicate: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
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
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
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
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(self)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self)?;
            if out.insert(key, value).is_some() {
                self.duplicate.set(true);
                return Err(A::Error::custom("duplicate member"));
            }
        }
        Ok(Value::Object(out))
    }
}

/// The value at a dotted `path` (`a.b` is member `b` of object member `a`).
pub(crate) fn lookup<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_objects_at_any_depth() {
        let m = parse_object(br#"{"a":{"b":[1,-2,3.5,"x",true,null,{"c":"d"}]}}"#).unwrap();
        assert_eq!(lookup(&m, "a.b").unwrap().as_array().unwrap().len(), 7);
        assert_eq!(lookup(&m, "a.b.c"), None);
        assert_eq!(lookup(&m, "a.x"), None);
        assert_eq!(lookup(&m, "z"), None);
    }

    #[test]
    fn refuses_duplicates_anywhere() {
        for doc in [
            &br#"{"iss":"a","iss":"b"}"#[..],
            br#"{"iss":"a","\u0069ss":"b"}"#,
            br#"{"a":{"x":1,"x":1}}"#,
            br#"{"a":[{"x":1,"x":2}]}"#,
        ] {
            assert_eq!(
                parse_object(doc),
                Err(StrictJsonError::Duplicate),
                "{}",
                String::from_utf8_lossy(doc)
            );
        }
    }

    #[test]
    fn refuses_non_objects_and_trailing_bytes() {
        for doc in [
            &b"[1]"[..],
            b"\"s\"",
            b"{",
            b"{} {}",
            b"{}x",
            b"",
            b"{\"a\":1,}",
        ] {
            assert_eq!(parse_object(doc), Err(StrictJsonError::Invalid));
        }
        assert!(parse_object(b" {} ").is_ok());
    }
}
