//! Runs the Wapi, Sphere and ShipBob simulators as standalone HTTP servers until Ctrl-C,
//! printing their URLs and credentials, so a host's team can point a staging backend at them.
//!
//! ```text
//! cargo run --example simulate -- --wapi-port 8081 --sphere-port 8082 --shipbob-port 8083
//! ```
//!
//! Orders move one lifecycle step every `--tick-secs` (most are delivered, some fail an
//! attempt or come back). Faults can be switched on to exercise a backend's retries.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use fulfillkit::simulator::{Faults, Lifecycle, ShipBobSimulator, SphereSimulator, WapiSimulator};

const USAGE: &str = "\
usage: cargo run --example simulate -- [options]

  --bind ADDR            address to listen on (default 127.0.0.1; 0.0.0.0 for other machines)
  --wapi-port PORT       Wapi simulator port (default 8081)
  --sphere-port PORT     Sphere simulator port (default 8082)
  --shipbob-port PORT    ShipBob simulator port (default 8083)
  --tick-secs N          move every order one step each N seconds; 0 never (default 30)
  --latency-ms N         delay every answer by N ms (default 0)
  --server-errors P      answer HTTP 500 with probability P (default 0)
  --rate-limits P        answer HTTP 429 with Retry-After: 1 with probability P (default 0)
  --lost-responses P     apply, then drop the connection, with probability P (default 0)
  --seed N               seed of the faults and lifecycle picks (default 1)

Environment (overridden by the options): SIM_BIND, SIM_WAPI_PORT, SIM_SPHERE_PORT,
SIM_SHIPBOB_PORT, SIM_TICK_SECS.";

/// The command line and environment, parsed.
struct Options {
    bind: IpAddr,
    wapi_port: u16,
    sphere_port: u16,
    shipbob_port: u16,
    tick_secs: u64,
    latency_ms: u64,
    server_errors: f64,
    rate_limits: f64,
    lost_responses: f64,
    seed: u64,
}

fn parse<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{name}: cannot read {value:?}"))
}

fn options() -> Result<Options, String> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let mut options = Options {
        bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        wapi_port: 8081,
        sphere_port: 8082,
        shipbob_port: 8083,
        tick_secs: 30,
        latency_ms: 0,
        server_errors: 0.0,
        rate_limits: 0.0,
        lost_responses: 0.0,
        seed: 1,
    };
    if let Some(v) = env("SIM_BIND") {
        options.bind = parse("SIM_BIND", &v)?;
    }
    if let Some(v) = env("SIM_WAPI_PORT") {
        options.wapi_port = parse("SIM_WAPI_PORT", &v)?;
    }
    if let Some(v) = env("SIM_SPHERE_PORT") {
        options.sphere_port = parse("SIM_SPHERE_PORT", &v)?;
    }
    if let Some(v) = env("SIM_SHIPBOB_PORT") {
        options.shipbob_port = parse("SIM_SHIPBOB_PORT", &v)?;
    }
    if let Some(v) = env("SIM_TICK_SECS") {
        options.tick_secs = parse("SIM_TICK_SECS", &v)?;
    }
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            return Err(String::new());
        }
        // `--name value` or `--name=value`.
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        let value = match inline.or_else(|| args.next()) {
            Some(value) => value,
            None => return Err(format!("{name} needs a value")),
        };
        match name.as_str() {
            "--bind" => options.bind = parse(&name, &value)?,
            "--wapi-port" => options.wapi_port = parse(&name, &value)?,
            "--sphere-port" => options.sphere_port = parse(&name, &value)?,
            "--shipbob-port" => options.shipbob_port = parse(&name, &value)?,
            "--tick-secs" => options.tick_secs = parse(&name, &value)?,
            "--latency-ms" => options.latency_ms = parse(&name, &value)?,
            "--server-errors" => options.server_errors = parse(&name, &value)?,
            "--rate-limits" => options.rate_limits = parse(&name, &value)?,
            "--lost-responses" => options.lost_responses = parse(&name, &value)?,
            "--seed" => options.seed = parse(&name, &value)?,
            _ => return Err(format!("unknown option {name}")),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = match options() {
        Ok(options) => options,
        Err(problem) => {
            if !problem.is_empty() {
                eprintln!("{problem}\n");
            }
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    let faults = Faults::none()
        .with_latency(Duration::from_millis(options.latency_ms))
        .with_server_errors(options.server_errors)
        .with_rate_limits(options.rate_limits, 1)
        .with_lost_responses(options.lost_responses)
        .with_seed(options.seed);

    let wapi = WapiSimulator::builder()
        .with_addr(SocketAddr::new(options.bind, options.wapi_port))
        .with_lifecycle_mix([
            (8, Lifecycle::wapi_delivered()),
            (1, Lifecycle::wapi_failed_attempt()),
            (1, Lifecycle::wapi_returned()),
        ])
        .with_pickup_point_directory(true)
        .with_faults(faults.clone())
        .with_seed(options.seed)
        .start()
        .await?;
    let sphere = SphereSimulator::builder()
        .with_addr(SocketAddr::new(options.bind, options.sphere_port))
        .with_lifecycle_mix([
            (8, Lifecycle::sphere_shipped()),
            (1, Lifecycle::sphere_backordered()),
            (1, Lifecycle::sphere_returned()),
        ])
        .with_faults(faults.clone())
        .with_seed(options.seed)
        .start()
        .await?;
    let shipbob = ShipBobSimulator::builder()
        .with_addr(SocketAddr::new(options.bind, options.shipbob_port))
        .with_lifecycle_mix([
            (8, Lifecycle::shipbob_delivered()),
            (1, Lifecycle::shipbob_delivery_exception()),
            (1, Lifecycle::shipbob_return_to_sender()),
        ])
        .with_split_orders(0.1)
        .with_faults(faults)
        .with_seed(options.seed)
        .start()
        .await?;

    let w = wapi.credentials();
    let s = sphere.credentials();
    println!("Wapi simulator on {}", wapi.addr());
    println!("  WAPI_BASE_URL={}", wapi.base_url());
    println!("  WAPI_CLIENT_ID={}", w.client_id);
    println!("  WAPI_SECRET={}", w.secret.expose());
    println!("  pickup points: served (WapiBuilder::with_pickup_point_directory(true))");
    println!();
    println!("Sphere simulator on {}", sphere.addr());
    println!("  SPHERE_BASE_URL={}", sphere.base_url());
    println!("  SPHERE_ENVIRONMENT={}", s.environment);
    println!("  SPHERE_API_KEY={}", s.api_key.expose());
    println!("  SPHERE_CLIENT_CODE={}", s.client_code);
    println!("  SPHERE_LOCATION_ID={}", s.location_id);
    println!();
    let b = shipbob.credentials();
    println!("ShipBob simulator on {}", shipbob.addr());
    println!("  SHIPBOB_BASE_URL={}", shipbob.base_url());
    println!("  SHIPBOB_TOKEN={}", b.token.expose());
    println!("  SHIPBOB_CHANNEL_ID={}", b.channel_id);
    println!("  webhooks: POST /2026-07/webhook subscribes a URL of yours (signed deliveries)");
    println!();
    if options.bind.is_unspecified() {
        println!("Listening on every interface: use this host's address instead of 127.0.0.1.");
    }
    if options.tick_secs > 0 {
        println!("Orders move one step every {} s.", options.tick_secs);
    } else {
        println!("Orders stay where they are (--tick-secs 0).");
    }
    println!("Press Ctrl-C to stop.");

    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    // `interval` panics on zero; a tick that never comes stands in for "never".
    let period = Duration::from_secs(options.tick_secs.max(1));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tokio::select! {
            stopped = &mut ctrl_c => {
                stopped?;
                break;
            }
            _ = ticks.tick(), if options.tick_secs > 0 => {
                let moved = wapi.tick() + sphere.tick() + shipbob.tick();
                if moved > 0 {
                    println!("tick: {moved} orders moved");
                }
            }
        }
    }

    let (ws, ss, bs) = (wapi.stats(), sphere.stats(), shipbob.stats());
    println!(
        "\nstopping: wapi served {} requests ({} orders), sphere {} requests ({} orders), \
         shipbob {} requests ({} orders)",
        ws.total_requests(),
        wapi.orders().len(),
        ss.total_requests(),
        sphere.orders().len(),
        bs.total_requests(),
        shipbob.orders().len()
    );
    wapi.shutdown().await;
    sphere.shutdown().await;
    shipbob.shutdown().await;
    Ok(())
}
