//! Connection files: the one the client wrote (the proxy binds its ports)
//! and the inner one written for the real kernel (fresh ports on the
//! loopback, the same key, transport and signature scheme).

use std::fs;
use std::io::{self, Write};
use std::net::TcpListener;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// The five channels of a kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Shell,
    Iopub,
    Stdin,
    Control,
    Hb,
}

impl Channel {
    pub const ALL: [Channel; 5] = [Channel::Shell, Channel::Iopub, Channel::Stdin, Channel::Control, Channel::Hb];

    pub fn name(self) -> &'static str {
        match self {
            Channel::Shell => "shell",
            Channel::Iopub => "iopub",
            Channel::Stdin => "stdin",
            Channel::Control => "control",
            Channel::Hb => "hb",
        }
    }

    fn port_key(self) -> &'static str {
        match self {
            Channel::Shell => "shell_port",
            Channel::Iopub => "iopub_port",
            Channel::Stdin => "stdin_port",
            Channel::Control => "control_port",
            Channel::Hb => "hb_port",
        }
    }
}

/// A connection file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("cannot read the connection file {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("the connection file {path} is not valid JSON: {source}")]
    Json { path: PathBuf, source: serde_json::Error },
    #[error("the connection file {path}: {what}")]
    Field { path: PathBuf, what: String },
    #[error(
        "the connection file {path} asks for CurveZMQ transport encryption ({field}), which the leakguard kernel \
         proxy does not support; start kernels behind the proxy with transport encryption disabled \
         (KernelManager.transport_encryption = \"disabled\", or a kernelspec without \"curve\" in \
         metadata.supported_encryption, as `jupyter leakguard install --enforce` writes it)"
    )]
    Curve { path: PathBuf, field: String },
    #[error("cannot find a free port on 127.0.0.1 for the kernel: {0}")]
    Port(io::Error),
    #[error("cannot write the kernel's connection file {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Ipc,
}

/// A parsed connection file; unknown fields are kept for the inner file.
#[derive(Clone, Debug)]
pub struct Connection {
    fields: Map<String, Value>,
    pub transport: Transport,
    pub ip: String,
    pub key: Vec<u8>,
    pub signature_scheme: String,
    ports: [u16; 5],
}

impl Connection {
    pub fn read(path: &Path) -> Result<Connection, ConnectionError> {
        let data = fs::read(path).map_err(|source| ConnectionError::Read { path: path.into(), source })?;
        let value: Value =
            serde_json::from_slice(&data).map_err(|source| ConnectionError::Json { path: path.into(), source })?;
        Connection::from_value(value).map_err(|e| match e {
            FieldError::Curve(field) => ConnectionError::Curve { path: path.into(), field },
            FieldError::Other(what) => ConnectionError::Field { path: path.into(), what },
        })
    }

    fn from_value(value: Value) -> Result<Connection, FieldError> {
        let Value::Object(fields) = value else { return Err(FieldError::Other("not a JSON object".into())) };
        for field in ["curve_publickey", "curve_secretkey", "curve_serverkey"] {
            if fields.get(field).is_some_and(|v| !v.is_null()) {
                return Err(FieldError::Curve(field.into()));
            }
        }
        let text = |k: &str, default: &str| -> Result<String, FieldError> {
            match fields.get(k) {
                None | Some(Value::Null) => Ok(default.to_string()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(_) => Err(FieldError::Other(format!("{k} is not a string"))),
            }
        };
        let transport = match text("transport", "tcp")?.as_str() {
            "tcp" => Transport::Tcp,
            "ipc" => Transport::Ipc,
            other => return Err(FieldError::Other(format!("transport {other:?} is not supported (tcp or ipc)"))),
        };
        let ip = text("ip", "127.0.0.1")?;
        let key = text("key", "")?.into_bytes();
        let signature_scheme = text("signature_scheme", "hmac-sha256")?;
        let mut ports = [0u16; 5];
        for (i, ch) in Channel::ALL.iter().enumerate() {
            let k = ch.port_key();
            ports[i] = fields
                .get(k)
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .filter(|&p| p != 0)
                .ok_or_else(|| FieldError::Other(format!("{k} is missing or not a port number from 1 to 65535")))?;
        }
        Ok(Connection { fields, transport, ip, key, signature_scheme, ports })
    }

    pub fn port(&self, ch: Channel) -> u16 {
        self.ports[Channel::ALL.iter().position(|c| *c == ch).expect("every channel has a port")]
    }

    /// The ZeroMQ endpoint of a channel, as Jupyter spells it.
    pub fn endpoint(&self, ch: Channel) -> String {
        match self.transport {
            Transport::Tcp if self.ip.contains(':') => format!("tcp://[{}]:{}", self.ip, self.port(ch)),
            Transport::Tcp => format!("tcp://{}:{}", self.ip, self.port(ch)),
            Transport::Ipc => format!("ipc://{}-{}", self.ip, self.port(ch)),
        }
    }

    pub fn ipv6(&self) -> bool {
        self.transport == Transport::Tcp && self.ip.contains(':')
    }

    /// The connection for the real kernel: free loopback ports (tcp) or
    /// sockets beside the client's (ipc); the same key and scheme.
    pub fn inner(&self) -> Result<Connection, ConnectionError> {
        let mut inner = self.clone();
        match self.transport {
            Transport::Tcp => {
                inner.ip = "127.0.0.1".into();
                // Held together so the five are distinct; released for the kernel to bind.
                let listeners: Vec<TcpListener> = (0..5)
                    .map(|_| TcpListener::bind(("127.0.0.1", 0)))
                    .collect::<Result<_, _>>()
                    .map_err(ConnectionError::Port)?;
                for (i, l) in listeners.iter().enumerate() {
                    inner.ports[i] = l.local_addr().map_err(ConnectionError::Port)?.port();
                }
            }
            Transport::Ipc => inner.ip = format!("{}-leakguard-kernel", self.ip),
        }
        inner.fields.insert("ip".into(), Value::String(inner.ip.clone()));
        for (i, ch) in Channel::ALL.iter().enumerate() {
            inner.fields.insert(ch.port_key().into(), Value::from(inner.ports[i]));
        }
        Ok(inner)
    }

    /// Writes the file readable by its owner only (it holds the key).
    pub fn write(&self, path: &Path) -> Result<(), ConnectionError> {
        let err = |source| ConnectionError::Write { path: path.into(), source };
        let tmp = path.with_extension("json.tmp");
        let mut f =
            fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(err)?;
        f.set_permissions(fs::Permissions::from_mode(0o600)).map_err(err)?;
        let mut data = serde_json::to_vec_pretty(&self.fields).expect("a JSON map serialises");
        data.push(b'\n');
        f.write_all(&data).map_err(err)?;
        f.sync_all().map_err(err)?;
        fs::rename(&tmp, path).map_err(err)
    }

    /// A JSON field of the file (`kernel_name`, `jupyter_session`...).
    pub fn field(&self, k: &str) -> Option<&str> {
        self.fields.get(k).and_then(Value::as_str)
    }
}

enum FieldError {
    Curve(String),
    Other(String),
}

/// Where the inner connection file goes: beside the client's, in Jupyter's
/// private runtime directory.
pub fn inner_path(outer: &Path) -> PathBuf {
    let stem = outer.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "kernel".into());
    outer.with_file_name(format!("{stem}-leakguard-inner.json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        json!({"shell_port": 50001, "iopub_port": 50002, "stdin_port": 50003, "control_port": 50004,
               "hb_port": 50005, "ip": "127.0.0.1", "key": "k3y", "transport": "tcp",
               "signature_scheme": "hmac-sha256", "kernel_name": "py", "jupyter_session": "/nb.ipynb"})
    }

    #[test]
    fn endpoints_and_inner_file() {
        let c = Connection::from_value(sample()).ok().unwrap();
        assert_eq!(c.endpoint(Channel::Iopub), "tcp://127.0.0.1:50002");
        let inner = c.inner().unwrap();
        assert_eq!((inner.key.as_slice(), inner.signature_scheme.as_str()), (&b"k3y"[..], "hmac-sha256"));
        let ports: Vec<u16> = Channel::ALL.iter().map(|&ch| inner.port(ch)).collect();
        assert!(ports.iter().all(|p| !(50001..=50005).contains(p)), "fresh ports: {ports:?}");
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 5);
        let dir = tempfile::tempdir().unwrap();
        let path = inner_path(&dir.path().join("kernel-abc.json"));
        assert!(path.ends_with("kernel-abc-leakguard-inner.json"));
        inner.write(&path).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let back = Connection::read(&path).unwrap();
        assert_eq!(back.port(Channel::Hb), inner.port(Channel::Hb));
        assert_eq!(back.field("jupyter_session"), Some("/nb.ipynb"), "other fields kept");
    }

    #[test]
    fn ipc_sockets_go_beside_the_clients() {
        let mut v = sample();
        v["transport"] = json!("ipc");
        v["ip"] = json!("/run/user/1/kernel-abc");
        let c = Connection::from_value(v).ok().unwrap();
        assert_eq!(c.endpoint(Channel::Shell), "ipc:///run/user/1/kernel-abc-50001");
        assert_eq!(c.inner().unwrap().endpoint(Channel::Shell), "ipc:///run/user/1/kernel-abc-leakguard-kernel-50001");
    }

    #[test]
    fn curve_and_bad_files_are_refused() {
        let mut v = sample();
        v["curve_publickey"] = json!("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7");
        assert!(matches!(Connection::from_value(v), Err(FieldError::Curve(f)) if f == "curve_publickey"));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.json");
        let mut v = sample();
        v["curve_secretkey"] = json!("x");
        fs::write(&p, v.to_string()).unwrap();
        let msg = Connection::read(&p).unwrap_err().to_string();
        assert!(msg.contains("CurveZMQ") && msg.contains("transport_encryption"), "{msg}");
        let mut v = sample();
        v.as_object_mut().unwrap().remove("hb_port");
        fs::write(&p, v.to_string()).unwrap();
        assert!(Connection::read(&p).unwrap_err().to_string().contains("hb_port"));
        fs::write(&p, "{").unwrap();
        assert!(matches!(Connection::read(&p), Err(ConnectionError::Json { .. })));
    }
}
