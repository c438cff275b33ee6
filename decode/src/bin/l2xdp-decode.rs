//! `l2xdp-decode FILE.pcap [--json]`: decodes every L2TP packet of a capture with `l2xdp-wire`
//! and marks each valid or invalid with the reason. Exit status: 0 when every L2TP packet is
//! valid, 1 when any is invalid, 2 when the capture cannot be read.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use l2xdp_decode::{to_text, DecodeOptions, Decoder};
use l2xdp_wire::pcap;

/// Decode the L2TP packets of a pcap or pcapng capture.
#[derive(Debug, Parser)]
#[command(name = "l2xdp-decode", version)]
struct Args {
    /// The capture (pcap or pcapng; Ethernet, raw IP or Linux cooked).
    file: PathBuf,
    /// One JSON object per line instead of text.
    #[arg(long)]
    json: bool,
    /// UDP port carrying L2TP (repeatable; default 1701).
    #[arg(long = "port", value_name = "PORT")]
    ports: Vec<u16>,
    /// Tunnel secret, to reveal hidden AVPs.
    #[arg(long)]
    secret: Option<String>,
    /// L2TPv3 cookie length (0, 4, 8) for sessions whose set-up is not in the capture.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(["0", "4", "8"]))]
    cookie_len: Option<String>,
    /// L2TPv3 data carries the default L2-Specific Sublayer (for sessions whose set-up is not
    /// in the capture).
    #[arg(long)]
    l2ss: bool,
    /// Print only invalid packets.
    #[arg(long)]
    invalid_only: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let records = match std::fs::File::open(&args.file)
        .map_err(pcap::PcapError::from)
        .and_then(pcap::read_all)
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("l2xdp-decode: {}: {e}", args.file.display());
            return ExitCode::from(2);
        }
    };
    let mut opts = DecodeOptions {
        secret: args.secret.map(String::into_bytes),
        cookie_len: args.cookie_len.and_then(|c| c.parse().ok()),
        l2ss: args.l2ss.then_some(true),
        ..DecodeOptions::default()
    };
    if !args.ports.is_empty() {
        opts.udp_ports = args.ports;
    }
    let mut decoder = Decoder::new(opts);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let (mut l2tp, mut invalid) = (0usize, 0usize);
    for (i, rec) in records.iter().enumerate() {
        let Some(report) = decoder.decode(i + 1, rec) else {
            continue;
        };
        l2tp += 1;
        if !report.valid {
            invalid += 1;
        }
        if args.invalid_only && report.valid {
            continue;
        }
        let line = if args.json {
            match serde_json::to_string(&report) {
                Ok(line) => line,
                Err(e) => {
                    eprintln!("l2xdp-decode: packet {}: {e}", i + 1);
                    continue;
                }
            }
        } else {
            to_text(&report)
        };
        // A closed pipe (`| head`) ends the output quietly.
        if writeln!(out, "{line}").is_err() {
            return exit_status(invalid);
        }
    }
    if !args.json {
        let _ = writeln!(
            out,
            "{} records, {l2tp} L2TP packets, {invalid} invalid",
            records.len()
        );
    }
    let _ = out.flush();
    exit_status(invalid)
}

fn exit_status(invalid: usize) -> ExitCode {
    if invalid > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
