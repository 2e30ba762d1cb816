//! Just enough JSON to read back what xtask itself wrote (target/
//! bench.json): objects, arrays, strings without escapes beyond `\"` and
//! `\\`, numbers, true, false, null.

use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Value>),
    Object(BTreeMap<String, Value>),
}

impl Value {
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(m) => m.get(key),
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_array(&self) -> &[Value] {
        match self {
            Value::Array(a) => a,
            _ => &[],
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.at).is_some_and(|c| c.is_ascii_whitespace()) {
            self.at += 1;
        }
    }
    fn eat(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.s.get(self.at) == Some(&c) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at byte {}", c as char, self.at))
        }
    }
    fn value(&mut self) -> Result<Value, String> {
        self.ws();
        match self.s.get(self.at) {
            Some(b'{') => {
                self.at += 1;
                let mut m = BTreeMap::new();
                self.ws();
                if self.s.get(self.at) == Some(&b'}') {
                    self.at += 1;
                    return Ok(Value::Object(m));
                }
                loop {
                    self.ws();
                    let Value::String(k) = self.value()? else {
                        return Err(format!("a key at byte {}", self.at));
                    };
                    self.eat(b':')?;
                    m.insert(k, self.value()?);
                    self.ws();
                    match self.s.get(self.at) {
                        Some(b',') => self.at += 1,
                        Some(b'}') => {
                            self.at += 1;
                            return Ok(Value::Object(m));
                        }
                        _ => return Err(format!("expected ',' or '}}' at byte {}", self.at)),
                    }
                }
            }
            Some(b'[') => {
                self.at += 1;
                let mut v = Vec::new();
                self.ws();
                if self.s.get(self.at) == Some(&b']') {
                    self.at += 1;
                    return Ok(Value::Array(v));
                }
                loop {
                    v.push(self.value()?);
                    self.ws();
                    match self.s.get(self.at) {
                        Some(b',') => self.at += 1,
                        Some(b']') => {
                            self.at += 1;
                            return Ok(Value::Array(v));
                        }
                        _ => return Err(format!("expected ',' or ']' at byte {}", self.at)),
                    }
                }
            }
            Some(b'"') => {
                self.at += 1;
                let mut out = Vec::new();
                loop {
                    match self.s.get(self.at) {
                        Some(b'"') => break,
                        Some(b'\\') => {
                            out.push(*self.s.get(self.at + 1).ok_or("unterminated string")?);
                            self.at += 2;
                        }
                        Some(&c) => {
                            out.push(c);
                            self.at += 1;
                        }
                        None => return Err("unterminated string".into()),
                    }
                }
                self.at += 1;
                Ok(Value::String(String::from_utf8_lossy(&out).into_owned()))
            }
            Some(_) => {
                let start = self.at;
                while self.s.get(self.at).is_some_and(|c| !b",]} \n\t\r".contains(c)) {
                    self.at += 1;
                }
                match &self.s[start..self.at] {
                    b"null" => Ok(Value::Null),
                    b"true" => Ok(Value::Bool(true)),
                    b"false" => Ok(Value::Bool(false)),
                    n => String::from_utf8_lossy(n)
                        .parse()
                        .map(Value::Number)
                        .map_err(|_| format!("bad value at byte {start}")),
                }
            }
            None => Err("unexpected end".into()),
        }
    }
}

pub fn parse(text: &str) -> Result<Value, String> {
    let mut p = Parser { s: text.as_bytes(), at: 0 };
    let v = p.value()?;
    p.ws();
    if p.at != p.s.len() {
        return Err(format!("trailing text at byte {}", p.at));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_bench_writes() {
        let v = parse(
            r#"{"rows": [{"row": "xen-pv", "mem": "64M", "x": null, "ok": true, "perf": {"insns.layout": 43244, "r": 1.5e2}}], "dispatch_ratio": 1.0075, "e": {}, "a": []}"#,
        )
        .unwrap();
        let row = &v.get("rows").unwrap().as_array()[0];
        assert_eq!(row.get("row").and_then(Value::as_str), Some("xen-pv"));
        assert_eq!(row.get("x"), Some(&Value::Null));
        assert_eq!(row.get("ok"), Some(&Value::Bool(true)));
        assert_eq!(
            row.get("perf").and_then(|p| p.get("insns.layout")).and_then(Value::as_f64),
            Some(43244.0)
        );
        assert_eq!(row.get("perf").and_then(|p| p.get("r")).and_then(Value::as_f64), Some(150.0));
        assert_eq!(v.get("dispatch_ratio").and_then(Value::as_f64), Some(1.0075));
        assert!(parse(r#"{"a": 1"#).is_err());
        assert!(parse(r#"{"a": 1} x"#).is_err());
    }
}
