//! Owning the terminal: raw mode and the alternate screen while the dashboard runs, and
//! back to normal on every way out — return, error, drop, and a panic on the UI thread.
//!
//! A panic on another thread (a request task, the game) does not end the dashboard: tokio
//! catches it and the runtime watches its tasks. Restoring the terminal then would leave a
//! live dashboard drawing on the normal screen, so such panics are logged instead and
//! printed to stderr once the terminal is back.

use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::execute;
use ratatui::DefaultTerminal;
use std::io::stdout;
use std::panic::PanicHookInfo;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

static OWNED: AtomicBool = AtomicBool::new(false);
static MOUSE: AtomicBool = AtomicBool::new(false);
static UI_THREAD: Mutex<Option<ThreadId>> = Mutex::new(None);
static DEFERRED_PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

type Hook = Arc<dyn Fn(&PanicHookInfo<'_>) + Send + Sync + 'static>;

/// The terminal while the dashboard owns it. Dropping it gives the terminal back.
pub(crate) struct Screen {
    /// Always `Some` until dropped.
    terminal: Option<DefaultTerminal>,
}

impl Screen {
    /// Enter raw mode and the alternate screen. The panic hook set here restores the terminal,
    /// then hands over to the hook that was there before (std's: message, location and the
    /// RUST_BACKTRACE hint).
    pub fn take() -> std::io::Result<Screen> {
        // Whatever hook is there now (std's) prints panics once the terminal is back;
        // it stays in charge, through `forward`, if the terminal cannot be taken.
        let report: Hook = Arc::from(std::panic::take_hook());
        let forward = report.clone();
        std::panic::set_hook(Box::new(move |info| forward(info)));
        let terminal = match ratatui::try_init() {
            Ok(t) => t,
            Err(e) => {
                let _ = ratatui::try_restore();
                return Err(e);
            }
        };
        // `try_init` wrapped the hook with one that restores the terminal through
        // `ratatui::restore`, which `eprintln!`s a failure — and `eprintln!` panics when the
        // terminal is gone (hangup). Ours restores quietly, then reports.
        drop(std::panic::take_hook());
        *UI_THREAD.lock().unwrap_or_else(|p| p.into_inner()) = Some(std::thread::current().id());
        OWNED.store(true, Ordering::SeqCst);
        crate::logging::screen_owned(true);
        std::panic::set_hook(Box::new(move |info| on_panic(info, &report)));
        Ok(Screen {
            terminal: Some(terminal),
        })
    }

    pub fn terminal(&mut self) -> std::io::Result<&mut DefaultTerminal> {
        self.terminal
            .as_mut()
            .ok_or_else(|| std::io::Error::other("the terminal was given back"))
    }

    /// Mouse capture is opt-in: while on, the terminal cannot select text.
    pub(crate) fn set_mouse_capture(&mut self, on: bool) -> std::io::Result<()> {
        if on {
            execute!(stdout(), EnableMouseCapture)?;
        } else {
            execute!(stdout(), DisableMouseCapture)?;
        }
        MOUSE.store(on, Ordering::SeqCst);
        Ok(())
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        if let Some(mut terminal) = self.terminal.take() {
            match terminal.show_cursor() {
                Ok(()) => drop(terminal),
                // The terminal is gone (hangup). ratatui's `Terminal` would try again on drop
                // and `eprintln!` the failure, which panics with no terminal: skip its drop.
                Err(_) => std::mem::forget(terminal),
            }
        }
        restore();
    }
}

/// Leave raw mode and the alternate screen (once). Errors are ignored: when the terminal
/// is gone there is nothing to restore, and nowhere to say so.
fn restore() {
    if OWNED.swap(false, Ordering::SeqCst) {
        if MOUSE.swap(false, Ordering::SeqCst) {
            let _ = execute!(stdout(), DisableMouseCapture);
        }
        let _ = ratatui::try_restore();
        crate::logging::screen_owned(false);
    }
}

fn on_panic(info: &PanicHookInfo<'_>, report: &Hook) {
    if !OWNED.load(Ordering::SeqCst) {
        return report(info);
    }
    let ui_thread = *UI_THREAD.lock().unwrap_or_else(|p| p.into_inner());
    if ui_thread == Some(std::thread::current().id()) {
        // The dashboard itself is going down: the terminal first, then the report.
        restore();
        return report(info);
    }
    // Nothing may write to the screen the dashboard owns: log it, print it later.
    let text = info.to_string();
    tracing::error!(panic = %text, "a task panicked");
    DEFERRED_PANICS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(text);
}

/// Panics of other threads while the dashboard had the screen, for stderr afterwards.
pub(crate) fn take_deferred_panics() -> Vec<String> {
    std::mem::take(&mut *DEFERRED_PANICS.lock().unwrap_or_else(|p| p.into_inner()))
}
