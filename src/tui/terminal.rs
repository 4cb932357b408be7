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
pub struct Screen {
    terminal: DefaultTerminal,
}

impl Screen {
    /// Enter raw mode and the alternate screen. Call after color-eyre's hooks are installed:
    /// the panic hook set here restores the terminal, then hands over to them.
    pub fn take() -> std::io::Result<Screen> {
        // Whatever hook is there now (color-eyre's) prints panics once the terminal is back.
        let report: Hook = Arc::from(std::panic::take_hook());
        let forward = report.clone();
        std::panic::set_hook(Box::new(move |info| forward(info)));
        // ratatui wraps it with a hook that restores the terminal first.
        let terminal = match ratatui::try_init() {
            Ok(t) => t,
            Err(e) => {
                ratatui::restore();
                return Err(e);
            }
        };
        let restore_then_report: Hook = Arc::from(std::panic::take_hook());
        *UI_THREAD.lock().unwrap_or_else(|p| p.into_inner()) = Some(std::thread::current().id());
        OWNED.store(true, Ordering::SeqCst);
        std::panic::set_hook(Box::new(move |info| on_panic(info, &report, &restore_then_report)));
        Ok(Screen { terminal })
    }

    pub fn terminal(&mut self) -> &mut DefaultTerminal {
        &mut self.terminal
    }

    /// Mouse capture is opt-in: while on, the terminal cannot select text.
    pub fn set_mouse_capture(&mut self, on: bool) -> std::io::Result<()> {
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
        let _ = self.terminal.show_cursor();
        restore();
    }
}

/// Leave raw mode and the alternate screen (once).
fn restore() {
    if OWNED.swap(false, Ordering::SeqCst) {
        if MOUSE.swap(false, Ordering::SeqCst) {
            let _ = execute!(stdout(), DisableMouseCapture);
        }
        ratatui::restore();
    }
}

fn on_panic(info: &PanicHookInfo<'_>, report: &Hook, restore_then_report: &Hook) {
    if !OWNED.load(Ordering::SeqCst) {
        return report(info);
    }
    let ui_thread = *UI_THREAD.lock().unwrap_or_else(|p| p.into_inner());
    if ui_thread == Some(std::thread::current().id()) {
        // The dashboard itself is going down: the terminal first, then the report.
        if MOUSE.swap(false, Ordering::SeqCst) {
            let _ = execute!(stdout(), DisableMouseCapture);
        }
        OWNED.store(false, Ordering::SeqCst);
        return restore_then_report(info);
    }
    // Nothing may write to the screen the dashboard owns: log it, print it later.
    let text = info.to_string();
    tracing::error!(panic = %text, "a task panicked");
    DEFERRED_PANICS.lock().unwrap_or_else(|p| p.into_inner()).push(text);
}

/// Panics of other threads while the dashboard had the screen, for stderr afterwards.
pub fn take_deferred_panics() -> Vec<String> {
    std::mem::take(&mut *DEFERRED_PANICS.lock().unwrap_or_else(|p| p.into_inner()))
}
