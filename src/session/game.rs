//! The gameplay loop as a task of the session.

use super::*;

impl Session {
    /// Run the game until asked to stop; quits by itself after `cycles` (0: never).
    pub fn spawn_gameplay(&mut self, mode: Mode, cycles: u64) {
        {
            let mut info = self.hub.info.locked();
            info.mode = mode.name().to_string();
            info.cycles = cycles;
        }
        let mut agent = Agent::new(
            self.registry.clone(),
            self.config.gameplay.roles.clone(),
            self.config.gameplay.seed,
            mode,
            self.stats.clone(),
        )
        .with_audio(self.audio.clone());
        agent.quorum_grace = Duration::from_millis(self.config.resilience.quorum_grace_ms);
        let stop = self.stop_game.clone();
        let quit = self.quit.clone();
        let delay = Duration::from_millis(self.config.gameplay.cycle_delay_ms);
        let mut paused = self.paused.subscribe();
        let crash_after = self.crash_after;
        let cycle_events = self.cycles.clone();
        let game = tokio::spawn(async move {
            loop {
                if stop.is_cancelled() {
                    return;
                }
                if *paused.borrow() {
                    tokio::select! {
                        _ = paused.wait_for(|p| !*p) => {}
                        _ = stop.cancelled() => return,
                    }
                }
                let cycle_no = agent.stats.locked().cycles + 1;
                let span = tracing::info_span!("cycle", cycle = cycle_no, mode = mode.name());
                tokio::select! {
                    _ = tracing::Instrument::instrument(agent.cycle(), span) => {}
                    _ = stop.cancelled() => return,
                }
                let (done, event) = {
                    let mut s = agent.stats.locked();
                    s.cycles += 1;
                    let done = s.cycles;
                    let last = s.recent.back().filter(|r| r.cycle == done);
                    let event = CycleEvent {
                        cycle: done,
                        action: last.map(|r| r.action.name().to_string()),
                        why: last.map(|r| r.why.clone()),
                        reward: last.map(|r| r.reward),
                        cycle_ms: s.timing.last_cycle_ms,
                        critical_path_ms: s.timing.last_critical_path_ms,
                        usage: report::usage_by_system(&agent.registry.snapshots()),
                    };
                    (done, event)
                };
                // Nobody following is fine.
                let _ = cycle_events.send(event);
                if crash_after.is_some_and(|n| done >= n) {
                    panic!(
                        "injected crash after {} (--crash-after-cycles)",
                        crate::lifecycle::counted(done, "cycle")
                    );
                }
                if cycles > 0 && done >= cycles {
                    // The last cycle's speech and learning may still be running (parallel mode).
                    tokio::select! {
                        _ = agent.finish() => {}
                        _ = stop.cancelled() => return,
                    }
                    quit.quit(Reason::Cycles);
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.cancelled() => return,
                }
            }
        });
        self.watch_task("gameplay", game);
    }
}
