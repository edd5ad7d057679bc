//! `slipway tunnel`: a local TCP forwarder from 127.0.0.1 to a remote Slipway's HTTPS API,
//! trusting the platform CA.
//!
//! The real heroku CLI only sends its key to `localhost`/`127.0.0.1`; with a tunnel,
//! `HEROKU_HOST=http://127.0.0.1:5000` drives a remote Slipway. Each accepted connection
//! gets its own TLS connection to the remote and bytes are copied both ways untouched, so
//! the API, git's smart HTTP and streaming responses (build output, log sessions) pass
//! through as they are, at their own pace.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use reqwest::Url;
use rustls_pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};

#[cfg(test)]
mod tests;

/// `slipway tunnel` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct TunnelArgs {
    /// The remote Slipway's HTTPS API (`--api-tls-addr`), e.g. https://paas.example.com:5443.
    #[arg(long, env = "SLIPWAY_REMOTE")]
    pub remote: String,
    /// The local port to listen on (127.0.0.1 only).
    #[arg(long, default_value_t = 5000)]
    pub port: u16,
    /// The platform CA's certificate (PEM) to trust; default $SLIPWAY_CA_CERT. Get it on the
    /// server's host with `slipway ca --data-dir DIR`.
    #[arg(long, env = "SLIPWAY_CA_CERT")]
    pub ca_cert: Option<std::path::PathBuf>,
}

/// Why the tunnel could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TunnelError {
    #[error(
        "--remote {0:?} is not an https:// URL with a host, e.g. https://paas.example.com:5443"
    )]
    BadRemote(String),
    #[error("No CA certificate to trust: pass --ca-cert FILE or set SLIPWAY_CA_CERT (on the server's host, `slipway ca --data-dir DIR > slipway-ca.pem`).")]
    NoCa,
    #[error("Could not read the CA certificate {}: {reason}", path.display())]
    CaFile {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("{} holds no PEM certificate.", path.display())]
    NotACertificate { path: std::path::PathBuf },
    #[error("Could not listen on 127.0.0.1:{port}: {reason}. Pick another port with --port.")]
    Listen { port: u16, reason: String },
}

/// Where the tunnel connects: host, port and the name the certificate must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Remote {
    pub(crate) host: String,
    pub(crate) port: u16,
}

/// Parses `--remote`: an `https://` URL with a host; the port defaults to 443.
pub(crate) fn parse_remote(remote: &str) -> Result<Remote, TunnelError> {
    let bad = || TunnelError::BadRemote(remote.to_owned());
    let url = Url::parse(remote).map_err(|_| bad())?;
    if url.scheme() != "https" {
        return Err(bad());
    }
    let host = match url.host().ok_or_else(bad)? {
        url::Host::Domain(domain) => domain.to_owned(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => ip.to_string(),
    };
    Ok(Remote {
        host,
        port: url.port_or_known_default().unwrap_or(443),
    })
}

/// A TLS client configuration trusting only the certificates in `pem`.
fn tls_config(pem: &[u8], path: &std::path::Path) -> Result<rustls::ClientConfig, TunnelError> {
    let roots = crate::run::roots_from_pem(pem).ok_or_else(|| TunnelError::NotACertificate {
        path: path.to_owned(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth())
        .map_err(|e| TunnelError::CaFile {
            path: path.to_owned(),
            reason: e.to_string(),
        })
}

/// A running tunnel: its local address, and the task accepting connections.
pub(crate) struct Tunnel {
    pub(crate) local: SocketAddr,
    listener: TcpListener,
    remote: Remote,
    connector: tokio_rustls::TlsConnector,
}

impl Tunnel {
    /// Binds 127.0.0.1:`port` (0: any free port) for `remote`, trusting `pem`.
    pub(crate) async fn bind(
        port: u16,
        remote: Remote,
        pem: &[u8],
        ca_path: &std::path::Path,
    ) -> Result<Tunnel, TunnelError> {
        let config = tls_config(pem, ca_path)?;
        let listener =
            TcpListener::bind(("127.0.0.1", port))
                .await
                .map_err(|e| TunnelError::Listen {
                    port,
                    reason: e.to_string(),
                })?;
        let local = listener.local_addr().map_err(|e| TunnelError::Listen {
            port,
            reason: e.to_string(),
        })?;
        Ok(Tunnel {
            local,
            listener,
            remote,
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
        })
    }

    /// Accepts connections until the process ends, each forwarded on its own task.
    pub(crate) async fn serve(self) {
        loop {
            let (client, peer) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    eprintln!("slipway tunnel: accepting a connection failed: {error}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let remote = self.remote.clone();
            let connector = self.connector.clone();
            tokio::spawn(async move {
                if let Err(error) = forward(client, &remote, connector).await {
                    eprintln!(
                        "slipway tunnel: {peer} to {}:{}: {error:#}",
                        remote.host, remote.port
                    );
                }
            });
        }
    }
}

/// Copies one local connection to a new TLS connection to the remote and back until both
/// sides are done.
async fn forward(
    mut client: TcpStream,
    remote: &Remote,
    connector: tokio_rustls::TlsConnector,
) -> anyhow::Result<()> {
    let _ = client.set_nodelay(true);
    let tcp = TcpStream::connect((remote.host.as_str(), remote.port))
        .await
        .context("connecting")?;
    let _ = tcp.set_nodelay(true);
    let name = ServerName::try_from(remote.host.clone()).context("the remote's name")?;
    let mut tls = connector
        .connect(name, tcp)
        .await
        .context("the TLS handshake (is --ca-cert the remote's platform CA?)")?;
    match tokio::io::copy_bidirectional(&mut client, &mut tls).await {
        Ok(_) => Ok(()),
        // A client or server hanging up mid-stream is how `logs --tail` ends.
        Err(error)
            if matches!(
                error.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}

/// Runs `slipway tunnel` until interrupted.
pub(crate) async fn run(args: TunnelArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let remote = parse_remote(&args.remote)?;
    let ca_path = args.ca_cert.ok_or(TunnelError::NoCa)?;
    let pem = std::fs::read(&ca_path).map_err(|e| TunnelError::CaFile {
        path: ca_path.clone(),
        reason: e.to_string(),
    })?;
    let tunnel = Tunnel::bind(args.port, remote.clone(), &pem, &ca_path).await?;
    writeln!(
        out,
        "Forwarding http://{} to https://{}:{}\nPoint the heroku CLI at it: export HEROKU_HOST=http://{} HEROKU_PARTICLEBOARD_URL=http://{}\nor slipway: export SLIPWAY_API_URL=http://{}",
        tunnel.local, remote.host, remote.port, tunnel.local, tunnel.local, tunnel.local
    )?;
    out.flush()?;
    tokio::select! {
        () = tunnel.serve() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
