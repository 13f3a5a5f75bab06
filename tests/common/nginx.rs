//! A real reverse proxy for the web page test: Debian's nginx (installed by
//! `scripts/ensure-tools.sh`), run in the foreground from a temporary
//! prefix, with the two configurations the README documents:
//! `/solstice/` passed on with its prefix kept (the server runs with
//! `--base-path /solstice`) and `/stripped/` passed on with it removed (the
//! server runs at its root).
//!
//! Include with `#[path = "common/nginx.rs"] mod nginx;`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running nginx, stopped when dropped.
pub struct Nginx {
    /// `127.0.0.1:PORT` it listens on.
    pub addr: String,
    dir: tempfile::TempDir,
    child: Child,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    /// Its access log so far (every request line it proxied).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }
}

fn binary() -> PathBuf {
    std::env::var_os("SUNDIAL_NGINX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/nginx"))
}

/// The proxy settings both locations share: HTTP/1.1 to the server, the
/// client's Host passed on, nothing buffered (the page's event stream).
const PASS: &str = "proxy_http_version 1.1; proxy_set_header Connection \"\"; \
                    proxy_set_header Host $http_host; proxy_buffering off;";

/// Starts nginx on `addr` (a free `127.0.0.1:PORT`): `/solstice/` to `keep`
/// unchanged, `/stripped/` to `strip` without the prefix.
pub fn start(addr: &str, keep: &str, strip: &str) -> Nginx {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let conf = format!(
        "daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log {d}/access.log;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  server {{
    listen {addr};
    location /solstice/ {{ proxy_pass http://{keep}; {PASS} }}
    location /stripped/ {{ proxy_pass http://{strip}/; {PASS} }}
  }}
}}
"
    );
    let conf_path = dir.path().join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let child = Command::new(binary())
        .arg("-p")
        .arg(dir.path())
        .arg("-e")
        .arg(dir.path().join("error.log"))
        .arg("-c")
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (scripts/ensure-tools.sh installs nginx)",
                binary().display()
            )
        });
    let start = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "nginx never listened on {addr}: {}",
            std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Nginx {
        addr: addr.to_owned(),
        dir,
        child,
    }
}
