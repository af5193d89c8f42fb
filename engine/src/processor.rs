//! The one interface between the matching core and whatever drives it.

use crate::command::Command;
use crate::event::EventSink;

/// Something that turns one stamped command into events: the [`Engine`](crate::Engine), the
/// journaling engine of the `journal` crate, or a test's fake. The `runtime` crate's runners
/// drive any of them (static dispatch, no `dyn` per command).
pub trait Processor: Send {
    /// Processes one stamped command, writing its events to `sink` in order.
    fn process<S: EventSink>(&mut self, cmd: &Command, sink: &mut S);

    /// Processes `cmds` in order, writing their events to `sink`: the same events as calling
    /// [`Processor::process`] on each, which is what this default does. The engine overrides it
    /// to look ahead (prefetch the memory of the commands behind the current one), which pays
    /// on a deep book; a journaling processor overrides it to keep its write-ahead order.
    #[inline]
    fn process_batch<S: EventSink>(&mut self, cmds: &[Command], sink: &mut S) {
        for cmd in cmds {
            self.process(cmd, sink);
        }
    }

    /// A hint from a driver that learns commands one at a time (it cannot call
    /// [`Processor::process_batch`]): `upcoming` are the commands it expects to process after
    /// the next one, in order. Changes nothing a command's events depend on; this default does
    /// nothing, and the engine prefetches for them ([`crate::Engine::prefetch_upcoming`]).
    #[inline]
    fn prefetch_upcoming(&self, upcoming: &[Command]) {
        let _ = upcoming;
    }

    /// The driver has processed a batch of commands (one or more) and is about to let the
    /// batch's events be acted on. A journaling processor publishes its staged records here;
    /// the bare engine has nothing to do.
    #[inline]
    fn end_batch(&mut self) {}
}

impl Processor for crate::Engine {
    #[inline]
    fn process<S: EventSink>(&mut self, cmd: &Command, sink: &mut S) {
        // Inherent methods win over trait methods: this calls `Engine::process`.
        crate::Engine::process(self, cmd, sink);
    }

    #[inline]
    fn process_batch<S: EventSink>(&mut self, cmds: &[Command], sink: &mut S) {
        crate::Engine::process_batch(self, cmds, sink);
    }

    #[inline]
    fn prefetch_upcoming(&self, upcoming: &[Command]) {
        crate::Engine::prefetch_upcoming(self, upcoming);
    }
}
