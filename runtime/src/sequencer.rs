//! The sequencer: gives every command its place in the total order, and its time.
//!
//! The engine reads no clock (design invariant 1); time and order enter as the command's
//! [`CommandHeader`](engine::CommandHeader), and this is where they are written. The sequencer
//! itself reads no clock either: the caller passes `now_ns`, so it is deterministic and tested
//! with plain numbers. The runner calls it on the engine thread, right before `process`.

use engine::Command;

/// Stamps commands with a gapless sequence number and a never-decreasing timestamp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sequencer {
    /// Sequence number the next command gets.
    seq_next: u64,
    /// Latest timestamp this sequencer took from a clock (0 before the first).
    ts_last_ns: u64,
}

impl Sequencer {
    /// A sequencer whose first command gets `seq_first`: 1 for a fresh journal, the last
    /// journaled sequence number + 1 when resuming.
    pub fn new(seq_first: u64) -> Sequencer {
        Sequencer { seq_next: seq_first, ts_last_ns: 0 }
    }

    /// Sequence number the next command gets.
    pub fn seq_next(&self) -> u64 {
        self.seq_next
    }

    /// Writes the command's header: `seq` is always the next number (whatever the command
    /// carried); `ts` is kept when the command already has one (a command file's `ts` field,
    /// replayed flow), otherwise set to `now_ns`, raised to the latest clock time stamped so
    /// far: a wall clock can step back (NTP), and time going backwards in the journal would
    /// make GTD expiry depend on clock corrections.
    #[inline]
    pub fn stamp(&mut self, cmd: &mut Command, now_ns: u64) {
        cmd.header.seq = self.seq_next;
        // A u64 of commands does not run out: 2^64 at 10^9 per second is 584 years.
        self.seq_next += 1;
        if cmd.header.ts == 0 {
            self.ts_last_ns = self.ts_last_ns.max(now_ns);
            cmd.header.ts = self.ts_last_ns;
        }
    }
}

impl Default for Sequencer {
    /// Starts at sequence number 1, as a fresh journal does.
    fn default() -> Sequencer {
        Sequencer::new(1)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use engine::SymbolId;
    use engine::{CommandHeader, CommandKind};

    fn halt() -> Command {
        Command::new(CommandKind::Halt { symbol: SymbolId(0) })
    }

    #[test]
    fn sequence_numbers_are_gapless_from_the_first() {
        let mut sequencer = Sequencer::new(41);
        let seqs: Vec<u64> = (0..5)
            .map(|_| {
                let mut cmd = halt();
                sequencer.stamp(&mut cmd, 7);
                cmd.header.seq
            })
            .collect();
        assert_eq!(seqs, [41, 42, 43, 44, 45]);
        assert_eq!(sequencer.seq_next(), 46);
        assert_eq!(Sequencer::default().seq_next(), 1);
    }

    #[test]
    fn a_carried_seq_is_overwritten() {
        let mut sequencer = Sequencer::new(1);
        let mut cmd = halt();
        cmd.header.seq = 999;
        sequencer.stamp(&mut cmd, 5);
        assert_eq!(cmd.header, CommandHeader { seq: 1, ts: 5 });
    }

    #[test]
    fn a_carried_ts_is_kept() {
        let mut sequencer = Sequencer::new(1);
        let mut cmd = halt();
        cmd.header.ts = 123;
        sequencer.stamp(&mut cmd, 5_000);
        assert_eq!(cmd.header, CommandHeader { seq: 1, ts: 123 });
    }

    #[test]
    fn clock_time_never_goes_backwards() {
        let mut sequencer = Sequencer::new(1);
        let stamped: Vec<u64> = [100, 200, 150, 250]
            .into_iter()
            .map(|now_ns| {
                let mut cmd = halt();
                sequencer.stamp(&mut cmd, now_ns);
                cmd.header.ts
            })
            .collect();
        assert_eq!(stamped, [100, 200, 200, 250]);
    }

    #[test]
    fn same_input_same_stamps() {
        let run = || {
            let mut sequencer = Sequencer::new(1);
            (0..100u64)
                .map(|i| {
                    let mut cmd = halt();
                    sequencer.stamp(&mut cmd, i * 3 % 17);
                    cmd.header
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }
}
