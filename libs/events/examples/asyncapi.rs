//! Prints the AsyncAPI document: `cargo run -p pinhole-events --example asyncapi`.
fn main() {
    println!(
        "{}",
        serde_json::to_string_pretty(&pinhole_events::asyncapi()).unwrap_or_default()
    );
}
