//! Listing 9-1: the task metrics, on answers a model might give.
//!
//!     cargo run -p lorakit --example listing_09_01_metrics
use lorakit::data::{Task, exact_match, task_metric};

fn main() {
    // ANCHOR: extract
    let gold = r#"{"name":"Mei","city":"Lisbon","product":"Solar Lantern","quantity":6}"#;
    let answers = [
        r#"{"name":"Mei","city":"Lisbon","product":"Solar Lantern","quantity":6}"#,
        r#"{"city": "Lisbon", "name": "Mei", "quantity": 6, "product": "Solar Lantern"}"#,
        r#"{"name":"Mei","city":"Lisbon","product":"Solar Lanterns","quantity":"6"}"#,
        r#"```json {"name":"Mei","city":"Lisbon","product":"Solar Lantern","quantity":6} ```"#,
        "Mei from Lisbon would like 6 Solar Lanterns.",
    ];
    for a in answers {
        println!("extract {:.2}  exact {:<5}  {a}", task_metric(Task::Extract, a, gold), exact_match(a, gold));
    }
    // ANCHOR_END: extract

    // ANCHOR: others
    let gold = "Brightbox supports Zigbee, Z-Wave, Thread and Matter devices.";
    for a in
        ["You can connect Zigbee, Z-Wave, Thread and Matter devices.", "Brightbox supports Zigbee and Wi-Fi devices."]
    {
        println!("support {:.0}  {a}", task_metric(Task::Support, a, gold));
    }
    let gold = "Aye! 7 times 7 makes 49, matey. Fair winds.";
    for a in
        ["Aye! 7 times 7 be 49, me hearty. Fair winds.", "Aye! That be 49, me hearty. Fair winds.", "7 times 7 is 49."]
    {
        println!("persona {:.0}  {a}", task_metric(Task::Persona, a, gold));
    }
    // ANCHOR_END: others
}
