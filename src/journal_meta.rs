//! What a journal directory needs besides the journals to print events by name: the symbol
//! table (`meta.json`, written once) and the account names (`accounts.txt`, one per line, line
//! number = account id, appended before the first command that uses a new name is journaled).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use engine::price_text::{self, PriceText};
use engine::SymbolSpec;
use serde::{Deserialize, Serialize};

use crate::names::Names;
use engine::AccountId;

#[derive(Serialize, Deserialize)]
struct Meta {
    symbols: Vec<MetaSymbol>,
}

#[derive(Serialize, Deserialize)]
struct MetaSymbol {
    name: String,
    tick: String,
    lot: u64,
}

/// Writes `meta.json` (the symbol table) into a journal directory.
pub fn write_meta(dir: &Path, symbols: &[SymbolSpec]) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let meta = Meta {
        symbols: symbols
            .iter()
            .map(|s| MetaSymbol {
                name: s.name.clone(),
                tick: PriceText::trimmed(i128::from(s.tick_units), 0).to_string(),
                lot: s.lot,
            })
            .collect(),
    };
    let path = dir.join("meta.json");
    let mut file = File::create(&path)?;
    serde_json::to_writer_pretty(&mut file, &meta).map_err(io::Error::other)?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// Reads the symbol table of a journal directory.
pub fn read_meta(dir: &Path) -> io::Result<Vec<SymbolSpec>> {
    let path = dir.join("meta.json");
    let text = fs::read_to_string(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let meta: Meta = serde_json::from_str(&text)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display())))?;
    meta.symbols
        .into_iter()
        .map(|s| {
            let tick = match price_text::parse_units(&s.tick) {
                Ok(units) if units.get() > 0 => units,
                Ok(_) => return Err(bad_tick(&path, &s.tick, "not positive".into())),
                Err(e) => return Err(bad_tick(&path, &s.tick, e.to_string())),
            };
            if s.lot == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: lot 0 for {}", path.display(), s.name),
                ));
            }
            Ok(SymbolSpec::new(&s.name, tick, s.lot))
        })
        .collect()
}

fn bad_tick(path: &Path, tick: &str, why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{}: bad tick {tick:?}: {why}", path.display()))
}

/// Appends account names `from..` of `names` to `accounts.txt` and flushes them to the OS.
pub fn append_accounts(dir: &Path, names: &Names, from: usize) -> io::Result<()> {
    let mut file = OpenOptions::new().create(true).append(true).open(dir.join("accounts.txt"))?;
    let mut text = String::new();
    for id in from..names.accounts_len() {
        text.push_str(names.account_name(AccountId(id as u32)));
        text.push('\n');
    }
    file.write_all(text.as_bytes())
}

/// Registers the accounts of a journal directory into `names`, in id order.
pub fn read_accounts(dir: &Path, names: &mut Names) -> io::Result<()> {
    let path = dir.join("accounts.txt");
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for name in text.lines() {
        names.account_id(name).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, format!("{}: too many accounts", path.display()))
        })?;
    }
    Ok(())
}
