//! `portico cert NAME…`: a certificate for the names given, signed by the local CA in the
//! data directory (created on first use), for development HTTPS (`tls::local_ca`).

use std::path::PathBuf;
use std::process::ExitCode;

use super::{Environment, exit};
use crate::tls::local_ca::{LocalCa, trust_hint};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Host names or IP addresses the certificate is for (`localhost`, `*.dev.test`,
    /// `127.0.0.1`).
    #[arg(required = true, value_name = "NAME")]
    names: Vec<String>,
    /// Where to write NAME.pem and NAME-key.pem (default: DATA_DIR/certs).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Name URL in the certificate as where the CA's revocation list is published, and
    /// write that list to DIR/local-ca.crl for you to serve there.
    #[arg(long, value_name = "URL")]
    crl_url: Option<String>,
}

pub fn run(args: Args, env: &Environment) -> ExitCode {
    let ca = match LocalCa::open_or_create(&env.data_dir) {
        Ok(ca) => ca,
        Err(e) => {
            eprintln!(
                "error: cannot create or read the local CA in {}: {e}",
                env.data_dir.join("ca").display()
            );
            return exit::code(exit::FAILURE);
        }
    };
    let dir = args.out.unwrap_or_else(|| env.data_dir.join("certs"));
    if let Some(url) = &args.crl_url {
        match ca.publish_crl(&dir) {
            Ok(path) => println!("revocation list: {} (serve it at {url})", path.display()),
            Err(e) => {
                eprintln!(
                    "error: cannot write the revocation list in {}: {e}",
                    dir.display()
                );
                return exit::code(exit::FAILURE);
            }
        }
    }
    match ca.issue(&args.names, &dir, args.crl_url.as_deref()) {
        Ok(leaf) => {
            println!("certificate: {}", leaf.cert_path.display());
            println!("key:         {}", leaf.key_path.display());
            println!("local CA:    {}", ca.cert_path.display());
            println!();
            println!("Use them in [site.tls] (cert = \"…\", key = \"…\") or with");
            println!(
                "  portico file-server --root DIR --tls-cert {} --tls-key {}",
                leaf.cert_path.display(),
                leaf.key_path.display()
            );
            println!();
            print!("{}", trust_hint(&ca));
            exit::code(exit::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: cannot make the certificate: {e}");
            exit::code(exit::INVALID_CONFIG)
        }
    }
}
