//! Building test configs (MOSN JSON with a `"baton"` object).

use super::*;

/// Builds a config: listeners `(name, port, cluster)`, clusters `(name, lb, [host ports])`.
#[derive(Clone)]
pub struct Cfg {
    pub listeners: Vec<(String, u16, String)>,
    pub clusters: Vec<(String, String, Vec<u16>)>,
    pub admin: Option<u16>,
    pub baton: Vec<(String, String)>,
    /// Text replacements applied to the JSON, in order (for MOSN keys `Cfg` has no field for).
    pub edits: Vec<(String, String)>,
}

impl Cfg {
    /// One listener on `port` to one cluster of `hosts`.
    pub fn simple(port: u16, hosts: &[u16]) -> Cfg {
        Cfg {
            listeners: vec![("front".into(), port, "back".into())],
            clusters: vec![("back".into(), "LB_ROUNDROBIN".into(), hosts.to_vec())],
            admin: Some(free_port()),
            baton: vec![],
            edits: vec![],
        }
    }
    /// Replaces the first `from` (which must occur) with `to` in the rendered JSON.
    pub fn edit(mut self, from: &str, to: &str) -> Cfg {
        self.edits.push((from.into(), to.into()));
        self
    }
    /// Sets a `"baton"` setting; `value` is raw JSON.
    pub fn set(mut self, key: &str, value: &str) -> Cfg {
        self.baton.retain(|(k, _)| k != key);
        self.baton.push((key.into(), value.into()));
        self
    }
    pub fn json(&self) -> String {
        let ls: Vec<String> = self
            .listeners
            .iter()
            .map(|(n, p, c)| format!(
                r#"{{"name":"{n}","address":"127.0.0.1:{p}","bind_port":true,"filter_chains":[{{"tls_context":{{}},"filters":[{{"type":"tcp_proxy","config":{{"cluster":"{c}"}}}}]}}]}}"#
            ))
            .collect();
        let cs: Vec<String> = self
            .clusters
            .iter()
            .map(|(n, lb, hs)| {
                let hosts: Vec<String> = hs.iter().map(|p| format!(r#"{{"address":"127.0.0.1:{p}"}}"#)).collect();
                format!(r#"{{"Name":"{n}","type":"SIMPLE","lb_type":"{lb}","hosts":[{}]}}"#, hosts.join(","))
            })
            .collect();
        let admin = self.admin.map_or(String::new(), |p| {
            format!(r#","admin":{{"address":{{"socket_address":{{"address":"127.0.0.1","port_value":{p}}}}}}}"#)
        });
        let baton: Vec<String> = self.baton.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        let mut text = format!(
            r#"{{"servers":[{{"default_log_level":"INFO","listeners":[{}]}}],"cluster_manager":{{"clusters":[{}]}}{admin},"baton":{{{}}}}}"#,
            ls.join(","),
            cs.join(","),
            baton.join(",")
        );
        for (from, to) in &self.edits {
            assert!(text.contains(from.as_str()), "edit {from:?} not found in {text}");
            text = text.replacen(from.as_str(), to, 1);
        }
        text
    }
}
