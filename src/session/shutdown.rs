//! Ending a session: close everything in order and verify (ARCHITECTURE.md, "Shutdown"),
//! then the sound, the report and the exit status.

use super::*;

impl Session {
    /// Shut everything down (ARCHITECTURE.md, "Shutdown"), write the report, and say how it went.
    pub async fn shutdown(
        mut self,
        grace: Duration,
        mode: Mode,
        report_path: Option<std::path::PathBuf>,
        events: Option<mpsc::UnboundedSender<ShutdownEvent>>,
    ) -> SessionEnd {
        let reason = self.quit.reason();
        tracing::info!(reason = reason.name(), "shutting down");
        // 1. No new work: stop the game; requests it started belong to their systems now.
        self.stop_game.cancel();
        if let Some(m) = &self.metrics {
            m.set_phase(Phase::ShuttingDown);
        }
        for t in self.background.drain(..) {
            t.abort();
            let _ = t.await;
        }
        let steps = self.closing_steps();
        let tell = tell_shutdown_events(self.shutdown_events.clone(), events);
        // 2–4. Close in dependency order within the grace period, then verify.
        let shutdown: ShutdownReport = lifecycle::shutdown_all(
            self.registry.clone(),
            grace,
            self.force.clone(),
            self.baseline,
            self.sandbox_ports.clone(),
            Some(tell),
            steps,
        )
        .await;
        // `x` during the shutdown, with how each system it cut ended.
        self.control.record_shutdown_cuts(&shutdown.systems);
        // The sandbox is not the clients': it stops last.
        if let Some(sb) = self.sandbox.take() {
            sb.stop().await;
        }
        // 5. Sound: stop speech, play the chime after a clean shutdown, close the device.
        let clean = shutdown.is_clean() && reason != Reason::Error && !self.force.is_cancelled();
        let audio = self.audio.close(clean).await;
        let ended_at = chrono::Utc::now();
        // Every call is over: the spend as it stands at the end.
        if let Some(b) = &self.registry.budget {
            self.stats.locked().budget = Some(b.snapshot());
        }
        let game = self.stats.locked().clone();
        let shutdown = ShutdownSection {
            reason,
            report: shutdown,
        };
        let report = SessionReport {
            version: 1,
            // Written, the report is the session's last word: the status is the one the
            // process exits with when the write succeeds (when it fails, there is no report).
            exit_status: report::exit_status(&shutdown, true),
            run: report::RunInfo::of(&self.config),
            started_at: self
                .started_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            ended_at: ended_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            session_s: self.started.elapsed().as_secs_f64(),
            mode: mode.name().to_string(),
            backend: self.config.backend().to_string(),
            stats: ReportStats::new(&game, &self.registry.snapshots()),
            shutdown,
            error: self.fatal.locked().clone(),
            commands: self.control.records(),
            audio: Some(audio),
            traces: crate::telemetry::otlp::state(),
        };
        let (report_path, report_error) = write_report(&report, report_path, ended_at);
        SessionEnd {
            report_path,
            report,
            report_error,
            output_error: None,
        }
    }
    /// The steps after the systems, before the process-wide check: the metrics endpoint,
    /// the trace exporter, and last the control endpoint, so its viewers see the others
    /// close.
    fn closing_steps(&mut self) -> Vec<lifecycle::ClosingStep> {
        let hold = Duration::from_millis(self.config.metrics.final_scrape_ms);
        let last = std::mem::take(&mut *self.last_steps.locked());
        self.metrics_endpoint
            .take()
            .map(|ep| lifecycle::ClosingStep {
                run: Box::new(move |closed| Box::pin(ep.close(hold, closed))),
            })
            .into_iter()
            .chain(
                crate::telemetry::otlp::active().then(|| lifecycle::ClosingStep {
                    run: Box::new(|closed| Box::pin(close_trace_exporter(closed))),
                }),
            )
            .chain(last)
            .collect()
    }
}

/// Each shutdown step to the front end's channel (`events`) and to the viewers' broadcast,
/// in order, as it happens: no relay task between, so the viewers have every other step's
/// event before the control endpoint (the last step) closes their streams. The front end's
/// channel ends with the shutdown, which holds the only sender.
fn tell_shutdown_events(
    viewers: broadcast::Sender<ShutdownEvent>,
    events: Option<mpsc::UnboundedSender<ShutdownEvent>>,
) -> lifecycle::EventSink {
    std::sync::Arc::new(move |ev| {
        // The stream's protocol tells a close by its start and end.
        if !matches!(ev, ShutdownEvent::Released(_)) {
            let _ = viewers.send(ev.clone());
        }
        if let Some(tx) = &events {
            let _ = tx.send(ev);
        }
    })
}

/// Write the session report where the user said, or as a new file in the default place;
/// where it went, or why it could not be written (also logged).
fn write_report(
    report: &SessionReport,
    report_path: Option<std::path::PathBuf>,
    ended_at: chrono::DateTime<chrono::Utc>,
) -> (Option<std::path::PathBuf>, Option<String>) {
    // A path the user gave is theirs to replace; the default place holds every session's.
    let written = match &report_path {
        Some(p) => report.write(p),
        None => report.write_new(&report::default_path(ended_at)),
    };
    let path = report_path.unwrap_or_else(|| report::default_path(ended_at));
    match written {
        Ok(written) => (Some(written), None),
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "cannot write the session report");
            (
                None,
                Some(format!(
                    "cannot write the session report {}: {e}",
                    path.display()
                )),
            )
        }
    }
}

/// The last shutdown step when traces are exported: send what is buffered and close the
/// exporter's connection, within what is left of the grace period (at least 200 ms: the
/// last batch holds the shutdown's own spans).
async fn close_trace_exporter(closed: lifecycle::SystemsClosed) -> lifecycle::StepReport {
    let started = Instant::now();
    let left = closed
        .deadline
        .saturating_duration_since(tokio::time::Instant::now())
        .max(Duration::from_millis(200));
    let flushed = tokio::task::spawn_blocking(move || crate::telemetry::otlp::shutdown(left))
        .await
        .unwrap_or_else(|e| Err(format!("the exporter's shutdown failed: {e}")));
    let (outcome, error) = match flushed {
        Ok(()) => (lifecycle::CloseOutcome::Closed, None),
        Err(e) => {
            tracing::warn!(error = %e, "trace exporter did not flush");
            (lifecycle::CloseOutcome::Error, Some(e))
        }
    };
    lifecycle::StepReport {
        name: crate::telemetry::otlp::STEP_NAME.to_string(),
        outcome,
        close_ms: started.elapsed().as_secs_f64() * 1e3,
        sockets_before: 0,
        error,
        cancelled: 0,
        // Its connection is the blocking client's own: the process-wide check counts it.
        verified: true,
        unverified_reason: None,
        earlier: None,
        steps: Vec::new(),
    }
}
