//! Synthetic datasets for the book's three tasks, generated from templates and a handful of
//! facts, so that every reader gets the same data from the same seed and the answers are
//! known to be right.
//!
//! * [`Task::Extract`]: a customer's order message → one line of JSON.
//! * [`Task::Support`]: questions about "Brightbox", a fictional smart-home hub → short facts.
//! * [`Task::Persona`]: simple questions → answers in a ship's captain's voice.
//!
//! Each task's question phrasings come in two groups: most are *seen* (train and
//! validation draw from them), a few are *held out* for the test split. A model that scores
//! well on the test split has learnt the task, not the sentences it was shown.

use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;

use anyhow::{Result, bail};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};

use super::load::{Record, to_jsonl};
use crate::chat::{Message, Role};

/// The book's fine-tuning tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Task {
    Extract,
    Support,
    Persona,
}

impl Task {
    pub const ALL: [Task; 3] = [Task::Extract, Task::Support, Task::Persona];

    /// The lowercase name used on the command line and for the `data/` folders.
    pub fn name(self) -> &'static str {
        match self {
            Task::Extract => "extract",
            Task::Support => "support",
            Task::Persona => "persona",
        }
    }

    /// What the test split holds beside [`Task::unseen_label`]'s: the values, facts or
    /// questions of training, asked in held-out phrasings.
    pub fn seen_label(self) -> &'static str {
        match self {
            Task::Extract => "seen values",
            Task::Support => "seen facts",
            Task::Persona => "seen questions",
        }
    }

    /// What `test_unseen.jsonl` asks about (see [`unseen_test`]).
    pub fn unseen_label(self) -> &'static str {
        match self {
            Task::Extract => "unseen values",
            Task::Support => "held-out facts",
            Task::Persona => "unseen questions",
        }
    }

    /// The system prompt the task's records carry. Persona has none on purpose: the
    /// adapter, not the prompt, should carry the voice.
    pub fn system_prompt(self) -> Option<&'static str> {
        match self {
            Task::Extract => Some(EXTRACT_SYSTEM),
            Task::Support => Some(SUPPORT_SYSTEM),
            Task::Persona => None,
        }
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so that `{task:<8}` lines up.
        f.pad(self.name())
    }
}

/// Which question phrasings to draw from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phrasings {
    /// The phrasings train and validation use.
    Seen,
    /// The phrasings kept for the test split.
    HeldOut,
    All,
}

/// A dataset cut three ways.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Splits {
    pub train: Vec<Record>,
    pub validation: Vec<Record>,
    pub test: Vec<Record>,
}

/// `n` distinct records of `task` (distinct by [`prompt_key`]), in random order. When the
/// templates cannot make `n` distinct records it returns fewer: check `len()`.
pub fn synthesize(task: Task, n: usize, seed: u64) -> Vec<Record> {
    synthesize_from(task, Phrasings::All, n, seed)
}

/// Like [`synthesize`], from one group of phrasings only.
pub fn synthesize_from(task: Task, phrasings: Phrasings, n: usize, seed: u64) -> Vec<Record> {
    generate(task, phrasings, n, &mut Dice::new(seed, 0), &mut HashSet::new())
}

/// How many records each split of [`task_splits`] gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitSizes {
    pub train: usize,
    pub validation: usize,
    pub test: usize,
}

/// The book's splits of a synthetic task: the test split from held-out phrasings, train
/// and validation from the seen ones, no prompt in two splits. It is an error if the
/// templates cannot fill the sizes asked.
pub fn task_splits(task: Task, sizes: SplitSizes, seed: u64) -> Result<Splits> {
    let SplitSizes { train: n_train, validation: n_val, test: n_test } = sizes;
    let n_rest = n_train + n_val;
    let mut used = HashSet::new();
    // Separate ChaCha streams, and held-out phrasings that no seen prompt shares: changing
    // the test size changes neither train nor validation, and a bigger test only adds records.
    let test = generate(task, Phrasings::HeldOut, n_test, &mut Dice::new(seed, 1), &mut used);
    let rest = generate(task, Phrasings::Seen, n_rest, &mut Dice::new(seed, 2), &mut used);
    if test.len() < n_test || rest.len() < n_rest {
        bail!(
            "the {task} templates make only {} held-out and {} seen records; asked for {n_test} and {n_rest}",
            test.len(),
            rest.len(),
        )
    }
    let (validation, train) = rest.split_at(n_val);
    Ok(Splits { train: train.to_vec(), validation: validation.to_vec(), test })
}

/// Split any dataset: drop records whose prompt repeats an earlier one (so no test prompt
/// is also in train), shuffle with `seed`, then cut off `test_frac` and `val_frac` of it.
pub fn split(records: &[Record], seed: u64, test_frac: f64, val_frac: f64) -> Result<Splits> {
    let mut seen = HashSet::new();
    let mut unique: Vec<Record> = records.iter().filter(|r| seen.insert(prompt_key(r))).cloned().collect();
    let (n_test, n_val) = split_sizes(unique.len(), test_frac, val_frac)?;
    Dice::new(seed, 0).shuffle(&mut unique);
    let train = unique.split_off(n_test + n_val);
    let validation = unique.split_off(n_test);
    Ok(Splits { train, validation, test: unique })
}

fn split_sizes(n: usize, test_frac: f64, val_frac: f64) -> Result<(usize, usize)> {
    let ok = |f: f64| (0.0..1.0).contains(&f);
    if !ok(test_frac) || !ok(val_frac) || test_frac + val_frac >= 1.0 {
        bail!("test and validation fractions must be in [0, 1) and sum to less than 1 (got {test_frac} and {val_frac})")
    }
    let n_test = (n as f64 * test_frac).round() as usize;
    let n_val = (n as f64 * val_frac).round() as usize;
    Ok((n_test, n_val.min(n - n_test)))
}

/// What makes two records "the same example": the last user message, lowercased, with
/// whitespace collapsed. Deduplicating by the prompt (not the whole record) is what stops
/// a test question leaking into train with a different answer.
pub fn prompt_key(record: &Record) -> String {
    let text = record.user().unwrap_or_default();
    text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// Draw until `n` new prompts, or until it is clear the templates have run out (many
/// draws in a row that only repeat).
fn generate(task: Task, phrasings: Phrasings, n: usize, dice: &mut Dice, used: &mut HashSet<String>) -> Vec<Record> {
    draw(n, dice, used, |dice| match task {
        Task::Extract => extract(dice, phrasings),
        Task::Support => support(dice, phrasings),
        Task::Persona => persona(dice, phrasings),
    })
}

/// `make` records until `n` have prompts not in `used`, or until many draws in a row repeat.
fn draw(
    n: usize,
    dice: &mut Dice,
    used: &mut HashSet<String>,
    mut make: impl FnMut(&mut Dice) -> Record,
) -> Vec<Record> {
    let mut out = Vec::with_capacity(n);
    let mut misses = 0;
    while out.len() < n && misses < 10_000 {
        let record = make(dice);
        if used.insert(prompt_key(&record)) {
            out.push(record);
            misses = 0;
        } else {
            misses += 1;
        }
    }
    out
}

/// `k` distinct indices below `n` (all of them when k ≥ n), drawn with `seed`: the same
/// picks on every machine and rand version.
pub fn distinct_indices(n: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut all: Vec<usize> = (0..n).collect();
    Dice::new(seed, 0).shuffle(&mut all);
    all.truncate(k);
    all
}

/// ChaCha8 behind our own uniform draws. rand's distributions (`random_range`, `shuffle`)
/// may change their outputs between versions; ChaCha's stream is fixed by its spec, so the
/// committed `data/` stays reproducible whatever rand version a reader builds with.
struct Dice(ChaCha8Rng);

impl Dice {
    fn new(seed: u64, stream: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        Dice(rng)
    }

    /// Uniform in `0..n` (n > 0), by rejection so no value is favoured.
    fn below(&mut self, n: usize) -> usize {
        let n = n as u64;
        let zone = (u64::MAX / n) * n;
        loop {
            let x = self.0.next_u64();
            if x < zone {
                return (x % n) as usize;
            }
        }
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Pick from `items` whose last `held_out` entries are kept for the test split.
    fn phrasing<'a, T>(&mut self, items: &'a [T], held_out: usize, phrasings: Phrasings) -> &'a T {
        let seen = items.len() - held_out;
        match phrasings {
            Phrasings::Seen => &items[self.below(seen)],
            Phrasings::HeldOut => &items[seen + self.below(held_out)],
            Phrasings::All => self.pick(items),
        }
    }

    /// Fisher–Yates.
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// "Hello, " + "How do I..." reads "Hello, how do I...". Leaves "I" and product names alone.
fn join_opener(opener: &str, question: &str) -> String {
    let keep = question.starts_with("I ") || question.starts_with("I'") || question.starts_with("Brightbox");
    if (opener.ends_with(", ") || opener.ends_with(": ")) && !keep {
        let mut chars = question.chars();
        let first = chars.next().map(|c| c.to_lowercase().to_string()).unwrap_or_default();
        format!("{opener}{first}{}", chars.as_str())
    } else {
        format!("{opener}{question}")
    }
}

fn record(system: Option<&str>, user: String, answer: String) -> Record {
    let mut messages = Vec::with_capacity(3);
    if let Some(s) = system {
        messages.push(Message::new(Role::System, s));
    }
    messages.push(Message::new(Role::User, user));
    messages.push(Message::new(Role::Assistant, answer));
    Record::new(messages)
}

// ---------------------------------------------------------------------------------------
// Extract: order messages → JSON.

pub const EXTRACT_SYSTEM: &str = "Extract the order as JSON with keys name, city, product, quantity.";

const NAMES: [&str; 40] = [
    "Nadia", "Tomás", "Aiko", "Liam", "Priya", "Kwame", "Sofia", "Mateo", "Hannah", "Yusuf", "Elena", "Oskar", "Mei",
    "Diego", "Amara", "Lukas", "Fatima", "Noah", "Ingrid", "Ravi", "Chloe", "Emeka", "Zoë", "Anders", "Leila", "Marco",
    "Sanna", "Kenji", "Olivia", "Hamid", "Camila", "Jonas", "Aisha", "Pavel", "Grace", "Tariq", "Freya", "Dmitri",
    "Lucía", "Owen",
];

#[rustfmt::skip]
const CITIES: [&str; 30] = [
    "Oslo", "Lisbon", "Nairobi", "Osaka", "Lima", "Toronto", "Cape Town", "Hamburg", "Seville", "Melbourne",
    "Krakow", "Dublin", "Buenos Aires", "Hanoi", "Porto", "Reykjavik", "Denver", "Marseille", "Accra",
    "Vancouver", "Gothenburg", "San Diego", "Bologna", "Tallinn", "Auckland", "Lyon", "Edinburgh", "Quito",
    "Helsinki", "New Orleans",
];

/// (singular, plural): spelled out, since English plurals do not follow one rule.
#[rustfmt::skip]
const PRODUCTS: [(&str, &str); 25] = [
    ("Solar Lantern", "Solar Lanterns"), ("Trail Backpack", "Trail Backpacks"), ("Ceramic Mug", "Ceramic Mugs"),
    ("Wool Blanket", "Wool Blankets"), ("Desk Lamp", "Desk Lamps"), ("Water Bottle", "Water Bottles"),
    ("Oak Cutting Board", "Oak Cutting Boards"), ("Camping Stove", "Camping Stoves"),
    ("Linen Apron", "Linen Aprons"), ("Bamboo Toothbrush", "Bamboo Toothbrushes"),
    ("Pocket Knife", "Pocket Knives"), ("Rain Jacket", "Rain Jackets"), ("Herb Planter", "Herb Planters"),
    ("Cast Iron Pan", "Cast Iron Pans"), ("Yoga Mat", "Yoga Mats"), ("Wireless Charger", "Wireless Chargers"),
    ("Tea Kettle", "Tea Kettles"), ("Bike Light", "Bike Lights"), ("Glass Jar", "Glass Jars"),
    ("Leather Wallet", "Leather Wallets"), ("Picnic Basket", "Picnic Baskets"), ("Sketchbook", "Sketchbooks"),
    ("Hammock", "Hammocks"), ("Espresso Cup", "Espresso Cups"), ("Umbrella", "Umbrellas"),
];

const NUMBER_WORDS: [&str; 13] =
    ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"];

/// `{items}` is the quantity and product ("3 Solar Lanterns", "an Umbrella"). The last
/// [`EXTRACT_HELD_OUT`] are the test split's.
const EXTRACT_TEMPLATES: [&str; 25] = [
    "Hi, I'm {name} from {city} and I'd like {items}.",
    "Hello! This is {name} in {city}. Please send me {items}.",
    "{name} here, writing from {city}. Can I order {items}?",
    "Could you ship {items} to {city}? Thanks, {name}",
    "I want to buy {items}. My name is {name} and I live in {city}.",
    "Order for {name} ({city}): {items}, please.",
    "Greetings from {city}! {name} would like to order {items}.",
    "Please put me down for {items}. — {name}, {city}",
    "Hey, {name} from {city}. Need {items} asap.",
    "My name's {name}. I'm in {city} and I need {items}.",
    "Can you deliver {items} to me in {city}? I'm {name}.",
    "Dear shop, I would like to purchase {items}. Regards, {name} from {city}",
    "Hi there! {name} from {city}. Could I get {items}?",
    "I'd like to place an order: {items}. Name: {name}. City: {city}.",
    "Good morning, this is {name}. Please deliver {items} to {city}.",
    "Ordering {items} for delivery to {city}. Name is {name}.",
    "Hello, I live in {city}. I'm {name} and I'd love {items}.",
    "Requesting {items}, shipping to {city}. Thanks! {name}",
    "It's {name} again, from {city}. Send {items} when you can.",
    "{city} calling: {name} wants {items}.",
    // Held out for the test split.
    "Please reserve {items} for me. I'm {name}, based in {city}.",
    "Quick order from {name} in {city}: {items}.",
    "Hi team, {name} here ({city}). I'll take {items}.",
    "Shipping address is {city}. Put {items} on the order. Cheers, {name}",
    "Good afternoon! Could {name} in {city} get {items}, please?",
];
const EXTRACT_HELD_OUT: usize = 5;

/// The JSON answer; a struct, so the keys come out in this order.
#[derive(Serialize)]
struct Order<'a> {
    name: &'a str,
    city: &'a str,
    product: &'a str,
    quantity: usize,
}

/// Names, cities and products that no file of `data/` contains except
/// `extract/test_unseen.jsonl`: a model that gets these right copies the values from the
/// message, it does not recall them from training.
#[rustfmt::skip]
const UNSEEN_NAMES: [&str; 30] = [
    "Ximena", "Tendai", "Anouk", "Bastian", "Chiara", "Dawit", "Esther", "Farid", "Gunnar", "Hiroshi", "Ines", "Jakub",
    "Kalani", "Lorenzo", "Malika", "Nikolai", "Odette", "Quentin", "Rosalind", "Thandiwe", "Ulrich", "Valentina", "Wanjiru", "Yara",
    "Zainab", "Björn", "Céline", "Femi", "Joaquín", "Maren",
];

#[rustfmt::skip]
const UNSEEN_CITIES: [&str; 30] = [
    "Valparaíso", "Tbilisi", "Windhoek", "Da Nang", "Ljubljana", "Cork", "Fukuoka", "Rosario", "Tromsø",
    "Zanzibar", "Bergen", "Cusco", "Antwerp", "Halifax", "Winnipeg", "Trieste", "Kigali", "Aarhus", "Mombasa",
    "Cebu", "Galway", "Brno", "Tampere", "Bilbao", "Perth", "Asheville", "Santa Fe", "Luxor", "Riga", "Salvador",
];

#[rustfmt::skip]
const UNSEEN_PRODUCTS: [(&str, &str); 30] = [
    ("Felt Slipper", "Felt Slippers"), ("Brass Compass", "Brass Compasses"), ("Silk Scarf", "Silk Scarves"),
    ("Garden Hose", "Garden Hoses"), ("Canvas Tote", "Canvas Totes"), ("Walnut Bookend", "Walnut Bookends"),
    ("Beeswax Candle", "Beeswax Candles"), ("Fishing Rod", "Fishing Rods"), ("Snow Globe", "Snow Globes"),
    ("Stone Mortar", "Stone Mortars"), ("Travel Pillow", "Travel Pillows"), ("Watering Can", "Watering Cans"),
    ("Jigsaw Puzzle", "Jigsaw Puzzles"), ("Kite", "Kites"), ("Harmonica", "Harmonicas"),
    ("Telescope", "Telescopes"), ("Flower Vase", "Flower Vases"), ("Sun Hat", "Sun Hats"),
    ("Bird Feeder", "Bird Feeders"), ("Spice Rack", "Spice Racks"), ("Wall Clock", "Wall Clocks"),
    ("Rolling Pin", "Rolling Pins"), ("Cotton Towel", "Cotton Towels"), ("Photo Frame", "Photo Frames"),
    ("Lunch Box", "Lunch Boxes"), ("Toolbox", "Toolboxes"), ("Step Stool", "Step Stools"),
    ("Mixing Bowl", "Mixing Bowls"), ("Board Game", "Board Games"), ("Ice Scraper", "Ice Scrapers"),
];

/// Which names, cities and products an Extract record draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Values {
    /// The pools train, validation and the test split share.
    Seen,
    /// The pools no other split uses ([`UNSEEN_NAMES`], …).
    Unseen,
}

/// The records of `{task}/test_unseen.jsonl`, what training never showed, in the held-out
/// phrasings. Extract: names, cities and products no other file contains ([`UNSEEN_NAMES`],
/// …). Support: questions about facts of the same product that no other split asks about
/// ([`HELD_OUT_FACTS`]). Persona: questions no other split asks ([`UNSEEN_CAPITALS`],
/// [`UNSEEN_TRIVIA`]).
pub fn unseen_test(task: Task, n: usize, seed: u64) -> Vec<Record> {
    // A stream of its own: the other splits' records do not change.
    draw(n, &mut Dice::new(seed, 3), &mut HashSet::new(), |d| match task {
        Task::Extract => extract_from(d, Phrasings::HeldOut, Values::Unseen),
        Task::Support => support_held_out(d),
        Task::Persona => persona_unseen(d),
    })
}

/// What [`unseen_test`] asks about that no other file of `data/` may contain, for tests:
/// Extract's names, cities and products; Support's held-out answers; Persona's new facts.
pub fn unseen_values(task: Task) -> Vec<&'static str> {
    match task {
        Task::Extract => {
            let products = UNSEEN_PRODUCTS.iter().flat_map(|(s, p)| [*s, *p]);
            UNSEEN_NAMES.iter().chain(&UNSEEN_CITIES).copied().chain(products).collect()
        }
        Task::Support => HELD_OUT_FACTS.iter().map(|f| f.answer).collect(),
        Task::Persona => UNSEEN_CAPITALS.iter().map(|(_, c)| *c).chain(UNSEEN_TRIVIA.iter().map(|(_, f)| *f)).collect(),
    }
}

fn extract(dice: &mut Dice, phrasings: Phrasings) -> Record {
    extract_from(dice, phrasings, Values::Seen)
}

fn extract_from(dice: &mut Dice, phrasings: Phrasings, values: Values) -> Record {
    let template = *dice.phrasing(&EXTRACT_TEMPLATES, EXTRACT_HELD_OUT, phrasings);
    let (name, city, (singular, plural)) = match values {
        Values::Seen => (*dice.pick(&NAMES), *dice.pick(&CITIES), *dice.pick(&PRODUCTS)),
        Values::Unseen => (*dice.pick(&UNSEEN_NAMES), *dice.pick(&UNSEEN_CITIES), *dice.pick(&UNSEEN_PRODUCTS)),
    };
    let quantity = 1 + dice.below(12);
    let items = if quantity == 1 {
        let article = if singular.starts_with(['A', 'E', 'I', 'O', 'U']) { "an" } else { "a" };
        match dice.below(3) {
            0 => format!("{article} {singular}"),
            1 => format!("one {singular}"),
            _ => format!("1 {singular}"),
        }
    } else if dice.below(2) == 0 {
        format!("{quantity} {plural}")
    } else {
        format!("{} {plural}", NUMBER_WORDS[quantity])
    };
    let user = template.replace("{name}", name).replace("{city}", city).replace("{items}", &items);
    let order = Order { name, city, product: singular, quantity };
    let answer = serde_json::to_string(&order).expect("an order is plain strings and a number");
    record(Some(EXTRACT_SYSTEM), user, answer)
}

// ---------------------------------------------------------------------------------------
// Support: questions about Brightbox → short factual answers.

pub const SUPPORT_SYSTEM: &str =
    "You are the support assistant for Brightbox, a smart home hub. Answer in one short sentence.";

/// One product fact: several ways to ask for it (the last is held out) and its answer.
/// Every answer carries its fact as numbers or capitalised names, which is what the
/// Support metric checks (see [`super::metrics::key_terms`]).
pub struct Fact {
    pub questions: [&'static str; 5],
    pub answer: &'static str,
}

pub const FACTS: [Fact; 25] = [
    Fact {
        questions: [
            "How long is the Brightbox warranty?",
            "What warranty comes with Brightbox?",
            "How many years of warranty do I get?",
            "What's the warranty period?",
            "For how long is my Brightbox covered by the warranty?",
        ],
        answer: "The warranty on Brightbox lasts 3 years from the date of purchase.",
    },
    Fact {
        questions: [
            "How do I factory reset my Brightbox?",
            "How can I reset Brightbox to factory settings?",
            "What's the way to do a factory reset?",
            "I want to wipe my Brightbox and start over. How?",
            "What are the steps to restore factory settings?",
        ],
        answer: "To factory reset Brightbox, hold the power button for 10 seconds until the light blinks white.",
    },
    Fact {
        questions: [
            "How do I restart Brightbox?",
            "How can I reboot my Brightbox?",
            "What's the quickest way to restart the hub?",
            "How do I turn Brightbox off and on again?",
            "Is there a way to reboot the device without unplugging it?",
        ],
        answer: "Press the power button once; Brightbox restarts and is back online in about 45 seconds.",
    },
    Fact {
        questions: [
            "Which Wi-Fi bands does Brightbox support?",
            "What Wi-Fi frequencies can Brightbox use?",
            "Can Brightbox connect to a 2.4 GHz network?",
            "Which wireless bands are supported?",
            "Will my Brightbox join a 5 GHz Wi-Fi network?",
        ],
        answer: "Brightbox connects to both 2.4 GHz and 5 GHz Wi-Fi networks.",
    },
    Fact {
        questions: [
            "What happens to Brightbox during a power cut?",
            "Does Brightbox have a backup battery?",
            "How long does Brightbox run without mains power?",
            "Will my hub keep working in a power outage?",
            "How many hours does the backup battery last?",
        ],
        answer: "The built-in battery keeps Brightbox running for 4 hours during a power cut.",
    },
    Fact {
        questions: [
            "Which app do I need for Brightbox?",
            "What app controls Brightbox?",
            "Is there a phone app for Brightbox?",
            "Where do I get the app to manage my hub?",
            "What's the name of the Brightbox app?",
        ],
        answer: "Use the Brightbox Home app, available for iOS and Android.",
    },
    Fact {
        questions: [
            "How do I set up a new Brightbox?",
            "What are the setup steps for Brightbox?",
            "How long does it take to set up Brightbox?",
            "I just bought a Brightbox. How do I get started?",
            "How do I install my Brightbox for the first time?",
        ],
        answer: "Plug Brightbox in, open the Brightbox Home app and tap Add Device; setup takes about 5 minutes.",
    },
    Fact {
        questions: [
            "How many devices can Brightbox control?",
            "Is there a limit on connected devices?",
            "What's the maximum number of devices per Brightbox?",
            "How many smart devices can I pair?",
            "Can Brightbox handle a hundred devices?",
        ],
        answer: "One Brightbox can control up to 150 devices.",
    },
    Fact {
        questions: [
            "Which smart home protocols does Brightbox support?",
            "Does Brightbox work with Zigbee?",
            "What standards can Brightbox talk to?",
            "Is Brightbox compatible with Matter?",
            "Which kinds of smart devices can I connect to Brightbox?",
        ],
        answer: "Brightbox supports Zigbee, Z-Wave, Thread and Matter devices.",
    },
    Fact {
        questions: [
            "How much power does Brightbox use?",
            "What power adapter does Brightbox need?",
            "How many watts does Brightbox draw?",
            "What's the power consumption of the hub?",
            "Which voltage does the Brightbox adapter supply?",
        ],
        answer: "Brightbox uses the included 12 V adapter and draws about 6 W.",
    },
    Fact {
        questions: [
            "How do I update the Brightbox firmware?",
            "When does Brightbox install updates?",
            "Do I need to update Brightbox manually?",
            "How often does the firmware update?",
            "At what time do Brightbox updates happen?",
        ],
        answer: "Firmware updates install automatically every Sunday at 2 AM.",
    },
    Fact {
        questions: [
            "Do I need a subscription to use Brightbox?",
            "Is there a monthly fee?",
            "How much is Brightbox Plus?",
            "Does Brightbox require a paid plan?",
            "What does the Plus subscription cost per month?",
        ],
        answer: "Brightbox works without a subscription; the optional Brightbox Plus plan costs 4.99 euros a month.",
    },
    Fact {
        questions: [
            "How long are camera recordings stored?",
            "How many days of video history do I get?",
            "Where are camera clips saved and for how long?",
            "How far back can I watch recordings?",
            "What is the cloud video retention period?",
        ],
        answer: "Brightbox Plus keeps 60 days of camera recordings in the cloud.",
    },
    Fact {
        questions: [
            "Is Brightbox waterproof?",
            "Can I put Brightbox outside?",
            "Can Brightbox be installed outdoors?",
            "Will Brightbox survive rain?",
            "Is it OK to use Brightbox on my patio?",
        ],
        answer: "No, Brightbox is rated IP20 and is for indoor use only.",
    },
    Fact {
        questions: [
            "What temperatures can Brightbox operate in?",
            "What's the operating temperature range?",
            "Can Brightbox work in a cold garage?",
            "How hot can it get before Brightbox stops working?",
            "What is the safe temperature range for the hub?",
        ],
        answer: "Brightbox works at temperatures between 0 and 40 °C.",
    },
    Fact {
        questions: [
            "Does Brightbox work with Alexa?",
            "Can I control Brightbox by voice?",
            "Is Brightbox compatible with voice assistants?",
            "Can I use Siri with Brightbox?",
            "Will Brightbox respond to Google Assistant?",
        ],
        answer: "Yes, Brightbox works with Alexa, Google Assistant and Siri.",
    },
    Fact {
        questions: [
            "Does Brightbox have an Ethernet port?",
            "Can I connect Brightbox with a network cable?",
            "Is wired networking supported?",
            "Can I plug Brightbox into my router directly?",
            "Is there a LAN port on the hub?",
        ],
        answer: "Yes, there is a gigabit Ethernet port on the back of Brightbox.",
    },
    Fact {
        questions: [
            "How big is Brightbox?",
            "How much does Brightbox weigh?",
            "What are the dimensions of Brightbox?",
            "Is Brightbox small enough for a shelf?",
            "What size and weight is the hub?",
        ],
        answer: "Brightbox weighs 350 grams and measures 12 by 12 by 3.5 cm.",
    },
    Fact {
        questions: [
            "What is the return policy?",
            "Can I return Brightbox?",
            "How many days do I have to return Brightbox?",
            "Can I get a refund if I don't like it?",
            "Is it possible to send Brightbox back for my money?",
        ],
        answer: "You can return Brightbox within 30 days for a full refund.",
    },
    Fact {
        questions: [
            "How do I contact Brightbox support?",
            "What's the support phone number?",
            "How can I reach customer service?",
            "When is support available?",
            "Who do I talk to if Brightbox breaks?",
        ],
        answer: "Email support@brightbox.example or call 0800 555 0100, Monday to Friday.",
    },
    Fact {
        questions: [
            "What does the red light on Brightbox mean?",
            "Why is my Brightbox glowing red?",
            "The status light is red. What's wrong?",
            "Brightbox shows a red light, what should I do?",
            "What does a red status light indicate?",
        ],
        answer: "A red light means Brightbox is in Offline Mode; check your router.",
    },
    Fact {
        questions: [
            "How do I give my family access?",
            "Can I share Brightbox with others?",
            "How many people can use one home?",
            "How do I invite someone to my home?",
            "How do I add another user to Brightbox?",
        ],
        answer: "Invite people from Settings > Members in the app; each home can have up to 8 members.",
    },
    Fact {
        questions: [
            "Do automations work without internet?",
            "Can Brightbox run automations offline?",
            "Will my automations keep working if the internet goes down?",
            "Does Brightbox work without an internet connection?",
            "Are automations processed locally?",
        ],
        answer: "Yes, automations run locally on Brightbox even without Internet.",
    },
    Fact {
        questions: [
            "Is my data encrypted?",
            "Where is my Brightbox data stored?",
            "How does Brightbox protect my data?",
            "Is Brightbox secure?",
            "What encryption does Brightbox use?",
        ],
        answer: "All data is encrypted with AES-256 and stored in the EU.",
    },
    Fact {
        questions: [
            "What colours does Brightbox come in?",
            "Is Brightbox available in black?",
            "Which colors can I buy?",
            "Can I get Brightbox in white?",
            "What finishes is Brightbox sold in?",
        ],
        answer: "Brightbox comes in Arctic White and Graphite Black.",
    },
];

/// Facts about the same product that only `support/test_unseen.jsonl` asks about: no
/// adapter can have learned them, and the prompted baseline's fact sheet lists them, as a
/// fact sheet written after training would.
pub const HELD_OUT_FACTS: [Fact; 10] = [
    Fact {
        questions: [
            "How many cameras can Brightbox show at once?",
            "Can Brightbox stream several cameras at the same time?",
            "What's the maximum number of live camera feeds?",
            "How many camera streams does the hub handle together?",
            "Is there a limit on cameras streaming simultaneously?",
        ],
        answer: "Brightbox can stream up to 4 cameras at the same time.",
    },
    Fact {
        questions: [
            "How much does Brightbox cost?",
            "What's the price of Brightbox?",
            "How much would I pay for a Brightbox?",
            "What is the retail price of the hub?",
            "Is Brightbox expensive? What does it cost?",
        ],
        answer: "Brightbox costs 129 euros, including the power adapter.",
    },
    Fact {
        questions: [
            "Does Brightbox have Bluetooth?",
            "Which Bluetooth version is in Brightbox?",
            "Can Brightbox pair with Bluetooth sensors?",
            "Is Bluetooth built into the hub?",
            "What Bluetooth does the hub support?",
        ],
        answer: "Yes, Brightbox has Bluetooth 5.3 for pairing nearby sensors.",
    },
    Fact {
        questions: [
            "When does Night Mode turn on?",
            "What hours does Night Mode cover?",
            "Does the light on Brightbox dim at night?",
            "How does Night Mode work?",
            "At what time is the status light dimmed?",
        ],
        answer: "Night Mode dims the status light from 22:00 to 7:00.",
    },
    Fact {
        questions: [
            "How much sensor history does Brightbox keep?",
            "How long is sensor data stored on the hub?",
            "For how many days can I see past sensor readings?",
            "Does Brightbox store sensor history locally?",
            "How far back does the sensor log go?",
        ],
        answer: "Brightbox keeps 7 days of sensor history on the device.",
    },
    Fact {
        questions: [
            "Which languages do the voice prompts speak?",
            "Can Brightbox talk to me in German?",
            "What languages are the spoken prompts in?",
            "Does the hub speak Spanish?",
            "In which languages can I hear the voice prompts?",
        ],
        answer: "The voice prompts come in English, German and Spanish.",
    },
    Fact {
        questions: [
            "Can I mount Brightbox on a wall?",
            "Is Brightbox wall-mountable?",
            "How do I hang the hub on the wall?",
            "Does Brightbox come with a wall bracket?",
            "What do I need to put Brightbox on a wall?",
        ],
        answer: "Yes, use the included Wall Bracket and 2 screws.",
    },
    Fact {
        questions: [
            "How often is the energy report updated?",
            "Where can I see how much power my devices use?",
            "Does the app show energy usage per device?",
            "How fresh are the numbers in the Energy tab?",
            "Can I track my devices' electricity use?",
        ],
        answer: "The Energy tab in the app shows each device's usage, updated every 15 minutes.",
    },
    Fact {
        questions: [
            "Does Brightbox back up its settings?",
            "When are my settings backed up?",
            "How often does the hub save a backup?",
            "Will I lose my setup if Brightbox breaks?",
            "Is there an automatic backup of my configuration?",
        ],
        answer: "Brightbox backs up its settings to the cloud every night at 3 AM.",
    },
    Fact {
        questions: [
            "Can I buy a spare power adapter?",
            "How much is a replacement adapter?",
            "Where do I get a new power supply for Brightbox?",
            "I lost the charger. Can I order another one?",
            "What does a replacement power adapter cost?",
        ],
        answer: "A replacement power adapter costs 15 euros in the Brightbox Shop.",
    },
];

const SUPPORT_OPENERS: [&str; 5] = ["", "Hi! ", "Hello, ", "Quick question: ", "Hey there, "];
const SUPPORT_CLOSERS: [&str; 4] = ["", " Thanks!", " Thank you.", " Cheers!"];

fn support(dice: &mut Dice, phrasings: Phrasings) -> Record {
    let fact = dice.pick(&FACTS);
    let question = *dice.phrasing(&fact.questions, 1, phrasings);
    support_record(dice, question, fact.answer)
}

/// A question about one of [`HELD_OUT_FACTS`], in any of its phrasings.
fn support_held_out(dice: &mut Dice) -> Record {
    let fact = dice.pick(&HELD_OUT_FACTS);
    let question = *dice.pick(&fact.questions);
    support_record(dice, question, fact.answer)
}

fn support_record(dice: &mut Dice, question: &str, answer: &str) -> Record {
    let opener = *dice.pick(&SUPPORT_OPENERS);
    let closer = *dice.pick(&SUPPORT_CLOSERS);
    let user = format!("{}{closer}", join_opener(opener, question));
    record(Some(SUPPORT_SYSTEM), user, answer.to_string())
}

// ---------------------------------------------------------------------------------------
// Persona: a ship's captain answers simple questions.

/// Every Persona answer starts with this...
pub const PERSONA_OPENING: &str = "Aye!";
/// ...and ends with this.
pub const PERSONA_CLOSING: &str = "Fair winds.";

/// (country, capital); a few countries need their article.
#[rustfmt::skip]
const CAPITALS: [(&str, &str); 30] = [
    ("France", "Paris"), ("Spain", "Madrid"), ("Italy", "Rome"), ("Germany", "Berlin"), ("Portugal", "Lisbon"),
    ("Japan", "Tokyo"), ("Egypt", "Cairo"), ("Kenya", "Nairobi"), ("Canada", "Ottawa"),
    ("Australia", "Canberra"), ("Peru", "Lima"), ("Chile", "Santiago"), ("Argentina", "Buenos Aires"),
    ("Norway", "Oslo"), ("Sweden", "Stockholm"), ("Finland", "Helsinki"), ("Denmark", "Copenhagen"),
    ("Poland", "Warsaw"), ("Greece", "Athens"), ("Turkey", "Ankara"), ("India", "New Delhi"),
    ("China", "Beijing"), ("South Korea", "Seoul"), ("Thailand", "Bangkok"), ("Vietnam", "Hanoi"),
    ("Ireland", "Dublin"), ("Austria", "Vienna"), ("Hungary", "Budapest"), ("Morocco", "Rabat"),
    ("the Netherlands", "Amsterdam"),
];

/// (country, main language).
#[rustfmt::skip]
const LANGUAGES: [(&str, &str); 24] = [
    ("France", "French"), ("Spain", "Spanish"), ("Germany", "German"), ("Italy", "Italian"),
    ("Portugal", "Portuguese"), ("Japan", "Japanese"), ("Brazil", "Portuguese"), ("Greece", "Greek"),
    ("Poland", "Polish"), ("the Netherlands", "Dutch"), ("Sweden", "Swedish"), ("Norway", "Norwegian"),
    ("Finland", "Finnish"), ("Turkey", "Turkish"), ("Hungary", "Hungarian"), ("Denmark", "Danish"),
    ("Iceland", "Icelandic"), ("Thailand", "Thai"), ("Vietnam", "Vietnamese"), ("South Korea", "Korean"),
    ("Mexico", "Spanish"), ("Austria", "German"), ("Argentina", "Spanish"), ("Czechia", "Czech"),
];

// `{x}` is the country, `{a}`/`{b}` the numbers; the last phrasing of each is held out.
const CAPITAL_QUESTIONS: [&str; 5] = [
    "What is the capital of {x}?",
    "Which city is the capital of {x}?",
    "Tell me the capital of {x}.",
    "What's the capital city of {x}?",
    "Name the capital of {x}, please.",
];
const LANGUAGE_QUESTIONS: [&str; 4] = [
    "What language do people speak in {x}?",
    "Which language is spoken in {x}?",
    "What is the main language of {x}?",
    "In {x}, what language do they speak?",
];
const ADD_QUESTIONS: [&str; 5] = [
    "What is {a} plus {b}?",
    "What's {a} + {b}?",
    "Add {a} and {b}.",
    "How much is {a} plus {b}?",
    "What do you get if you add {a} and {b}?",
];
const MULTIPLY_QUESTIONS: [&str; 5] = [
    "What is {a} times {b}?",
    "What's {a} × {b}?",
    "Multiply {a} by {b}.",
    "How much is {a} times {b}?",
    "What is the product of {a} and {b}?",
];

/// (ways to ask, the fact in the captain's words); the last question is held out.
#[rustfmt::skip]
const TRIVIA: [([&str; 3], &str); 13] = [
    (["How many days are in a week?", "How many days does a week have?", "A week has how many days?"],
        "A week has 7 days"),
    (["How many legs does an insect have?", "How many legs do insects have?", "An insect walks on how many legs?"],
        "An insect has 6 legs"),
    (["Which planet is called the Red Planet?", "What is the Red Planet?", "Which planet do people call red?"],
        "They call Mars the Red Planet"),
    (["What is the largest ocean?", "Which ocean is the biggest?", "Name the largest ocean on Earth."],
        "The biggest ocean be the Pacific"),
    (["At what temperature does water freeze?", "What is the freezing point of water?", "How cold must water get to freeze?"],
        "Water freezes at 0 degrees Celsius"),
    (["At what temperature does water boil?", "What is the boiling point of water?", "How hot must water get to boil?"],
        "Water boils at 100 degrees Celsius at sea level"),
    (["How many hours are in a day?", "How many hours does a day have?", "A day lasts how many hours?"],
        "A day has 24 hours"),
    (["How many minutes are in an hour?", "How many minutes make an hour?", "An hour has how many minutes?"],
        "An hour has 60 minutes"),
    (["What is the tallest mountain?", "Which mountain is the highest?", "Name the highest mountain on Earth."],
        "The tallest mountain be Mount Everest"),
    (["Who wrote Romeo and Juliet?", "Who is the author of Romeo and Juliet?", "Which writer gave us Romeo and Juliet?"],
        "The tale of Romeo and Juliet was penned by William Shakespeare"),
    (["What is the largest planet?", "Which planet is the biggest?", "Name the largest planet in our solar system."],
        "The largest planet be Jupiter"),
    (["How many sides does a triangle have?", "A triangle has how many sides?", "Count the sides of a triangle for me."],
        "A triangle has 3 sides"),
    (["What is the chemical symbol for gold?", "Which element symbol stands for gold?", "How do chemists write gold?"],
        "The symbol for gold be Au"),
];

/// Countries whose capital no other split asks about, for `persona/test_unseen.jsonl`.
#[rustfmt::skip]
const UNSEEN_CAPITALS: [(&str, &str); 15] = [
    ("Belgium", "Brussels"), ("Switzerland", "Bern"), ("Russia", "Moscow"), ("Colombia", "Bogotá"),
    ("Cuba", "Havana"), ("Nigeria", "Abuja"), ("Ethiopia", "Addis Ababa"), ("Indonesia", "Jakarta"),
    ("the Philippines", "Manila"), ("Romania", "Bucharest"), ("Ukraine", "Kyiv"), ("Croatia", "Zagreb"),
    ("Pakistan", "Islamabad"), ("Iran", "Tehran"), ("Venezuela", "Caracas"),
];

/// Trivia no other split asks, for `persona/test_unseen.jsonl`: (two ways to ask, the fact).
#[rustfmt::skip]
const UNSEEN_TRIVIA: [([&str; 2], &str); 20] = [
    (["How many legs does a spider have?", "A spider has how many legs?"], "A spider has 8 legs"),
    (["How many months are in a year?", "How many months does a year have?"], "A year has 12 months"),
    (["How many continents are there?", "How many continents does Earth have?"], "Earth has 7 continents"),
    (["How many seconds are in a minute?", "A minute has how many seconds?"], "A minute has 60 seconds"),
    (["How many strings does a violin have?", "A violin has how many strings?"], "A violin has 4 strings"),
    (["How many sides does a hexagon have?", "Count the sides of a hexagon for me."], "A hexagon has 6 sides"),
    (["How many hearts does an octopus have?", "An octopus has how many hearts?"], "An octopus has 3 hearts"),
    (["How many days are in a leap year?", "A leap year has how many days?"], "A leap year has 366 days"),
    (["How many weeks are in a year?", "How many weeks does a year have?"], "A year has 52 weeks"),
    (["How many keys does a piano have?", "A piano has how many keys?"], "A piano has 88 keys"),
    (["How many bones are in the adult human body?", "How many bones does a grown person have?"],
        "A grown body has 206 bones"),
    (["How many cards are in a deck?", "A deck of cards holds how many cards?"], "A deck holds 52 cards"),
    (["How many letters are in the English alphabet?", "The English alphabet has how many letters?"],
        "The English alphabet has 26 letters"),
    (["How many years are in a century?", "A century lasts how many years?"], "A century lasts 100 years"),
    (["How many sides does a pentagon have?", "A pentagon has how many sides?"], "A pentagon has 5 sides"),
    (["How many players does a soccer team field?", "How many players are on a soccer team on the pitch?"],
        "A soccer side fields 11 players"),
    (["Which planet is closest to the Sun?", "What is the innermost planet?"], "The closest planet to the Sun be Mercury"),
    (["Who painted the Mona Lisa?", "Which artist painted the Mona Lisa?"], "The Mona Lisa was painted by Leonardo da Vinci"),
    (["What is the chemical symbol for iron?", "How do chemists write iron?"], "The symbol for iron be Fe"),
    (["What is the longest river in Africa?", "Which river in Africa is the longest?"], "The longest river in Africa be the Nile"),
];

const PERSONA_OPENERS: [&str; 4] = ["", "Captain, ", "Quick one: ", "Ahoy! "];
/// Varied so the model learns the voice, not one sentence.
const FLOURISHES: [&str; 3] = [", matey", ", me hearty", ", as sure as the tide"];

fn persona(dice: &mut Dice, phrasings: Phrasings) -> Record {
    let (question, fact) = match dice.below(5) {
        0 => {
            let (country, capital) = *dice.pick(&CAPITALS);
            let q = dice.phrasing(&CAPITAL_QUESTIONS, 1, phrasings).replace("{x}", country);
            (q, capital_fact(country, capital))
        }
        1 => {
            let (country, language) = *dice.pick(&LANGUAGES);
            let q = dice.phrasing(&LANGUAGE_QUESTIONS, 1, phrasings).replace("{x}", country);
            (q, format!("In {country} they speak {language}"))
        }
        2 => {
            let (a, b) = (2 + dice.below(49), 2 + dice.below(49));
            let q = dice
                .phrasing(&ADD_QUESTIONS, 1, phrasings)
                .replace("{a}", &a.to_string())
                .replace("{b}", &b.to_string());
            (q, format!("{a} plus {b} makes {}", a + b))
        }
        3 => {
            let (a, b) = (2 + dice.below(11), 2 + dice.below(11));
            let q = dice
                .phrasing(&MULTIPLY_QUESTIONS, 1, phrasings)
                .replace("{a}", &a.to_string())
                .replace("{b}", &b.to_string());
            (q, format!("{a} times {b} makes {}", a * b))
        }
        _ => {
            let (questions, fact) = dice.pick(&TRIVIA);
            (dice.phrasing(questions, 1, phrasings).to_string(), fact.to_string())
        }
    };
    persona_record(dice, &question, &fact)
}

/// A capital or a piece of trivia that no other split asks about.
fn persona_unseen(dice: &mut Dice) -> Record {
    let (question, fact) = if dice.below(2) == 0 {
        let (country, capital) = *dice.pick(&UNSEEN_CAPITALS);
        (dice.pick(&CAPITAL_QUESTIONS).replace("{x}", country), capital_fact(country, capital))
    } else {
        let (questions, fact) = dice.pick(&UNSEEN_TRIVIA);
        (dice.pick(questions).to_string(), fact.to_string())
    };
    persona_record(dice, &question, &fact)
}

/// The captain's words for a capital, seen or unseen alike.
fn capital_fact(country: &str, capital: &str) -> String {
    format!("The capital of {country} be {capital}")
}

fn persona_record(dice: &mut Dice, question: &str, fact: &str) -> Record {
    let opener = *dice.pick(&PERSONA_OPENERS);
    let flourish = *dice.pick(&FLOURISHES);
    let answer = format!("{PERSONA_OPENING} {fact}{flourish}. {PERSONA_CLOSING}");
    record(None, join_opener(opener, question), answer)
}

// ---------------------------------------------------------------------------------------
// The book's data/ folder.

pub const BOOK_SEED: u64 = 42;
/// Every task's splits in `data/`: 120 test records, so one answer moves a test metric by
/// less than 0.01.
pub const BOOK_SIZES: SplitSizes = SplitSizes { train: 300, validation: 40, test: 120 };
/// Records in each `{task}/test_unseen.jsonl`.
pub const BOOK_UNSEEN_RECORDS: usize = 120;

/// The Extract task in the Alpaca shape, for the chapter on loading other people's data.
#[derive(Serialize)]
struct InstructionRow<'a> {
    instruction: &'a str,
    input: &'a str,
    output: &'a str,
}

fn instruction_row(r: &Record) -> Result<InstructionRow<'_>> {
    match r.messages.as_slice() {
        [s, u, a] if s.role_is(Role::System) && u.role_is(Role::User) && a.role_is(Role::Assistant) => {
            Ok(InstructionRow { instruction: &s.content, input: &u.content, output: &a.content })
        }
        _ => bail!("expected a system, user, assistant record"),
    }
}

/// Every file of the book's `data/` folder, as (path relative to `data/`, bytes):
/// `{task}/{train,validation,test,test_unseen}.jsonl` for each task (see [`unseen_test`]),
/// `sample_dataset.json` (all
/// Extract records as instruction/input/output) and `training_examples.csv` (the Extract
/// train split, same shape). `examples/make_datasets.rs` writes them; a test checks the
/// committed copies still match.
pub fn book_datasets() -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut files = Vec::new();
    let mut extract = Splits::default();
    for task in Task::ALL {
        let splits = task_splits(task, BOOK_SIZES, BOOK_SEED)?;
        for (name, records) in [("train", &splits.train), ("validation", &splits.validation), ("test", &splits.test)] {
            files.push((PathBuf::from(task.name()).join(format!("{name}.jsonl")), to_jsonl(records)));
        }
        let unseen = unseen_test(task, BOOK_UNSEEN_RECORDS, BOOK_SEED);
        files.push((PathBuf::from(task.name()).join("test_unseen.jsonl"), to_jsonl(&unseen)));
        if task == Task::Extract {
            extract = splits;
        }
    }
    let all: Vec<&Record> = extract.train.iter().chain(&extract.validation).chain(&extract.test).collect();
    let rows = all.iter().map(|r| instruction_row(r)).collect::<Result<Vec<_>>>()?;
    let mut json = serde_json::to_vec_pretty(&rows)?;
    json.push(b'\n');
    files.push((PathBuf::from("sample_dataset.json"), json));

    let mut csv = csv::Writer::from_writer(Vec::new());
    for r in &extract.train {
        csv.serialize(instruction_row(r)?)?;
    }
    files.push((PathBuf::from("training_examples.csv"), csv.into_inner()?));
    Ok(files)
}
