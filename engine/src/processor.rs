//! The one interface between the matching core and whatever drives it.

use crate::command::Command;
use crate::event::EventSink;

/// Something that turns one stamped command into events: the [`Engine`](crate::Engine), the
/// journaling engine of the `journal` crate, or a test's fake. The `runtime` crate's runners
/// drive any of them (static dispatch, no `dyn` per command).
pub trait Processor: Send {
    /// Processes one stamped command, writing its events to `sink` in order.
    fn process<S: EventSink>(&mut self, cmd: &Command, sink: &mut S);

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
}
